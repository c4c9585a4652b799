r"""Classification heads on frozen sentence embeddings, saved as plain arrays (never pickle).

Every head maps ``(n, d)`` embeddings to ``(n, C)`` class probabilities and stores itself as
JSON-safe options plus a few named numpy arrays (`Head.options`, `Head.tensors`),
which `st_gloss.classifier.serialization` writes to ``st_gloss_head.json`` and
``st_gloss_head.safetensors``.

| kind | what it is | inputs |
|---|---|---|
| ``logistic`` | scikit-learn ``LogisticRegression`` (lbfgs, L2, ``C=1``): the paper's \
standalone protocol and SetFit's default head | L2-normalised |
| ``linear`` | ``nn.Linear`` + softmax: the head a ``+ce`` loss trains \
(`LinearHead.from_linear`), or one fit here with cross-entropy | as the model outputs them |
| ``propagation`` | harmonic label propagation from stored reference embeddings \
(`reference_propagation`) | L2-normalised |
| ``knn`` | FAISS $k$-nearest-neighbour vote (as \
[`knn_classify`][st_gloss.evaluation.knn.knn_classify]) | L2-normalised |
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from st_gloss.errors import InputError
from st_gloss.evaluation.knn import normalize_embeddings, vote


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def check_embeddings(embeddings, what: str = "embeddings") -> np.ndarray:
    """A ``(n, d)`` float array with no NaN or infinite value, else `InputError`.

    Examples:
        >>> check_embeddings(np.array([[np.nan, 1.0]]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        st_gloss.errors.InputError: 1 of the 1 embeddings contain NaN or infinite values (first: row 0); ...
    """
    if hasattr(embeddings, "detach"):
        embeddings = embeddings.detach().cpu().float().numpy()
    array = np.asarray(embeddings)
    if array.ndim != 2:
        raise InputError(f"{what} must be a 2-D (n, dim) array, got shape {array.shape}")
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise InputError(f"{int(bad.sum())} of the {len(array)} {what} contain NaN or infinite values "
                         f"(first: row {int(np.flatnonzero(bad)[0])}); check the model's weights and dtype "
                         "(a float16 overflow gives inf)")
    return array


def check_fit_inputs(embeddings, labels, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate what a head is fit on: finite embeddings, one id per row, ids below ``num_classes``, two classes."""
    x = check_embeddings(embeddings)
    y = np.asarray(labels)
    if len(x) == 0:
        raise InputError("cannot fit a head on no texts; give labelled texts")
    if y.ndim != 1 or len(y) != len(x):
        raise InputError(f"got {len(x)} embeddings but {y.shape[0] if y.ndim else 0} labels; give one label per text")
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError("head labels must be integer class ids (TextClassifier.fit maps names to ids)")
    if y.min() < 0 or y.max() >= num_classes:
        raise InputError(f"class ids must lie in [0, {num_classes}), got {y.min()}..{y.max()}")
    if len(np.unique(y)) < 2:
        raise InputError("fit needs texts of at least two classes; a single class leaves nothing to decide")
    return x, y.astype(np.int64)


class Head:
    """Base class: ``fit`` on ``(embeddings, class ids)``, ``predict_proba``, and a pickle-free state.

    Subclasses set `kind`, implement `fit`, `predict_proba`, `options`,
    `tensors` and `_load`; `num_classes` is ``None`` until fitted.
    """

    kind: ClassVar[str] = ""

    def __init__(self) -> None:
        self.num_classes: int | None = None

    @property
    def is_fitted(self) -> bool:
        """Whether the head has been fit (or loaded)."""
        return self.num_classes is not None

    def fit(self, embeddings, labels, num_classes: int) -> Head:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_proba(self, embeddings) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, embeddings) -> np.ndarray:
        """The class id of the highest probability, per row."""
        return self.predict_proba(embeddings).argmax(axis=1).astype(np.int64)

    def options(self) -> dict:
        """JSON-safe constructor options (what ``st_gloss_head.json`` stores)."""
        return {}

    def tensors(self) -> dict[str, np.ndarray]:
        """The fitted state as named numpy arrays (what ``st_gloss_head.safetensors`` stores)."""
        return {}

    @classmethod
    def from_saved(cls, options: dict, tensors: dict[str, np.ndarray], num_classes: int) -> Head:
        """Rebuild a fitted head from `options` and `tensors`."""
        head = cls(**options)
        head._load(tensors)
        head.num_classes = int(num_classes)
        return head

    def _load(self, tensors: dict[str, np.ndarray]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_ready(self, embeddings) -> np.ndarray:
        if not self.is_fitted:
            raise InputError(f"the {self.kind} head is not fitted; call fit(texts, labels) first")
        return check_embeddings(embeddings)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({options})"


class LogisticHead(Head):
    """Multinomial logistic regression (scikit-learn, lbfgs) on L2-normalised embeddings.

    Stored as ``coef`` (``(C, d)``, or ``(1, d)`` for two classes, as scikit-learn keeps it),
    ``intercept`` and ``classes`` (the class ids seen in fit); probabilities are recomputed from
    them in numpy, equal to ``LogisticRegression.predict_proba``.

    Args:
        c: inverse regularisation strength (scikit-learn's ``C``).
        max_iter: solver iterations.
        seed: the solver's random state.
        normalize: L2-normalise the embeddings first (``False`` only for a head fit on raw
            embeddings elsewhere, e.g. a SetFit head with ``normalize_embeddings=False``).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(40, 4)); y = (x[:, 0] > 0).astype(int)
        >>> head = LogisticHead().fit(x, y, num_classes=2)
        >>> head.predict_proba(x).shape
        (40, 2)
    """

    kind = "logistic"

    def __init__(self, c: float = 1.0, max_iter: int = 1000, seed: int = 0, normalize: bool = True) -> None:
        super().__init__()
        self.c, self.max_iter, self.seed, self.normalize = float(c), int(max_iter), int(seed), bool(normalize)
        self.coef = self.intercept = self.classes = None

    def fit(self, embeddings, labels, num_classes: int) -> LogisticHead:
        from sklearn.linear_model import LogisticRegression

        x, y = check_fit_inputs(embeddings, labels, num_classes)
        model = LogisticRegression(C=self.c, max_iter=self.max_iter, random_state=self.seed)
        model.fit(self._inputs(x), y)
        self._load({"coef": model.coef_, "intercept": model.intercept_, "classes": model.classes_})
        self.num_classes = int(num_classes)
        return self

    def _load(self, tensors):
        self.coef = np.asarray(tensors["coef"], dtype=np.float64)
        self.intercept = np.asarray(tensors["intercept"], dtype=np.float64)
        self.classes = np.asarray(tensors["classes"], dtype=np.int64)

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        return normalize_embeddings(x) if self.normalize else np.asarray(x, dtype=np.float32)

    def predict_proba(self, embeddings) -> np.ndarray:
        x = self._inputs(self._check_ready(embeddings)).astype(np.float64)
        scores = x @ self.coef.T + self.intercept
        if self.coef.shape[0] == 1:  # two classes: scikit-learn's logistic (expit) form
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            seen = np.stack([1.0 - positive, positive], axis=1)
        else:
            seen = _softmax(scores)
        out = np.zeros((len(x), self.num_classes), dtype=np.float64)
        out[:, self.classes] = seen
        return out

    def options(self) -> dict:
        return {"c": self.c, "max_iter": self.max_iter, "seed": self.seed, "normalize": self.normalize}

    def tensors(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef, "intercept": self.intercept, "classes": self.classes}


class LinearHead(Head):
    """``nn.Linear(d, C)`` + softmax on the embeddings as the model outputs them (not re-normalised).

    `from_linear` takes the head a ``+ce`` loss trained (``loss.classifier``), which saw the
    model's ``sentence_embedding`` output; `fit` trains a fresh one on frozen embeddings:
    full-batch cross-entropy with Adam for ``steps`` steps, initialised from ``seed``.

    Args:
        steps: optimisation steps of `fit`.
        learning_rate: Adam's learning rate.
        weight_decay: L2 penalty of `fit`.
        seed: seed of the initial weights.

    Examples:
        >>> from torch import nn
        >>> head = LinearHead.from_linear(nn.Linear(4, 3))
        >>> head.predict_proba(np.ones((2, 4))).sum(axis=1).round(6)
        array([1., 1.])
    """

    kind = "linear"

    def __init__(self, steps: int = 300, learning_rate: float = 0.01, weight_decay: float = 1e-4,
                 seed: int = 0) -> None:
        super().__init__()
        self.steps, self.learning_rate = int(steps), float(learning_rate)
        self.weight_decay, self.seed = float(weight_decay), int(seed)
        self.weight = self.bias = None

    @classmethod
    def from_linear(cls, linear, **options) -> LinearHead:
        """A fitted head from an ``nn.Linear`` (copied to CPU float64; the module is not kept)."""
        head = cls(**options)
        weight = linear.weight.detach().to("cpu").double().numpy().copy()
        bias = (linear.bias.detach().to("cpu").double().numpy().copy() if linear.bias is not None
                else np.zeros(weight.shape[0]))
        head._load({"weight": weight, "bias": bias})
        head.num_classes = int(weight.shape[0])
        return head

    def fit(self, embeddings, labels, num_classes: int) -> LinearHead:
        import torch

        x, y = check_fit_inputs(embeddings, labels, num_classes)
        generator = torch.Generator().manual_seed(self.seed)
        inputs = torch.as_tensor(x, dtype=torch.float32)
        targets = torch.as_tensor(y)
        bound = 1.0 / np.sqrt(x.shape[1])  # nn.Linear's default initialisation, seeded
        weight = ((torch.rand(num_classes, x.shape[1], generator=generator) * 2 - 1) * bound).requires_grad_()
        bias = ((torch.rand(num_classes, generator=generator) * 2 - 1) * bound).requires_grad_()
        optimizer = torch.optim.Adam([weight, bias], lr=self.learning_rate, weight_decay=self.weight_decay)
        with torch.enable_grad():
            for _ in range(self.steps):
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(inputs @ weight.T + bias, targets)
                loss.backward()
                optimizer.step()
        self._load({"weight": weight.detach().double().numpy(), "bias": bias.detach().double().numpy()})
        self.num_classes = int(num_classes)
        return self

    def _load(self, tensors):
        self.weight = np.asarray(tensors["weight"], dtype=np.float64)
        self.bias = np.asarray(tensors["bias"], dtype=np.float64)

    def predict_proba(self, embeddings) -> np.ndarray:
        x = self._check_ready(embeddings).astype(np.float64)
        if x.shape[1] != self.weight.shape[1]:
            raise InputError(f"the linear head takes {self.weight.shape[1]}-dim embeddings, got {x.shape[1]}")
        return _softmax(x @ self.weight.T + self.bias)

    def options(self) -> dict:
        return {"steps": self.steps, "learning_rate": self.learning_rate, "weight_decay": self.weight_decay,
                "seed": self.seed}

    def tensors(self) -> dict[str, np.ndarray]:
        return {"weight": self.weight, "bias": self.bias}


class _ReferenceHead(Head):
    """A head that keeps L2-normalised reference embeddings and their class ids."""

    def __init__(self) -> None:
        super().__init__()
        self.reference = self.reference_labels = None

    def _store(self, embeddings, labels, num_classes: int) -> None:
        x, y = check_fit_inputs(embeddings, labels, num_classes)
        self._load({"reference_embeddings": normalize_embeddings(x), "reference_labels": y})
        self.num_classes = int(num_classes)

    def _load(self, tensors):
        self.reference = np.ascontiguousarray(tensors["reference_embeddings"], dtype=np.float32)
        self.reference_labels = np.asarray(tensors["reference_labels"], dtype=np.int64)

    def tensors(self) -> dict[str, np.ndarray]:
        return {"reference_embeddings": self.reference, "reference_labels": self.reference_labels}


DENSE_REFERENCE_MAX = 256
"""``num_neighbors="auto"`` averages over the whole reference set up to this many texts, over the nearest above.

Measured in ``evaluation/results/classifier_heads.md``: with 64 and 128 reference texts the dense
average scored as well as or better than the 16 nearest; with 487 (R8, 64 per class, skewed) the
16 nearest gained 4.9 points of macro-F1."""
DEFAULT_PROPAGATION_NEIGHBORS = 16
"""Neighbours of the sparse propagation graph (the loss's
[`st_gloss.functional.DEFAULT_KNN_NEIGHBORS`][st_gloss.functional.DEFAULT_KNN_NEIGHBORS])."""


class PropagationHead(_ReferenceHead):
    r"""The G-Loss-native head: harmonic label propagation from labelled reference texts to each new text.

    Fit stores the L2-normalised reference embeddings with their labels and sets $\sigma$ by the
    paper's ``sqrt_median`` rule on the reference set
    (`reference_sigma`). Each new text is then propagated
    against the reference set alone (`reference_propagation`):
    its harmonic solution on the graph of reference + itself, the kernel-weighted average of the
    reference labels, over the ``num_neighbors`` nearest reference texts (FAISS). A prediction
    depends on the text alone, never on the other texts of the call.

    Why not one graph over all the new texts: with few labelled and many new texts the plain
    harmonic solution of one graph is biased towards the classes central among the new texts.
    Measured in ``evaluation/results/classifier_heads.md`` (untrained MiniLM, 1000 test texts,
    8 and 64 labelled texts per class of R8 and MR, 3 seeds): the plain solution is at chance
    (MR accuracy 0.50; R8 predicts one class, macro-F1 0.08-0.12); class mass normalisation
    repairs MR (0.60-0.68, as logistic) but not R8 (0.76-0.80 against 0.91-0.94); propagating
    each text against the reference set alone is within 0.3-1.6 points of logistic on R8 and
    1-4 points under it on MR. That is this head.

    When it is worth using (the rule): use the ``logistic`` head by default; it was the best or
    tied in every cell of the table (balanced labelled sets). On skewed classes with enough
    reference texts per class this head, with its class mass normalisation, does better: on the
    ``cpu`` benchmark's R8 it beat the logistic head after every loss; with about 5-11 reference
    texts per class (R52, Ohsumed) it fell 5-10 points under the kNN vote. Use this head also
    when (a) the labelled set changes often: adding reference texts or a new class needs no
    refit; (b) a prediction should be explained by the reference texts that carried it; or (c)
    the encoder was fine-tuned with G-Loss, whose training made exactly this kernel average
    separate the classes (on the ``cpu`` benchmark it was not better after G-Loss than after
    the other losses);
    and keep the reference set under about 100k texts, as predict time grows linearly with it
    (``evaluation/results/classifier_heads_timing.md``).

    Args:
        sigma: a sigma rule of [`st_gloss.sigma`][st_gloss.sigma] (``"sqrt_median"``, ``"dicm"``) or a number.
        num_neighbors: ``k`` of the sparse graph (an int), ``"dense"`` for the average over the
            whole reference set, or ``"auto"``: dense up to `DENSE_REFERENCE_MAX` reference
            texts, `DEFAULT_PROPAGATION_NEIGHBORS` nearest above.
        seed: seed of the row sample the sigma rule sees on large reference sets.
        class_balance: divide each class's propagated mass by its share of the reference set and
            renormalise (class mass normalisation, Zhu, Ghahramani & Lafferty 2003). Without it a
            skewed reference set makes its largest class win: on the `cpu` profile's R8 subset (256
            reference texts, untrained MiniLM, 600 test texts) the dense average predicted one
            class (accuracy 0.495, macro-F1 0.083); with it, 0.920 and 0.839, above the logistic
            head (0.872, 0.502). On balanced data it changes nothing.

    Examples:
        >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> head = PropagationHead(num_neighbors="dense").fit(x, np.array([0, 0, 1, 1]), num_classes=2)
        >>> head.predict(np.array([[0.8, 0.3], [0.2, 0.9]]))
        array([0, 1])
    """

    kind = "propagation"

    def __init__(self, sigma: str | float = "sqrt_median", num_neighbors: int | str = "auto",
                 seed: int = 0, sigma_value: float | None = None, class_balance: bool = True) -> None:
        super().__init__()
        self.class_balance = bool(class_balance)
        if not (num_neighbors in ("auto", "dense") or (isinstance(num_neighbors, int) and num_neighbors >= 1)):
            raise InputError(f"num_neighbors must be a positive integer, 'dense' or 'auto', got {num_neighbors!r}")
        self.sigma, self.num_neighbors, self.seed = sigma, num_neighbors, int(seed)
        self.sigma_value = None if sigma_value is None else float(sigma_value)

    def fit(self, embeddings, labels, num_classes: int) -> PropagationHead:
        from st_gloss.classifier.propagation import reference_sigma

        self._store(embeddings, labels, num_classes)
        self.sigma_value = reference_sigma(self.reference, self.sigma, self.reference_labels, seed=self.seed)
        return self

    def resolved_neighbors(self) -> int | None:
        """The ``k`` of the graph used (``None``: dense average over the whole reference set)."""
        if self.num_neighbors == "dense":
            return None
        if self.num_neighbors == "auto":
            size = 0 if self.reference is None else len(self.reference)
            return None if size <= DENSE_REFERENCE_MAX else DEFAULT_PROPAGATION_NEIGHBORS
        return int(self.num_neighbors)

    def predict_proba(self, embeddings) -> np.ndarray:
        from st_gloss.classifier.propagation import reference_propagation

        x = self._check_ready(embeddings)
        mass = reference_propagation(self.reference, self.reference_labels, x, self.sigma_value,
                                     self.num_classes, num_neighbors=self.resolved_neighbors())
        if not self.class_balance:
            return mass
        # Class mass normalisation: each class's mass over its share of the reference set, so that a
        # class with many reference texts does not win every text by its numbers alone.
        share = np.bincount(self.reference_labels, minlength=self.num_classes) / len(self.reference_labels)
        balanced = np.where(share > 0, mass / np.maximum(share, 1e-300), 0.0)
        total = balanced.sum(axis=1, keepdims=True)
        return np.where(total > 0, balanced / np.where(total > 0, total, 1.0), mass)

    def options(self) -> dict:
        return {"sigma": self.sigma, "num_neighbors": self.num_neighbors, "seed": self.seed,
                "sigma_value": self.sigma_value, "class_balance": self.class_balance}


class KNNHead(_ReferenceHead):
    """A FAISS $k$-nearest-neighbour vote over stored reference embeddings.

    ``predict_proba`` is each class's share of the ``k`` votes (or of the similarity mass, with
    ``weighting="similarity"``); ``predict`` breaks ties as
    [`st_gloss.evaluation.knn.vote`][st_gloss.evaluation.knn.vote]
    does (the class whose nearest member comes first).

    Args:
        k: neighbours per query (clipped to the reference size).
        weighting: ``"majority"`` or ``"similarity"``.

    Examples:
        >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> KNNHead(k=1).fit(x, np.array([0, 0, 1, 1]), num_classes=2).predict(np.array([[0.2, 0.9]]))
        array([1])
    """

    kind = "knn"

    def __init__(self, k: int = 10, weighting: str = "majority") -> None:
        super().__init__()
        if not (isinstance(k, int) and k >= 1):
            raise InputError(f"k must be a positive integer, got {k!r}")
        if weighting not in ("majority", "similarity"):
            raise InputError(f"weighting must be 'majority' or 'similarity', got {weighting!r}")
        self.k, self.weighting = k, weighting

    def fit(self, embeddings, labels, num_classes: int) -> KNNHead:
        self._store(embeddings, labels, num_classes)
        return self

    def _neighbours(self, embeddings):
        from st_gloss.evaluation.knn import search_neighbours

        x = self._check_ready(embeddings)
        k = min(self.k, len(self.reference))
        found = search_neighbours(self.reference, x, k)
        return self.reference_labels[found.indices], found.similarities

    def predict_proba(self, embeddings) -> np.ndarray:
        labels, similarities = self._neighbours(embeddings)
        weights = np.ones_like(similarities, dtype=np.float64) if self.weighting == "majority" else \
            np.clip(similarities.astype(np.float64), 1e-12, None)
        out = np.zeros((len(labels), self.num_classes), dtype=np.float64)
        np.add.at(out, (np.repeat(np.arange(len(labels)), labels.shape[1]), labels.reshape(-1)), weights.reshape(-1))
        return out / out.sum(axis=1, keepdims=True)

    def predict(self, embeddings) -> np.ndarray:
        labels, similarities = self._neighbours(embeddings)
        return vote(labels, similarities, self.num_classes, self.weighting)

    def options(self) -> dict:
        return {"k": self.k, "weighting": self.weighting}


HEAD_KINDS: dict[str, type[Head]] = {
    "logistic": LogisticHead,
    "linear": LinearHead,
    "propagation": PropagationHead,
    "knn": KNNHead,
}
"""The head classes by kind name."""


def make_head(kind: str, **options) -> Head:
    """A new, unfitted head of ``kind`` (``logistic``, ``linear``, ``propagation`` or ``knn``).

    Examples:
        >>> make_head("svm")
        Traceback (most recent call last):
        ...
        st_gloss.errors.InputError: unknown head 'svm'; choose one of logistic, linear, propagation, knn
    """
    if kind not in HEAD_KINDS:
        raise InputError(f"unknown head {kind!r}; choose one of {', '.join(HEAD_KINDS)}")
    return HEAD_KINDS[kind](**options)

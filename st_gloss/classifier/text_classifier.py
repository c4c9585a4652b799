"""``TextClassifier``: a SentenceTransformer body, one or more heads, and the label names."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from st_gloss.classifier.heads import Head, LinearHead, check_embeddings, make_head
from st_gloss.errors import InputError


def _is_int_label(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _label_names(labels: Sequence) -> list:
    """The label names in column order: sorted numerically when all are integers, as strings otherwise."""
    if all(_is_int_label(v) for v in labels):
        return sorted({int(v) for v in labels})
    return sorted({str(v) for v in labels})


class TextClassifier:
    r"""Classify texts with a SentenceTransformer and a head fit on its frozen embeddings.

    Holds a body (``model``), one or more named heads (`st_gloss.classifier.heads`) of
    which one is the default, and `labels`, the class names in the column order of
    `predict_proba`. Labels may be strings or integers; `predict` returns them as
    given to `fit` (or to `from_loss`).

    Heads: ``"logistic"`` (scikit-learn logistic regression on L2-normalised embeddings, the
    default: the paper's standalone protocol and SetFit's head), ``"linear"`` (``nn.Linear`` +
    softmax; from a trained ``+ce`` loss with `from_loss`, or fit here), ``"propagation"``
    (harmonic label propagation from the stored labelled texts,
    `PropagationHead`, whose docstring says when it is worth
    using) and ``"knn"`` (FAISS vote).

    Args:
        model: a ``SentenceTransformer`` (any device; heads run on the CPU on its outputs).
        head: a head kind, a `Head` instance, or ``None`` for none yet.
        labels: the class names, when known before `fit` (otherwise fit sets them).
        batch_size: texts per forward pass of ``model.encode``.
        show_progress_bar: show ``model.encode``'s progress bar.
        head_name: the name the head is stored under (default: its kind).
        **head_options: options of the head (``c=``, ``k=``, ``num_neighbors=``...).

    Examples:
        >>> classifier = TextClassifier(model, head="logistic")  # doctest: +SKIP
        >>> texts = ["great film", "dull film", "loved it", "boring"]
        >>> classifier.fit(texts, ["pos", "neg", "pos", "neg"])  # doctest: +SKIP
        >>> classifier.predict(["a great story"])  # doctest: +SKIP
        ['pos']
        >>> classifier.save_pretrained("my-classifier")  # doctest: +SKIP
        >>> TextClassifier.from_pretrained("my-classifier").predict_proba(["boring"]).shape  # doctest: +SKIP
        (1, 2)
    """

    def __init__(self, model, head: str | Head | None = "logistic", labels: Sequence | None = None, *,
                 batch_size: int = 32, show_progress_bar: bool = False, head_name: str | None = None,
                 **head_options) -> None:
        if not hasattr(model, "encode"):
            raise InputError(f"TextClassifier needs a SentenceTransformer as model, got {type(model).__name__}")
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.model = model
        self.labels: list | None = None if labels is None else list(labels)
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise InputError(f"labels must be distinct class names, got {self.labels}")
        self.heads: dict[str, Head] = {}
        self.default_head: str | None = None
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        if head is not None:
            self.add_head(head, name=head_name, **head_options)
        elif head_options:
            raise InputError("head options were given without a head; pass head='logistic' (or another kind)")

    # ----------------------------------------------------------------------------- heads
    def add_head(self, head: str | Head, name: str | None = None, *, default: bool = True, **options) -> Head:
        """Add a head (a kind name or a `Head`) under ``name`` (default: its kind); returns it.

        A head of the same name is replaced. With ``default`` (the default) it becomes the head
        that `predict` uses.
        """
        if isinstance(head, str):
            head = make_head(head, **options)
        elif not isinstance(head, Head):
            raise InputError(f"head must be a head kind or a Head, got {type(head).__name__}")
        elif options:
            raise InputError("head options go with a head kind, not with a Head instance")
        name = name or head.kind
        self.heads[name] = head
        if default or self.default_head is None:
            self.default_head = name
        return head

    def use_head(self, name: str) -> TextClassifier:
        """Make the head called ``name`` the default; returns ``self``."""
        self._head(name)
        self.default_head = name
        return self

    @property
    def head(self) -> Head:
        """The default head."""
        return self._head(None)

    def _head(self, name: str | None) -> Head:
        name = name or self.default_head
        if name is None:
            raise InputError("the classifier has no head; add one with add_head('logistic')")
        if name not in self.heads:
            raise InputError(f"the classifier has no head {name!r}; it has: {', '.join(self.heads) or 'none'}")
        return self.heads[name]

    # ----------------------------------------------------------------------------- encoding
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, d)`` float32 embeddings as the model outputs them (heads normalise as they need)."""
        texts = self._check_texts(texts)
        vectors = self.model.encode(texts, batch_size=self.batch_size, show_progress_bar=self.show_progress_bar,
                                    convert_to_numpy=True, normalize_embeddings=False)
        return check_embeddings(np.asarray(vectors, dtype=np.float32), "embeddings of the texts")

    @staticmethod
    def _check_texts(texts) -> list[str]:
        if isinstance(texts, str):
            raise InputError("texts must be a list of strings, got a single string; wrap it in a list")
        texts = list(texts)
        if not texts:
            raise InputError("texts is empty; give at least one text")
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise InputError(f"texts must be strings; item {bad[0]} is {type(texts[bad[0]]).__name__} "
                             f"({len(bad)} non-string item(s))")
        return texts

    # ----------------------------------------------------------------------------- labels
    def _label_ids(self, labels, n: int) -> np.ndarray:
        if isinstance(labels, str):
            raise InputError("labels must be a list, one per text, got a single string")
        labels = list(labels.tolist() if hasattr(labels, "tolist") else labels)
        if len(labels) != n:
            raise InputError(f"got {n} texts but {len(labels)} labels; give one label per text")
        if len(set(map(str, labels))) < 2:
            raise InputError(f"fit needs texts of at least two classes, got only {labels[0]!r}" if labels
                             else "fit needs labelled texts")
        if self.labels is None:
            self.labels = _label_names(labels)
        index = {self._key(name): i for i, name in enumerate(self.labels)}
        ids, unknown = [], []
        for label in labels:
            key = self._key(label)
            if key not in index:
                unknown.append(label)
            else:
                ids.append(index[key])
        if unknown:
            shown = ", ".join(repr(u) for u in list(dict.fromkeys(unknown))[:5])
            raise InputError(f"{len(unknown)} label(s) are not among the classifier's labels {self.labels}: "
                             f"{shown}; fit a new classifier to change the classes")
        return np.asarray(ids, dtype=np.int64)

    @staticmethod
    def _key(label):
        return int(label) if _is_int_label(label) else str(label)

    # ----------------------------------------------------------------------------- fit / predict
    def fit(self, texts: Sequence[str], labels: Sequence, *, head: str | None = None) -> TextClassifier:
        """Fit the default head (or the one called ``head``) on the frozen embeddings of ``texts``.

        Label names are set by the first fit (sorted; numerically when all are integers); later
        fits of other heads must use the same classes. Returns ``self``.
        """
        texts = self._check_texts(texts)
        self._head(head)  # an unknown head fails before the encoding
        ids = self._label_ids(labels, len(texts))
        return self.fit_embeddings(self.encode(texts), ids, head=head, ids=True)

    def fit_embeddings(self, embeddings, labels, *, head: str | None = None, ids: bool = False) -> TextClassifier:
        """`fit` on precomputed embeddings (``model.encode`` outputs, not re-normalised).

        ``labels`` are names, or class ids into `labels` with ``ids=True``.
        """
        target = self._head(head)
        embeddings = check_embeddings(embeddings)
        label_ids = np.asarray(labels, dtype=np.int64) if ids else self._label_ids(labels, len(embeddings))
        target.fit(embeddings, label_ids, len(self.labels))
        return self

    def _ready(self, head: str | None) -> Head:
        target = self._head(head)
        if not target.is_fitted:
            name = head or self.default_head
            raise InputError(f"the classifier's {name!r} head is not fitted; call fit(texts, labels) first, or "
                             "load a saved classifier with TextClassifier.from_pretrained(folder)")
        return target

    def predict_proba(self, texts: Sequence[str], *, head: str | None = None) -> np.ndarray:
        """``(n, C)`` class probabilities (rows sum to 1), columns in the order of `labels`."""
        target = self._ready(head)
        return target.predict_proba(self.encode(texts))

    def predict(self, texts: Sequence[str], *, head: str | None = None) -> list:
        """The predicted label name of every text."""
        target = self._ready(head)
        return [self.labels[i] for i in target.predict(self.encode(texts))]

    def predict_embeddings(self, embeddings, *, head: str | None = None) -> tuple[list, np.ndarray]:
        """``(label names, probabilities)`` for precomputed embeddings."""
        target = self._ready(head)
        probabilities = target.predict_proba(embeddings)
        return [self.labels[i] for i in target.predict(embeddings)], probabilities

    # ----------------------------------------------------------------------------- constructors
    @classmethod
    def from_loss(cls, model, loss, labels: Sequence | None = None, **kwargs) -> TextClassifier:
        """A classifier whose ``linear`` head is the one a ``+ce`` loss trained (``loss.classifier``).

        Args:
            model: the trained SentenceTransformer (``loss.model``).
            loss: a st-gloss loss built with ``num_labels`` (e.g. ``GraphGuidedLoss(model, num_labels=C)``).
            labels: the C class names in the id order of the training labels (default ``0..C-1``).
            **kwargs: ``batch_size``, ``show_progress_bar``.

        Examples:
            >>> loss = GraphGuidedLoss(model, num_labels=2)  # doctest: +SKIP
            >>> TextClassifier.from_loss(model, loss, labels=["neg", "pos"]).predict(["fine"])  # doctest: +SKIP
            ['pos']
        """
        linear = getattr(loss, "classifier", None)
        if linear is None:
            raise InputError(f"{type(loss).__name__} has no linear head (loss.classifier is None): build the loss "
                             "with num_labels=C to train one, or fit a head with TextClassifier(model, 'logistic')")
        head = LinearHead.from_linear(linear)
        labels = list(range(head.num_classes)) if labels is None else list(labels)
        if len(labels) != head.num_classes:
            raise InputError(f"the loss's head has {head.num_classes} classes but {len(labels)} labels were given")
        return cls(model, head, labels=labels, **kwargs)

    # ----------------------------------------------------------------------------- persistence
    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Save the body (``model.save``) and every fitted head into ``folder``, without pickle.

        See `st_gloss.classifier.serialization` for the files. The folder still loads as a
        plain ``SentenceTransformer`` and as ``setfit.SetFitModel`` (body only).
        """
        self._fitted_heads()  # refuse before anything is written
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(str(folder))
        self.save_heads(folder)

    def _fitted_heads(self) -> dict[str, Head]:
        fitted = {name: head for name, head in self.heads.items() if head.is_fitted}
        if not fitted:
            raise InputError("no head is fitted, so there is nothing to save; call fit(texts, labels) first")
        return fitted

    def save_heads(self, folder: str | os.PathLike) -> None:
        """Write the fitted heads and the label names into ``folder``, which already holds the body.

        `save_pretrained` without ``model.save``: ``st-gloss train`` saves the body of the
        best epoch (with the model card the trainer wrote) and then adds the heads this way.
        """
        from st_gloss.classifier.serialization import save_heads, write_setfit_config

        fitted = self._fitted_heads()
        default = self.default_head if self.default_head in fitted else next(iter(fitted))
        folder = Path(folder)
        if not (folder / "modules.json").is_file():
            raise InputError(f"{folder} holds no SentenceTransformer (no modules.json); use save_pretrained(folder), "
                             "which saves the body too")
        save_heads(folder, self.labels, fitted, default)
        write_setfit_config(folder, self.labels, normalize_embeddings=fitted[default].kind != "linear")

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, head: str | None = None, *, device: str | None = None,
                        batch_size: int = 32, show_progress_bar: bool = False) -> TextClassifier:
        """Load a classifier saved with `save_pretrained`; ``head`` picks one of the saved heads.

        A folder without ``st_gloss_head.json`` (a plain SentenceTransformer) raises
        [`InputError`][st_gloss.errors.InputError] naming the folder and the fix, before the model loads.
        """
        from sentence_transformers import SentenceTransformer

        from st_gloss.classifier.serialization import load_heads, read_config

        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"classifier folder {folder} does not exist; give a folder written by "
                             "TextClassifier.save_pretrained")
        config = read_config(folder)  # the clear error before the slow model load
        if head is not None and head not in config["heads"]:
            raise InputError(f"{folder} has no head {head!r}; it has: {', '.join(config['heads'])}")
        labels, heads, default = load_heads(folder)
        model = SentenceTransformer(str(folder), device=device)
        classifier = cls(model, head=None, labels=labels, batch_size=batch_size, show_progress_bar=show_progress_bar)
        for name, saved in heads.items():
            classifier.add_head(saved, name=name, default=False)
        classifier.default_head = head or default
        return classifier

    def __repr__(self) -> str:
        heads = ", ".join(f"{name}{'*' if name == self.default_head else ''}={head!r}"
                          for name, head in self.heads.items())
        return f"TextClassifier(labels={self.labels}, heads=[{heads}])"

r"""SetFit interop: train a SetFit model's body with G-Loss, and move heads between SetFit and st-gloss.

SetFit (``pip install setfit``) trains in two phases: the body (a SentenceTransformer) with a
sentence-pair or triplet loss, then a head (scikit-learn ``LogisticRegression`` by default) on
its frozen embeddings. Its ``Trainer.get_dataset`` turns (text, label) data into pairs for any
loss outside a hard-coded list of triplet losses, which is not what G-Loss takes: it needs
single texts with their class ids, in batches holding several examples of several classes.

`GraphGuidedTrainer` is a ``setfit.Trainer`` whose body phase hands the loss
``(sentence, label)`` rows with integer class ids, drawn by
[`ClassBalancedBatchSampler`][st_gloss.ClassBalancedBatchSampler], and trains it with
[`GraphGuidedLoss`][st_gloss.GraphGuidedLoss] (or any loss of ``loss_factory``); the head phase,
``evaluate``, ``predict`` and ``save_pretrained`` are SetFit's own.

A folder saved by `st_gloss.classifier.TextClassifier.save_pretrained` loads with
``SetFitModel.from_pretrained(folder)``: the body and the label names, with a fresh, unfitted
head, since SetFit reads its head only from a pickle (``model_head.pkl``, written with joblib),
which st-gloss never writes. `to_setfit_model` builds the fitted SetFit model in memory
from a classifier's logistic head instead (its ``save_pretrained`` then pickles, SetFit's way),
and `from_setfit_model` turns a trained SetFit model into a
`TextClassifier`.

Examples:
    >>> from datasets import Dataset  # doctest: +SKIP
    >>> from setfit import SetFitModel, TrainingArguments  # doctest: +SKIP
    >>> model = SetFitModel.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
    >>> train = Dataset.from_dict({"text": texts, "label": labels})  # doctest: +SKIP
    >>> trainer = GraphGuidedTrainer(model=model, args=TrainingArguments(batch_size=32, num_epochs=1),
    ...                              train_dataset=train)  # doctest: +SKIP
    >>> trainer.train()  # doctest: +SKIP
    >>> model.predict(["a film I loved"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from st_gloss.errors import InputError

try:
    from setfit import SetFitModel, Trainer
except ImportError as exc:  # pragma: no cover - setfit is an optional extra
    raise ImportError("st_gloss.integrations.setfit needs SetFit: pip install setfit") from exc


def _default_loss(model_body, num_labels: int):
    from st_gloss.losses import GraphGuidedLoss

    return GraphGuidedLoss(model_body)


class GraphGuidedTrainer(Trainer):
    """A ``setfit.Trainer`` whose body phase trains with G-Loss on class-balanced (text, label) batches.

    Takes every argument of ``setfit.Trainer``; ``args.loss`` is ignored (the loss comes from
    ``loss_factory``). Labels may be integers or strings (class ids are assigned in sorted order
    for the body phase; the head phase sees the labels as given). Multi-label data is refused.

    Args:
        loss_factory: ``(model_body, num_labels) -> loss``; default ``GraphGuidedLoss(model_body)``
            (the paper's standalone G-Loss, sigma by the sqrt_median rule).
        samples_per_class: examples of one class per group in a batch (see
            [`ClassBalancedBatchSampler`][st_gloss.ClassBalancedBatchSampler]).
        balanced: draw classes uniformly (for skewed classes).
        **kwargs: passed to ``setfit.Trainer`` (``model``, ``args``, ``train_dataset``...).

    Examples:
        >>> trainer = GraphGuidedTrainer(model=setfit_model, train_dataset=train)  # doctest: +SKIP
        >>> trainer.train()  # doctest: +SKIP
    """

    def __init__(self, *args, loss_factory: Callable | None = None, samples_per_class: int | None = None,
                 balanced: bool = False, **kwargs) -> None:
        self.loss_factory = loss_factory or _default_loss
        self.samples_per_class = samples_per_class
        self.balanced = balanced
        self.body_loss = None
        self.class_names: list | None = None
        super().__init__(*args, **kwargs)

    def _class_ids(self, labels) -> list[int]:
        labels = list(labels)
        if any(isinstance(label, (list, tuple, np.ndarray)) for label in labels):
            raise InputError("GraphGuidedTrainer takes one class label per text; multi-label data is not supported")
        if self.class_names is None:
            from st_gloss.classifier.text_classifier import _label_names

            self.class_names = _label_names(labels)
        index = {str(name): i for i, name in enumerate(self.class_names)}
        unknown = sorted({str(label) for label in labels} - index.keys())
        if unknown:
            raise InputError(f"labels {unknown[:5]} do not occur in the training data; drop those rows")
        return [index[str(label)] for label in labels]

    def get_dataset(self, x, y, args, max_pairs: int = -1):
        """Single texts with integer class ids, and the G-Loss loss (instead of SetFit's sentence pairs)."""
        from datasets import Dataset

        ids = self._class_ids(y)
        if len(set(ids)) < 2:
            raise InputError("G-Loss needs training texts of at least two classes")
        dataset = Dataset.from_dict({"sentence": list(x), "label": ids})
        if self.body_loss is None:
            self.body_loss = self.loss_factory(self.model.model_body, len(self.class_names))
        return dataset, self.body_loss

    def train_embeddings(self, *args, **kwargs) -> None:
        """SetFit's body phase, with batches from [`ClassBalancedBatchSampler`][st_gloss.ClassBalancedBatchSampler]."""
        from st_gloss.samplers import ClassBalancedBatchSampler

        sampler = ClassBalancedBatchSampler
        if self.samples_per_class is not None or self.balanced:
            sampler = ClassBalancedBatchSampler.with_options(samples_per_class=self.samples_per_class,
                                                             balanced=self.balanced)
        self.st_trainer.args.batch_sampler = sampler
        self.st_trainer.args.dataloader_pin_memory = torch.cuda.is_available()
        super().train_embeddings(*args, **kwargs)


def to_setfit_model(classifier, head: str | None = None) -> SetFitModel:
    """A fitted ``SetFitModel`` sharing the classifier's body, with its logistic head rebuilt (no pickle).

    The ``LogisticRegression`` gets the stored ``coef_``, ``intercept_`` and ``classes_``, so
    ``predict_proba`` equals the classifier's; ``labels`` are the classifier's label names.

    Examples:
        >>> setfit_model = to_setfit_model(TextClassifier.from_pretrained("my-classifier"))  # doctest: +SKIP
        >>> setfit_model.predict(["a film I loved"])  # doctest: +SKIP
        ['pos']
    """
    from sklearn.linear_model import LogisticRegression

    fitted = classifier._ready(head)
    if fitted.kind != "logistic":
        raise InputError(f"SetFit's default head is a logistic regression; the {fitted.kind!r} head has no "
                         "SetFit equivalent: fit a 'logistic' head first")
    model_head = LogisticRegression(C=fitted.c, max_iter=fitted.max_iter, random_state=fitted.seed)
    model_head.coef_ = fitted.coef.copy()
    model_head.intercept_ = fitted.intercept.copy()
    model_head.classes_ = fitted.classes.copy()
    model_head.n_features_in_ = fitted.coef.shape[1]
    model_head.n_iter_ = np.array([0], dtype=np.int32)
    return SetFitModel(model_body=classifier.model, model_head=model_head,
                       normalize_embeddings=fitted.normalize, labels=[str(label) for label in classifier.labels])


def from_setfit_model(setfit_model, **kwargs):
    """A `TextClassifier` with the body and logistic head of a trained SetFit model.

    Label names: the head's ``classes_`` when they are strings, else ``setfit_model.labels``
    (else the class ids). ``kwargs`` go to ``TextClassifier`` (``batch_size``...).

    Examples:
        >>> classifier = from_setfit_model(trainer.model)  # doctest: +SKIP
        >>> classifier.save_pretrained("my-classifier")  # no pickle  # doctest: +SKIP
    """
    from sklearn.linear_model import LogisticRegression

    from st_gloss.classifier.heads import LogisticHead
    from st_gloss.classifier.text_classifier import TextClassifier

    model_head = setfit_model.model_head
    if not isinstance(model_head, LogisticRegression) or not hasattr(model_head, "coef_"):
        raise InputError("from_setfit_model takes a SetFit model with a fitted LogisticRegression head "
                         f"(got {type(model_head).__name__}); train it first, or use the default head")
    classes = np.asarray(model_head.classes_)
    if np.issubdtype(classes.dtype, np.integer):
        ids = classes.astype(np.int64)
        size = int(ids.max()) + 1
        labels = list(setfit_model.labels) if setfit_model.labels and len(setfit_model.labels) >= size \
            else list(range(size))
    else:
        labels, ids = [str(c) for c in classes], np.arange(len(classes))
    head = LogisticHead(c=model_head.C, max_iter=model_head.max_iter, seed=model_head.random_state or 0,
                        normalize=bool(setfit_model.normalize_embeddings))
    head = LogisticHead.from_saved(head.options(), {"coef": model_head.coef_, "intercept": model_head.intercept_,
                                                    "classes": ids}, len(labels))
    return TextClassifier(setfit_model.model_body, head, labels=labels, **kwargs)

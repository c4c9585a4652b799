"""Linear probe: logistic regression on frozen embeddings (the paper's standalone protocol)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from st_gloss.errors import InputError
from st_gloss.evaluation.knn import ClassScores, _as_labels, class_scores, normalize_embeddings


@dataclass
class ProbeResult:
    """Scores of `linear_probe` or `cross_validated_probe`.

    Attributes:
        accuracy: fraction of correct test predictions.
        macro_f1: unweighted mean of the per-class F1.
        predictions: predicted label id per test row.
        per_class: one [`ClassScores`][st_gloss.evaluation.knn.ClassScores] per class.
        protocol: ``"train/test"`` or ``"5-fold cross-validation"``.

    Examples:
        >>> result = linear_probe(train, train_labels, test, test_labels)  # doctest: +SKIP
        >>> result.accuracy  # doctest: +SKIP
        0.953
    """

    accuracy: float
    macro_f1: float
    predictions: np.ndarray
    per_class: list[ClassScores] = field(default_factory=list)
    protocol: str = "train/test"

    def to_dict(self) -> dict:
        """JSON-safe scores (no per-row predictions).

        Examples:
            >>> ProbeResult(0.5, 0.4, np.zeros(2, dtype=int)).to_dict()["accuracy"]
            0.5
        """
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "protocol": self.protocol,
            "per_class": [vars(scores).copy() for scores in self.per_class],
        }


def _classifier(seed: int, max_iter: int, c: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=max_iter, random_state=seed)


def linear_probe(
    train_embeddings,
    train_labels,
    test_embeddings,
    test_labels,
    *,
    seed: int = 0,
    max_iter: int = 1000,
    c: float = 1.0,
    num_classes: int | None = None,
    label_names: list[str] | None = None,
) -> ProbeResult:
    """Fit a logistic regression on frozen train embeddings; score it on the test embeddings.

    Embeddings are L2-normalised first (the geometry the models are trained for), then an
    L2-regularised multinomial logistic regression (scikit-learn, lbfgs) is fit on all of train.

    Args:
        train_embeddings: ``(n_train, dim)`` array or tensor.
        train_labels: ``(n_train,)`` integer label ids.
        test_embeddings: ``(n_test, dim)``.
        test_labels: ``(n_test,)`` integer label ids.
        seed: random state of the solver.
        max_iter: solver iterations.
        c: inverse regularisation strength (scikit-learn's ``C``).
        num_classes: number of classes for the per-class table (default: largest id + 1).
        label_names: class names for the per-class table.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(200, 4)); y = (x[:, 0] > 0).astype(int)
        >>> linear_probe(x[:150], y[:150], x[150:], y[150:]).accuracy > 0.8
        True
    """
    train = normalize_embeddings(train_embeddings)
    test = normalize_embeddings(test_embeddings)
    y_train = _as_labels(train_labels, "train_labels", len(train))
    y_test = _as_labels(test_labels, "test_labels", len(test))
    if len(np.unique(y_train)) < 2:
        raise InputError("the linear probe needs at least two classes in its training set")
    model = _classifier(seed, max_iter, c).fit(train, y_train)
    predictions = model.predict(test).astype(np.int64)
    num_classes = num_classes or int(max(y_train.max(), y_test.max())) + 1
    accuracy, macro_f1, table = class_scores(y_test, predictions, num_classes, label_names)
    return ProbeResult(accuracy, macro_f1, predictions, table)


def cross_validated_probe(
    embeddings,
    labels,
    *,
    folds: int = 5,
    seed: int = 0,
    max_iter: int = 1000,
    c: float = 1.0,
    num_classes: int | None = None,
    label_names: list[str] | None = None,
) -> ProbeResult:
    """Linear probe on a single labelled set: stratified k-fold out-of-fold predictions.

    Used when there is no separate train split (a single data file).

    Args:
        embeddings: ``(n, dim)`` array or tensor.
        labels: ``(n,)`` integer label ids.
        folds: number of folds (capped by the smallest class size, at least 2).
        seed: seed of the fold shuffle and the solver.
        max_iter: solver iterations.
        c: inverse regularisation strength.
        num_classes: number of classes for the per-class table.
        label_names: class names for the per-class table.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(100, 4)); y = (x[:, 0] > 0).astype(int)
        >>> cross_validated_probe(x, y).protocol
        '5-fold cross-validation'
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    vectors = normalize_embeddings(embeddings)
    y = _as_labels(labels, "labels", len(vectors))
    smallest = int(np.bincount(y)[np.unique(y)].min())
    folds = min(folds, smallest)
    if folds < 2:
        raise InputError("a cross-validated probe needs at least 2 examples of every class; "
                         "give a separate train split")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    predictions = cross_val_predict(_classifier(seed, max_iter, c), vectors, y, cv=splitter)
    num_classes = num_classes or int(y.max()) + 1
    accuracy, macro_f1, table = class_scores(y, predictions.astype(np.int64), num_classes,
                                             label_names)
    return ProbeResult(accuracy, macro_f1, predictions.astype(np.int64), table,
                       protocol=f"{folds}-fold cross-validation")

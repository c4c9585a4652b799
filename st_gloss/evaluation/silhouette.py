r"""Silhouette of labelled embeddings: micro (over points) and macro (over classes).

For point $i$ of class $c$, with $a(i)$ its mean distance to the other
members of $c$ and $b(i)$ the smallest mean distance to the members of another class,

$$
s(i) = \frac{b(i) - a(i)}{\max(a(i), b(i))}, \qquad s(i) = 0 \text{ if } |c| = 1.
$$

The micro silhouette is the mean of $s(i)$ over all points (scikit-learn's
``silhouette_score``); the macro silhouette is the mean over classes of the per-class mean
(as the G-Loss paper reports), so small classes count as much as large ones.

Above ``max_samples`` points the score is estimated: a stratified, seeded sample of points
(proportional to class size, at least one point per class) gets its exact $s(i)$,
computed against *all* points, and the class means are weighted by the true class sizes. Only
the averaging is sampled, so the estimate is unbiased, and its standard error (stratified,
with finite-population correction) is reported with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from st_gloss.errors import InputError
from st_gloss.evaluation.knn import _as_labels

Metric = Literal["cosine", "euclidean"]


@dataclass
class SilhouetteResult:
    """Silhouette scores of one labelled set of embeddings.

    Attributes:
        micro: mean silhouette over points.
        macro: mean over classes of the per-class mean silhouette.
        per_class: class id -> mean silhouette of that class.
        metric: ``"cosine"`` or ``"euclidean"``.
        n_points: points in the set.
        n_sampled: points whose silhouette was computed (``n_points`` when exact).
        micro_standard_error: standard error of the sampled micro estimate (0 when exact).
        macro_standard_error: standard error of the sampled macro estimate (0 when exact).

    Examples:
        >>> result = silhouette(embeddings, labels)  # doctest: +SKIP
        >>> result.macro, result.sampled  # doctest: +SKIP
        (0.0712, False)
    """

    micro: float
    macro: float
    per_class: dict[int, float] = field(default_factory=dict)
    metric: str = "cosine"
    n_points: int = 0
    n_sampled: int = 0
    micro_standard_error: float = 0.0
    macro_standard_error: float = 0.0

    @property
    def sampled(self) -> bool:
        """Whether the scores are a sampled estimate."""
        return self.n_sampled < self.n_points

    def to_dict(self) -> dict:
        """JSON-safe scores.

        Examples:
            >>> SilhouetteResult(0.1, 0.2, {0: 0.2}, "cosine", 10, 10).to_dict()["macro"]
            0.2
        """
        return {
            "micro": self.micro,
            "macro": self.macro,
            "per_class": {str(c): s for c, s in self.per_class.items()},
            "metric": self.metric,
            "n_points": self.n_points,
            "n_sampled": self.n_sampled,
            "sampled": self.sampled,
            "micro_standard_error": self.micro_standard_error,
            "macro_standard_error": self.macro_standard_error,
        }


def stratified_sample(labels: np.ndarray, max_samples: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices of a seeded sample, proportional to class size, >= 1 per class.

    Args:
        labels: label id per row.
        max_samples: about how many rows to draw (at least one per class in any case).
        seed: random seed.

    Examples:
        >>> stratified_sample(np.array([0] * 90 + [1] * 10), 10).size
        10
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.maximum(1, np.round(counts * max_samples / len(labels)).astype(int))
    quota = np.minimum(quota, counts)
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=q, replace=False)
        for c, q in zip(classes, quota)
    ]
    return np.sort(np.concatenate(chosen))


def _prepare(embeddings, metric: Metric) -> np.ndarray:
    if hasattr(embeddings, "detach"):
        embeddings = embeddings.detach().cpu().numpy()
    array = np.asarray(embeddings)
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    if array.ndim != 2:
        raise InputError(f"embeddings must be a 2-D (n, dim) array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError("embeddings contain NaN or infinite values; check the model's output")
    if metric == "cosine":
        norms = np.linalg.norm(array, axis=1, keepdims=True)
        array = array / np.maximum(norms, np.finfo(array.dtype).tiny)
    return np.ascontiguousarray(array)


def silhouette_samples_against(
    embeddings, labels, rows: np.ndarray | None = None, *, metric: Metric = "cosine",
    chunk_size: int = 1024,
) -> np.ndarray:
    """Exact silhouette $s(i)$ of the given rows, measured against all points.

    Equals ``sklearn.metrics.silhouette_samples(embeddings, labels, metric=metric)[rows]``,
    in memory bounded by ``chunk_size * n``.

    Args:
        embeddings: ``(n, dim)`` array.
        labels: ``(n,)`` integer label ids.
        rows: rows to score (default: all).
        metric: ``"cosine"`` (1 - cosine similarity) or ``"euclidean"``.
        chunk_size: rows scored at once.

    Examples:
        >>> x = np.array([[0.0, 1.0], [0.1, 1.0], [1.0, 0.0], [1.0, 0.1]])
        >>> silhouette_samples_against(x, np.array([0, 0, 1, 1])).round(2)
        array([0.99, 0.99, 0.99, 0.99])
    """
    if metric not in ("cosine", "euclidean"):
        raise InputError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    vectors = _prepare(embeddings, metric)
    labels = _as_labels(labels, "labels", len(vectors))
    rows = np.arange(len(vectors)) if rows is None else np.asarray(rows, dtype=np.int64)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    one_hot = np.zeros((len(vectors), len(classes)), dtype=vectors.dtype)
    one_hot[np.arange(len(vectors)), inverse] = 1
    squared_norms = np.einsum("ij,ij->i", vectors, vectors)
    scores = np.empty(len(rows), dtype=np.float64)
    for start in range(0, len(rows), chunk_size):
        chunk = rows[start:start + chunk_size]
        dots = vectors[chunk] @ vectors.T
        if metric == "cosine":
            distances = 1.0 - dots
        else:
            distances = squared_norms[chunk, None] + squared_norms[None, :] - 2.0 * dots
            distances = np.sqrt(np.maximum(distances, 0.0))
        distances[np.arange(len(chunk)), chunk] = 0.0  # exact zero self-distance
        sums = (distances @ one_hot).astype(np.float64)
        own = inverse[chunk]
        own_counts = counts[own]
        a = sums[np.arange(len(chunk)), own] / np.maximum(own_counts - 1, 1)
        means = sums / counts[None, :]
        means[np.arange(len(chunk)), own] = np.inf
        b = means.min(axis=1)
        denominator = np.maximum(a, b)
        s = np.where(denominator > 0, (b - a) / np.where(denominator > 0, denominator, 1), 0.0)
        scores[start:start + len(chunk)] = np.where(own_counts > 1, s, 0.0)
    return scores


def silhouette(
    embeddings,
    labels,
    *,
    metric: Metric = "cosine",
    max_samples: int | None = 5000,
    seed: int = 0,
    chunk_size: int = 1024,
) -> SilhouetteResult:
    """Micro and macro silhouette of labelled embeddings, exact or (for large sets) sampled.

    Args:
        embeddings: ``(n, dim)`` array or tensor.
        labels: ``(n,)`` integer label ids (at least two classes).
        metric: ``"cosine"`` (the default; what the models are trained for) or ``"euclidean"``.
        max_samples: above this many points, score a stratified seeded sample of about this
            many points (each against all points); ``None`` for always exact.
        seed: seed of the sample.
        chunk_size: rows scored at once (bounds memory to ``chunk_size * n`` distances).

    Returns:
        A `SilhouetteResult`.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> x = np.concatenate([rng.normal(0, 1, (20, 5)) + 5, rng.normal(0, 1, (20, 5)) - 5])
        >>> y = np.array([0] * 20 + [1] * 20)
        >>> result = silhouette(x, y)
        >>> result.macro > 0.5, result.sampled
        (True, False)
    """
    if hasattr(embeddings, "shape") and len(embeddings.shape) == 2:
        n = embeddings.shape[0]
    else:
        n = len(embeddings)
    labels = _as_labels(labels, "labels", n)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if len(classes) < 2:
        raise InputError("the silhouette needs at least two classes; this set has "
                         f"{len(classes)}")
    if len(classes) >= n:
        raise InputError(f"the silhouette needs fewer classes ({len(classes)}) than points ({n})")
    if max_samples is not None and max_samples < len(classes):
        raise InputError(f"max_samples={max_samples} is below the number of classes "
                         f"({len(classes)}); raise it")
    if max_samples is None or n <= max_samples:
        rows = np.arange(n)
    else:
        rows = stratified_sample(labels, max_samples, seed)
    scores = silhouette_samples_against(embeddings, labels, rows, metric=metric,
                                        chunk_size=chunk_size)
    sampled_inverse = inverse[rows]
    class_means = np.empty(len(classes))
    class_variances = np.zeros(len(classes))  # variance of each class mean (0 when exact)
    for j in range(len(classes)):
        values = scores[sampled_inverse == j]
        class_means[j] = values.mean()
        if len(values) > 1 and len(values) < counts[j]:
            finite_population = 1.0 - len(values) / counts[j]
            class_variances[j] = values.var(ddof=1) / len(values) * finite_population
    weights = counts / n
    micro = float(np.sum(class_means * weights))  # class means weighted by true class sizes
    return SilhouetteResult(
        micro=micro,
        macro=float(class_means.mean()),
        per_class={int(c): float(m) for c, m in zip(classes, class_means)},
        metric=metric,
        n_points=n,
        n_sampled=len(rows),
        micro_standard_error=float(np.sqrt(np.sum(weights**2 * class_variances))),
        macro_standard_error=float(np.sqrt(np.sum(class_variances)) / len(classes)),
    )

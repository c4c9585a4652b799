"""k-nearest-neighbour classification of embeddings with FAISS (exact inner product).

Vectors are cast to float32 and L2-normalised, so the inner product of ``faiss.IndexFlatIP`` is
the cosine similarity. Queries are searched in chunks, so memory stays bounded by
``chunk_size * (k + number of classes)`` beyond the index itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from evaluation.errors import InputError

Weighting = Literal["majority", "similarity"]


@dataclass
class ClassScores:
    """Precision, recall, F1 and support of one class.

    Examples:
        >>> ClassScores(label=0, name="neg", precision=1.0, recall=0.5, f1=0.667, support=2).f1
        0.667
    """

    label: int
    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class KNNResult:
    """Predictions of :func:`knn_classify`, and scores when the query labels were given.

    Attributes:
        predictions: predicted label id per query (``int64``).
        neighbor_indices: ``(n_queries, k)`` index rows of the neighbours, nearest first.
        neighbor_similarities: ``(n_queries, k)`` cosine similarities of those neighbours.
        k: neighbours per query.
        weighting: ``"majority"`` or ``"similarity"``.
        accuracy: fraction of correct predictions (``None`` without query labels).
        macro_f1: unweighted mean of the per-class F1 (``None`` without query labels).
        per_class: one :class:`ClassScores` per class (empty without query labels).

    Examples:
        >>> result = knn_classify(index, index_labels, queries, query_labels)  # doctest: +SKIP
        >>> round(result.accuracy, 3), round(result.macro_f1, 3)  # doctest: +SKIP
        (0.912, 0.871)
    """

    predictions: np.ndarray
    neighbor_indices: np.ndarray
    neighbor_similarities: np.ndarray
    k: int
    weighting: str
    accuracy: float | None = None
    macro_f1: float | None = None
    per_class: list[ClassScores] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The scores as JSON-safe values (no per-query arrays).

        Examples:
            >>> result.to_dict()["accuracy"]  # doctest: +SKIP
            0.912
        """
        return {
            "k": self.k,
            "weighting": self.weighting,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_class": [vars(scores).copy() for scores in self.per_class],
        }


def normalize_embeddings(embeddings) -> np.ndarray:
    """Float32, C-contiguous, L2-normalised copy of ``embeddings`` (numpy array or torch tensor).

    Zero vectors stay zero (their similarity to everything is 0).

    Args:
        embeddings: a ``(n, dim)`` array or tensor.

    Examples:
        >>> normalize_embeddings(np.array([[3.0, 4.0]]))
        array([[0.6, 0.8]], dtype=float32)
    """
    if hasattr(embeddings, "detach"):  # torch tensor
        embeddings = embeddings.detach().cpu().float().numpy()
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2:
        raise InputError(f"embeddings must be a 2-D (n, dim) array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError("embeddings contain NaN or infinite values; check the model's output")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.ascontiguousarray(array / np.maximum(norms, 1e-12), dtype=np.float32)


def _as_labels(labels, name: str, n: int) -> np.ndarray:
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    array = np.asarray(labels)
    if array.ndim != 1 or len(array) != n:
        raise InputError(f"{name} must be a 1-D array of {n} integer label ids, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.mod(array, 1) == 0):
            raise InputError(f"{name} must be integer label ids; map string labels to ids first "
                             "(evaluation.data.load_labelled_data does)")
        array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise InputError(f"{name} must be non-negative label ids, found {array.min()}")
    return array.astype(np.int64)


def vote(neighbor_labels: np.ndarray, neighbor_similarities: np.ndarray, num_classes: int,
         weighting: Weighting = "majority") -> np.ndarray:
    """Predict one class per row from its neighbours' labels (nearest first).

    Each neighbour adds 1 (``"majority"``) or its cosine similarity (``"similarity"``) to its
    class. Ties between classes go to the class whose nearest member comes first in the row,
    which is deterministic and does not depend on the label ids.

    Args:
        neighbor_labels: ``(n, k)`` label ids, sorted by decreasing similarity.
        neighbor_similarities: ``(n, k)`` similarities in the same order.
        num_classes: number of classes (label ids are below it).
        weighting: ``"majority"`` or ``"similarity"``.

    Examples:
        >>> vote(np.array([[2, 1, 1, 2]]), np.array([[0.9, 0.8, 0.7, 0.6]]), 3)
        array([2])
    """
    n, k = neighbor_labels.shape
    rows = np.repeat(np.arange(n), k)
    flat_labels = neighbor_labels.reshape(-1)
    weights = np.ones(n * k) if weighting == "majority" else neighbor_similarities.reshape(-1)
    votes = np.zeros((n, num_classes), dtype=np.float64)
    np.add.at(votes, (rows, flat_labels), weights)
    # Rank of each class's nearest neighbour (k when absent); filled far to near so near wins.
    first_rank = np.full((n, num_classes), k, dtype=np.int64)
    for position in range(k - 1, -1, -1):
        first_rank[np.arange(n), neighbor_labels[:, position]] = position
    present = first_rank < k
    votes = np.where(present, votes, -np.inf)
    best = votes.max(axis=1, keepdims=True)
    tied = votes == best
    return np.where(tied, first_rank, k + 1).argmin(axis=1).astype(np.int64)


def _faiss_index(vectors: np.ndarray):
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def knn_search(index_embeddings, query_embeddings, k: int, *, leave_one_out: bool = False,
               chunk_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine similarities of the ``k`` nearest index vectors of every query.

    Args:
        index_embeddings: ``(n_index, dim)`` vectors to search in.
        query_embeddings: ``(n_queries, dim)`` vectors to search for.
        k: neighbours per query.
        leave_one_out: the queries are the index itself; query ``i`` never gets row ``i``.
        chunk_size: queries searched at once.

    Examples:
        >>> ids, sims = knn_search(np.eye(3), np.eye(3), k=1, leave_one_out=True)  # doctest: +SKIP
    """
    index_vectors = normalize_embeddings(index_embeddings)
    query_vectors = normalize_embeddings(query_embeddings)
    if index_vectors.shape[1] != query_vectors.shape[1]:
        raise InputError(f"index and query embeddings differ in dimension "
                         f"({index_vectors.shape[1]} vs {query_vectors.shape[1]}); use one model")
    if leave_one_out and len(index_vectors) != len(query_vectors):
        raise InputError("leave_one_out needs the queries to be the index itself (same rows)")
    available = len(index_vectors) - (1 if leave_one_out else 0)
    if not 1 <= k <= available:
        raise InputError(f"k={k} but the index has {available} candidate neighbour(s) per query; "
                         f"choose 1 <= k <= {available}")
    if chunk_size < 1:
        raise InputError(f"chunk_size must be positive, got {chunk_size}")
    index = _faiss_index(index_vectors)
    search_k = k + 1 if leave_one_out else k
    n = len(query_vectors)
    indices = np.empty((n, k), dtype=np.int64)
    similarities = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        sims, ids = index.search(query_vectors[start:stop], search_k)
        if leave_one_out:
            own = ids == np.arange(start, stop)[:, None]
            # Drop the query itself; when a duplicate pushed it out of the list, drop the last.
            own[~own.any(axis=1), -1] = True
            keep = ~own
            ids = ids[keep].reshape(stop - start, k)
            sims = sims[keep].reshape(stop - start, k)
        indices[start:stop] = ids
        similarities[start:stop] = sims
    return indices, similarities


def class_scores(true_labels: np.ndarray, predictions: np.ndarray, num_classes: int,
                 label_names: list[str] | None = None) -> tuple[float, float, list[ClassScores]]:
    """Accuracy, macro-F1 and the per-class table of a set of predictions.

    Macro-F1 averages over the classes that occur in ``true_labels`` or ``predictions``
    (scikit-learn's convention), so absent classes do not count as zero.

    Args:
        true_labels: true label ids.
        predictions: predicted label ids.
        num_classes: number of classes, for the per-class table.
        label_names: names for the table (default: the ids as strings).

    Examples:
        >>> acc, f1, table = class_scores(np.array([0, 1, 1]), np.array([0, 1, 0]), 2)
        >>> round(acc, 3), round(f1, 3)
        (0.667, 0.667)
    """
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    accuracy = float(np.mean(true_labels == predictions))
    macro_f1 = float(f1_score(true_labels, predictions, average="macro", zero_division=0))
    precision, recall, f1, support = precision_recall_fscore_support(
        true_labels, predictions, labels=np.arange(num_classes), zero_division=0
    )
    names = label_names or [str(i) for i in range(num_classes)]
    table = [
        ClassScores(int(i), str(names[i]), float(precision[i]), float(recall[i]), float(f1[i]),
                    int(support[i]))
        for i in range(num_classes)
    ]
    return accuracy, macro_f1, table


def knn_classify(
    index_embeddings,
    index_labels,
    query_embeddings,
    query_labels=None,
    *,
    k: int = 10,
    weighting: Weighting = "majority",
    leave_one_out: bool = False,
    chunk_size: int = 4096,
    num_classes: int | None = None,
    label_names: list[str] | None = None,
) -> KNNResult:
    """Classify each query by the labels of its ``k`` most cosine-similar index vectors.

    The index is a ``faiss.IndexFlatIP`` over L2-normalised float32 vectors (exact search).
    With ``weighting="majority"`` each neighbour has one vote; with ``"similarity"`` its vote
    is its cosine similarity. Ties go to the tied class with the nearest neighbour. With
    ``leave_one_out=True`` the queries are the index itself and each query's own row is
    excluded from its neighbours.

    Args:
        index_embeddings: ``(n_index, dim)`` embeddings of the labelled set (e.g. train).
        index_labels: ``(n_index,)`` integer label ids.
        query_embeddings: ``(n_queries, dim)`` embeddings to classify (e.g. test).
        query_labels: their true label ids, to compute accuracy, macro-F1 and per-class scores.
        k: neighbours per query (default 10).
        weighting: ``"majority"`` or ``"similarity"``.
        leave_one_out: queries and index are the same rows.
        chunk_size: queries searched at once (bounds memory).
        num_classes: number of classes (default: largest label id + 1).
        label_names: class names for the per-class table.

    Returns:
        A :class:`KNNResult`.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> train = rng.normal(size=(100, 8)); train_labels = (train[:, 0] > 0).astype(int)
        >>> test = rng.normal(size=(20, 8)); test_labels = (test[:, 0] > 0).astype(int)
        >>> result = knn_classify(train, train_labels, test, test_labels, k=5)
        >>> result.predictions.shape, 0.0 <= result.accuracy <= 1.0
        ((20,), True)
    """
    if weighting not in ("majority", "similarity"):
        raise InputError(f"weighting must be 'majority' or 'similarity', got {weighting!r}")
    n_index = len(index_embeddings)
    index_labels = _as_labels(index_labels, "index_labels", n_index)
    n_queries = len(query_embeddings)
    if query_labels is not None:
        query_labels = _as_labels(query_labels, "query_labels", n_queries)
    top = int(index_labels.max()) + 1 if n_index else 0
    if query_labels is not None and n_queries:
        top = max(top, int(query_labels.max()) + 1)
    num_classes = num_classes or top
    if top > num_classes:
        raise InputError(f"label ids go up to {top - 1} but num_classes={num_classes}")
    indices, similarities = knn_search(index_embeddings, query_embeddings, k,
                                       leave_one_out=leave_one_out, chunk_size=chunk_size)
    predictions = np.empty(n_queries, dtype=np.int64)
    for start in range(0, n_queries, chunk_size):
        stop = min(start + chunk_size, n_queries)
        predictions[start:stop] = vote(index_labels[indices[start:stop]],
                                       similarities[start:stop], num_classes, weighting)
    result = KNNResult(predictions, indices, similarities, k, weighting)
    if query_labels is not None:
        result.accuracy, result.macro_f1, result.per_class = class_scores(
            query_labels, predictions, num_classes, label_names
        )
    return result

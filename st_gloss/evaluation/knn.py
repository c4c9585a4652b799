"""k-nearest-neighbour classification of embeddings with FAISS.

Vectors are cast to float32 and L2-normalised, so the inner product is the cosine similarity.
The search is exact (``faiss.IndexFlatIP``) unless asked otherwise or unless both the index
(over 100k vectors) and the search (over 10^10 query-vector pairs) are large; then it is
approximate (HNSW by default, or IVF; see [`st_gloss.evaluation.index`][st_gloss.evaluation.index]) and reports its
recall
against exact search. Index vectors are normalised and added in chunks and queries
are searched in chunks, so memory stays bounded by the index itself plus
``chunk_size * (k + number of classes)``; the embeddings may be a memory-mapped ``.npy`` file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from st_gloss.errors import InputError
from st_gloss.evaluation.index import (
    LOW_RECALL,
    BuiltIndex,
    IndexOptions,
    IndexType,
    build_index,
    describe,
    exact_search,
    recall_at_k,
)

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
    """Predictions of `knn_classify`, and scores when the query labels were given.

    Attributes:
        predictions: predicted label id per query (``int64``).
        neighbor_indices: ``(n_queries, k)`` index rows of the neighbours, nearest first.
        neighbor_similarities: ``(n_queries, k)`` cosine similarities of those neighbours.
        k: neighbours per query.
        weighting: ``"majority"`` or ``"similarity"``.
        accuracy: fraction of correct predictions (``None`` without query labels).
        macro_f1: unweighted mean of the per-class F1 (``None`` without query labels).
        per_class: one `ClassScores` per class (empty without query labels).
        index_type: the FAISS index searched: ``"flat"`` (exact), ``"ivf"`` or ``"hnsw"``.
        recall_at_k: recall of the approximate search against exact search, measured on a
            seeded sample of queries (``None`` for the exact flat index, whose recall is 1).
        index_info: the index's parameters, the recall sample size and any notes (JSON-safe).

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
    index_type: str = "flat"
    recall_at_k: float | None = None
    index_info: dict = field(default_factory=dict)

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
            "index_type": self.index_type,
            "recall_at_k": self.recall_at_k,
            "index": self.index_info,
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
                             "(st_gloss.evaluation.data.load_labelled_data does)")
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


@dataclass
class Neighbours:
    """The ``k`` nearest index rows of every query, and the index that found them.

    Attributes:
        indices: ``(n_queries, k)`` index rows, nearest first.
        similarities: ``(n_queries, k)`` their cosine similarities.
        index_type: ``"flat"``, ``"ivf"`` or ``"hnsw"``.
        recall_at_k: recall against exact search on a sample of queries (``None`` for flat,
            or when ``recall_queries=0``).
        index_info: [`st_gloss.evaluation.index.describe`][st_gloss.evaluation.index.describe] of the index, plus the
            recall sample size.
        build_seconds: time to build the index.

    Examples:
        >>> found = search_neighbours(np.eye(3), np.eye(3), k=1, leave_one_out=True)
        >>> found.index_type, found.recall_at_k, found.indices.shape
        ('flat', None, (3, 1))
    """

    indices: np.ndarray
    similarities: np.ndarray
    index_type: str
    recall_at_k: float | None
    index_info: dict
    build_seconds: float


def _as_rows(embeddings, name: str):
    """A 2-D array-like that can be sliced by rows without copying (memmaps stay memmaps)."""
    if hasattr(embeddings, "detach"):  # torch tensor: a numpy view when already float32 on CPU
        embeddings = embeddings.detach().cpu().numpy()
    if not isinstance(embeddings, np.ndarray):
        embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2:
        raise InputError(f"{name} must be a 2-D (n, dim) array, got shape {embeddings.shape}")
    return embeddings


def _drop_self(ids: np.ndarray, sims: np.ndarray, own: np.ndarray, k: int):
    """Remove each query's own row from its ``k + 1`` neighbours (or the last, when absent)."""
    is_own = ids == own[:, None]
    # Drop the query itself; when a duplicate pushed it out of the list, drop the last.
    is_own[~is_own.any(axis=1), -1] = True
    keep = ~is_own
    return ids[keep].reshape(len(ids), k), sims[keep].reshape(len(ids), k)


def _search(built: BuiltIndex, index_rows, queries: np.ndarray, search_k: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Search ``queries``; rows the approximate index returned too few neighbours for are
    searched exactly. Returns ``(similarities, ids, rows searched exactly)``."""
    sims, ids = built.search(queries, search_k)
    missing = (ids < 0).any(axis=1)
    if missing.any():
        sims[missing], ids[missing] = exact_search(index_rows, queries[missing], search_k,
                                                   prepare=normalize_embeddings)
    return sims, ids, int(missing.sum())


def search_neighbours(index_embeddings, query_embeddings, k: int, *, leave_one_out: bool = False,
                      chunk_size: int = 4096,
                      index: IndexType | IndexOptions = "auto") -> Neighbours:
    """The ``k`` most cosine-similar index vectors of every query, with the index's recall.

    The index is chosen by ``index`` (see
    [`st_gloss.evaluation.index.IndexOptions`][st_gloss.evaluation.index.IndexOptions]): with
    ``"auto"``, exact ``IndexFlatIP`` unless the index has over 100k vectors and the search
    over 10^10 (query, vector) pairs, HNSW then
    ([`st_gloss.evaluation.index.resolve_kind`][st_gloss.evaluation.index.resolve_kind]);
    ``"flat"``, ``"ivf"`` or ``"hnsw"`` force one. For IVF and HNSW the
    recall@k against exact search is measured on ``recall_queries`` queries drawn with
    ``seed`` (an exact search of those queries only), and a recall below 0.95 warns. Queries
    for which an approximate index returns fewer than ``k`` neighbours are searched exactly.

    Args:
        index_embeddings: ``(n_index, dim)`` vectors to search in (array, memmap or tensor).
        query_embeddings: ``(n_queries, dim)`` vectors to search for.
        k: neighbours per query.
        leave_one_out: the queries are the index itself; query ``i`` never gets row ``i``.
        chunk_size: queries searched at once.
        index: ``"auto"``, ``"flat"``, ``"ivf"``, ``"hnsw"`` or an ``IndexOptions``.

    Returns:
        A `Neighbours`.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(3000, 16))
        >>> found = search_neighbours(x, x, k=5, leave_one_out=True, index="hnsw")
        >>> found.index_type, found.recall_at_k > 0.9
        ('hnsw', True)
    """
    options = IndexOptions.coerce(index)
    index_rows = _as_rows(index_embeddings, "index embeddings")
    query_rows = _as_rows(query_embeddings, "query embeddings")
    if index_rows.shape[1] != query_rows.shape[1]:
        raise InputError(f"index and query embeddings differ in dimension "
                         f"({index_rows.shape[1]} vs {query_rows.shape[1]}); use one model")
    if leave_one_out and len(index_rows) != len(query_rows):
        raise InputError("leave_one_out needs the queries to be the index itself (same rows)")
    available = len(index_rows) - (1 if leave_one_out else 0)
    if not 1 <= k <= available:
        raise InputError(f"k={k} but the index has {available} candidate neighbour(s) per query; "
                         f"choose 1 <= k <= {available}")
    if chunk_size < 1:
        raise InputError(f"chunk_size must be positive, got {chunk_size}")
    built = build_index(index_rows, options, n_queries=len(query_rows), prepare=normalize_embeddings)
    search_k = k + 1 if leave_one_out else k
    n = len(query_rows)
    indices = np.empty((n, k), dtype=np.int64)
    similarities = np.empty((n, k), dtype=np.float32)
    searched_exactly = 0
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        sims, ids, exact_rows = _search(built, index_rows, normalize_embeddings(query_rows[start:stop]),
                                        search_k)
        searched_exactly += exact_rows
        if leave_one_out:
            ids, sims = _drop_self(ids, sims, np.arange(start, stop), k)
        indices[start:stop] = ids
        similarities[start:stop] = sims
    info = describe(built)
    if searched_exactly:
        info["notes"].append(f"{searched_exactly} queries got fewer than {search_k} neighbours from "
                             f"the {built.kind} index and were searched exactly")
    recall = None
    if built.kind != "flat" and options.recall_queries > 0 and n:
        sample = np.sort(np.random.default_rng(options.seed).choice(
            n, size=min(n, options.recall_queries), replace=False))
        exact_sims, exact_ids = exact_search(index_rows, normalize_embeddings(query_rows[sample]),
                                             search_k, prepare=normalize_embeddings)
        if leave_one_out:
            exact_ids, exact_sims = _drop_self(exact_ids, exact_sims, sample, k)
        recall = recall_at_k(similarities[sample], exact_sims)
        info["recall_queries"] = int(len(sample))
        if recall < LOW_RECALL:
            fix = "raise nprobe (--nprobe)" if built.kind == "ivf" else "raise hnsw_ef_search (--hnsw-ef)"
            warnings.warn(f"kNN recall@{k} of the {built.kind} index against exact search is "
                          f"{recall:.3f} on {len(sample)} sampled queries (below {LOW_RECALL}); "
                          f"{fix} or use the exact index 'flat'", UserWarning, stacklevel=2)
    return Neighbours(indices, similarities, built.kind, recall, info, built.build_seconds)


def knn_search(index_embeddings, query_embeddings, k: int, *, leave_one_out: bool = False,
               chunk_size: int = 4096,
               index: IndexType | IndexOptions = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine similarities of the ``k`` nearest index vectors of every query.

    The same search as `search_neighbours`, returning only the two arrays.

    Args:
        index_embeddings: ``(n_index, dim)`` vectors to search in.
        query_embeddings: ``(n_queries, dim)`` vectors to search for.
        k: neighbours per query.
        leave_one_out: the queries are the index itself; query ``i`` never gets row ``i``.
        chunk_size: queries searched at once.
        index: ``"auto"``, ``"flat"``, ``"ivf"``, ``"hnsw"`` or an ``IndexOptions``.

    Examples:
        >>> ids, sims = knn_search(np.eye(3), np.eye(3), k=1, leave_one_out=True)
        >>> ids.shape, sims.dtype
        ((3, 1), dtype('float32'))
    """
    found = search_neighbours(index_embeddings, query_embeddings, k, leave_one_out=leave_one_out,
                              chunk_size=chunk_size, index=index)
    return found.indices, found.similarities


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
    index: IndexType | IndexOptions = "auto",
) -> KNNResult:
    """Classify each query by the labels of its ``k`` most cosine-similar index vectors.

    The index is a ``faiss.IndexFlatIP`` over L2-normalised float32 vectors (exact search),
    unless ``index`` asks for IVF or HNSW or ``"auto"`` finds the search too large for exact
    search; the recall of an approximate index against exact search is measured on a sample
    of queries and stored in the result (see `search_neighbours`). With
    ``weighting="majority"`` each neighbour has one vote; with ``"similarity"`` its vote is its
    cosine similarity. Ties go to the tied class with the nearest neighbour. With
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
        index: ``"auto"``, ``"flat"``, ``"ivf"``, ``"hnsw"``, or an
            [`st_gloss.evaluation.index.IndexOptions`][st_gloss.evaluation.index.IndexOptions] with the index
            parameters.

    Returns:
        A `KNNResult`.

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
    found = search_neighbours(index_embeddings, query_embeddings, k, leave_one_out=leave_one_out,
                              chunk_size=chunk_size, index=index)
    indices, similarities = found.indices, found.similarities
    predictions = np.empty(n_queries, dtype=np.int64)
    for start in range(0, n_queries, chunk_size):
        stop = min(start + chunk_size, n_queries)
        predictions[start:stop] = vote(index_labels[indices[start:stop]],
                                       similarities[start:stop], num_classes, weighting)
    result = KNNResult(predictions, indices, similarities, k, weighting, index_type=found.index_type,
                       recall_at_k=found.recall_at_k, index_info=found.index_info)
    if query_labels is not None:
        result.accuracy, result.macro_f1, result.per_class = class_scores(
            query_labels, predictions, num_classes, label_names
        )
    return result

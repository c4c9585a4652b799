"""FAISS indexes for kNN search: exact flat, IVF or HNSW, and their recall against exact search.

Every index scores by inner product over L2-normalised float32 vectors, so the score is the
cosine similarity, and every index stores the full vectors (``IndexFlatIP``, ``IndexIVFFlat``,
``IndexHNSWFlat``): an approximate index may *miss* a neighbour, but the similarities it
returns are exact. Vectors are added in chunks, so an index can be built from a memory-mapped
``.npy`` file (see [`st_gloss.evaluation.encode.encode_to_file`][st_gloss.evaluation.encode.encode_to_file]) without a
second copy in memory.

``"auto"`` searches exactly unless the index holds more than `AUTO_FLAT_MAX_VECTORS`
vectors *and* the exact search would score more than `AUTO_FLAT_MAX_PAIRS` (query,
vector) pairs; then it uses HNSW. Measured in ``evaluation/results/knn_index_recall.md``
(synthetic clustered vectors of 384 dims, 2 busy CPU cores):

- Building an index costs more than thousands of exact queries (at 200k vectors HNSW takes
  113 s and IVF 31 s to build, where 1000 exact queries take 5.8 s), so a large index searched
  by a test split of a few thousand texts is searched exactly: exact, and faster. Approximate
  search pays when there are many queries, e.g. leave-one-out over a million texts.
- HNSW rather than IVF, because at equal recall its queries are about twice as fast (at 200k:
  recall 0.988 in 1.4 s against IVF's 0.990 in 2.9 s, or 0.967 in 0.8 s against 0.971 in
  1.6 s), and because its recall depends much less on how clustered the vectors are (0.999
  from tight to diffuse clusters, where IVF at its default ``nprobe`` falls from 1.0 to 0.91),
  so a fine-tuned, tightly clustered model and a diffuse baseline are compared at about the
  same recall.
- The price: HNSW builds 3-4 times slower than IVF, keeps ``2 * M`` links of 4 bytes per
  vector (256 bytes at ``M=32``, a sixth more than a 384-dim float32 vector), and faiss 1.15
  builds its graph with all threads under locks, so it does not promise the same graph on
  every run (all our repeated builds gave identical graphs); IVF is bit-for-bit reproducible
  given the seed. Use ``"ivf"`` when that matters.

For IVF and HNSW, the recall against exact search is measured on a seeded sample of queries
and reported with the result.

Without faiss (an image that carries only PyTorch, say), exact search still works: a flat index
and `exact_search` fall back to `NumpyFlatIndex`, the same inner products in numpy, best first,
ties to the lower id as in faiss; ``"auto"`` then searches exactly whatever the size, and asking
for ``"ivf"`` or ``"hnsw"`` is an `InputError` that names the package to install.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from st_gloss.errors import InputError

IndexType = Literal["auto", "flat", "ivf", "hnsw"]
INDEX_TYPES = ("auto", "flat", "ivf", "hnsw")

AUTO_FLAT_MAX_VECTORS = 100_000
"""``index="auto"`` always searches exactly (``IndexFlatIP``) up to this many index vectors.

1000 queries against 100k vectors of 384 dims take about 3 s on 2 busy CPU cores, so even
leave-one-out over 100k texts stays within minutes, and no result below this size is
approximate unless asked for.
"""

AUTO_FLAT_MAX_PAIRS = 10**10
"""Above `AUTO_FLAT_MAX_VECTORS`, ``"auto"`` still searches exactly up to this many
(query, index vector) pairs.

At 384 dims on 2 busy CPU cores the exact search scores 3.4e7 pairs a second, so this is about
5 minutes. It lies where building and searching HNSW starts to cost less than the exact
search: from about 5e9 pairs at 200k index vectors (measured) to about 2e10 at a million
(estimated from the build time growing with ``n``).
"""

DEFAULT_NPROBE = 64
"""IVF lists searched per query unless ``nprobe`` is given."""

IVF_TRAIN_POINTS_PER_LIST = 50
"""IVF k-means is trained on a seeded sample of this many vectors per list (faiss asks for >= 39)."""

IVF_KMEANS_ITERATIONS = 10
"""k-means iterations when training the IVF lists."""

LOW_RECALL = 0.95
"""Below this recall against exact search, kNN warns and names the option that raises it."""

Prepare = Callable[[np.ndarray], np.ndarray]


def faiss_available() -> bool:
    """Whether ``faiss`` can be imported (it is a dependency; an image may still lack it)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


class NumpyFlatIndex:
    """Exact inner-product search in numpy, for where faiss is missing (``IndexFlatIP``'s API).

    Rows are kept as float32 and scored with one matrix product per chunk of queries; results
    are best first, ties to the lower id.

    Examples:
        >>> index = NumpyFlatIndex(2)
        >>> index.add(np.array([[1, 0], [0, 1], [1, 0]], dtype="float32"))
        >>> sims, ids = index.search(np.array([[1, 0]], dtype="float32"), 2)
        >>> ids.tolist(), sims.tolist(), index.ntotal
        ([[0, 2]], [[1.0, 1.0]], 3)
    """

    def __init__(self, dim: int, *, query_chunk: int = 4096):
        self.dim = int(dim)
        self._parts: list[np.ndarray] = []
        self._rows: np.ndarray | None = None
        self.query_chunk = query_chunk

    @property
    def ntotal(self) -> int:
        return int(sum(len(part) for part in self._parts))

    def add(self, rows: np.ndarray) -> None:
        self._parts.append(np.ascontiguousarray(rows, dtype=np.float32))
        self._rows = None

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._rows is None:
            self._rows = np.concatenate(self._parts) if self._parts else np.empty((0, self.dim), np.float32)
        return numpy_knn(np.ascontiguousarray(queries, dtype=np.float32), self._rows, k,
                         query_chunk=self.query_chunk)


def numpy_knn(queries: np.ndarray, rows: np.ndarray, k: int, *, query_chunk: int = 4096
              ) -> tuple[np.ndarray, np.ndarray]:
    """``(similarities, ids)`` of the ``k`` rows with the largest inner product, best first.

    Missing places (``k`` above the number of rows) get id ``-1`` and similarity ``-3.4e38``,
    as faiss returns them. Ties go to the lower id.
    """
    m, n = len(queries), len(rows)
    sims_out = np.full((m, k), -np.finfo(np.float32).max, dtype=np.float32)
    ids_out = np.full((m, k), -1, dtype=np.int64)
    take = min(k, n)
    if take == 0:
        return sims_out, ids_out
    for start in range(0, m, query_chunk):
        scores = queries[start:start + query_chunk] @ rows.T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :take]  # stable: ties to the lower id
        sims_out[start:start + query_chunk, :take] = np.take_along_axis(scores, order, axis=1)
        ids_out[start:start + query_chunk, :take] = order
    return sims_out, ids_out


def as_float32(rows) -> np.ndarray:
    """Rows as a C-contiguous float32 array, the layout FAISS needs (no other change).

    Examples:
        >>> as_float32(np.array([[1, 2]])).dtype
        dtype('float32')
    """
    return np.ascontiguousarray(rows, dtype=np.float32)


@dataclass(frozen=True)
class IndexOptions:
    """Which FAISS index kNN search uses, and its parameters.

    Attributes:
        kind: ``"flat"`` (exact), ``"ivf"``, ``"hnsw"`` or ``"auto"`` (flat unless both the
            index and the search are large, HNSW then; see `resolve_kind`).
        nlist: IVF lists (k-means centroids). Default: ``4 * sqrt(n)``, at most ``n / 39`` so
            that every list has enough training vectors.
        nprobe: IVF lists searched per query (default `DEFAULT_NPROBE`, at most
            ``nlist``); more lists, higher recall and slower search. The same ``nprobe`` is a
            smaller share of a larger index, so the recall falls as the index grows.
        hnsw_m: HNSW links per vector (``M``).
        hnsw_ef_construction: HNSW candidate list size while building (``efConstruction``).
        hnsw_ef_search: HNSW candidate list size while searching (``efSearch``; at least
            ``k`` is used); larger, higher recall and slower search.
        recall_queries: queries sampled to measure the recall of an approximate index
            against exact search (0: do not measure).
        seed: seed of the IVF training sample and k-means, of HNSW's level draws and of the
            recall sample.
        add_chunk_size: index vectors normalised and added at once (bounds the extra memory).

    Examples:
        >>> IndexOptions("ivf", nprobe=64).nprobe
        64
        >>> IndexOptions.coerce("hnsw").kind
        'hnsw'
        >>> IndexOptions("annoy")
        Traceback (most recent call last):
        ...
        st_gloss.errors.InputError: unknown index 'annoy'; choose one of auto, flat, ivf, hnsw
    """

    kind: IndexType = "auto"
    nlist: int | None = None
    nprobe: int | None = None
    hnsw_m: int = 32
    hnsw_ef_construction: int = 40
    hnsw_ef_search: int = 128
    recall_queries: int = 1000
    seed: int = 0
    add_chunk_size: int = 65_536

    def __post_init__(self):
        if self.kind not in INDEX_TYPES:
            raise InputError(f"unknown index {self.kind!r}; choose one of {', '.join(INDEX_TYPES)}")
        positive = {"hnsw_m": self.hnsw_m, "hnsw_ef_construction": self.hnsw_ef_construction,
                    "hnsw_ef_search": self.hnsw_ef_search, "add_chunk_size": self.add_chunk_size}
        for name in ("nlist", "nprobe"):
            if getattr(self, name) is not None:
                positive[name] = getattr(self, name)
        for name, value in positive.items():
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if self.hnsw_m < 2:
            raise InputError(f"hnsw_m must be at least 2, got {self.hnsw_m}")
        if self.recall_queries < 0:
            raise InputError(f"recall_queries must be 0 (do not measure) or more, got {self.recall_queries}")

    @classmethod
    def coerce(cls, value: str | IndexOptions) -> IndexOptions:
        """An `IndexOptions` from itself or from an index name (``"auto"``, ``"ivf"``...)."""
        return value if isinstance(value, IndexOptions) else cls(kind=value)


def resolve_kind(kind: str, n_vectors: int, n_queries: int | None = None) -> str:
    """The index ``kind`` stands for with ``n_vectors`` index vectors and ``n_queries`` queries.

    ``"auto"`` is ``"flat"`` up to `AUTO_FLAT_MAX_VECTORS` index vectors, and above as
    long as ``n_vectors * n_queries`` is at most `AUTO_FLAT_MAX_PAIRS`; ``"hnsw"``
    otherwise. ``n_queries=None`` means "many" (only the index size decides).

    Examples:
        >>> resolve_kind("auto", 5_000, 5_000), resolve_kind("hnsw", 10, 10)
        ('flat', 'hnsw')
        >>> resolve_kind("auto", 1_000_000, 7_000), resolve_kind("auto", 1_000_000, 1_000_000)
        ('flat', 'hnsw')
    """
    if kind != "auto":
        return kind
    if n_vectors <= AUTO_FLAT_MAX_VECTORS:
        return "flat"
    if n_queries is not None and n_vectors * n_queries <= AUTO_FLAT_MAX_PAIRS:
        return "flat"
    return "hnsw"


def default_nlist(n_vectors: int) -> int:
    """IVF lists for ``n_vectors``: ``4 * sqrt(n)``, at most ``n / 39`` (faiss's minimum per list).

    Examples:
        >>> default_nlist(1_000_000), default_nlist(100_000), default_nlist(200)
        (4000, 1265, 5)
    """
    return int(max(1, min(round(4 * math.sqrt(n_vectors)), n_vectors // 39)))


@dataclass
class BuiltIndex:
    """A FAISS index over the index vectors, with what was built and how long it took.

    Attributes:
        index: the faiss index.
        kind: ``"flat"``, ``"ivf"`` or ``"hnsw"`` (what ``"auto"`` resolved to).
        requested: the kind that was asked for.
        params: the parameters used (``nlist``, ``nprobe``, ``train_size`` or ``M``,
            ``ef_construction``, ``ef_search``), JSON-safe.
        build_seconds: wall time of training and adding.
        notes: adjustments made to the options, for the report.

    Examples:
        >>> built = build_index(np.eye(4), "flat")
        >>> built.kind, built.index.ntotal
        ('flat', 4)
    """

    index: object
    kind: str
    requested: str
    params: dict = field(default_factory=dict)
    build_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(similarities, ids)`` of the ``k`` best index vectors per query row, best first.

        ``queries`` must already be L2-normalised float32 rows. A query that the approximate
        index reaches fewer than ``k`` vectors for gets id ``-1`` in the missing places.
        """
        if self.kind == "hnsw":
            import faiss

            params = faiss.SearchParametersHNSW()
            params.efSearch = max(int(self.params["ef_search"]), k)
            return self.index.search(queries, k, params=params)
        return self.index.search(queries, k)


def _add_in_chunks(index, vectors, prepare: Prepare, chunk_size: int) -> None:
    for start in range(0, len(vectors), chunk_size):
        index.add(prepare(vectors[start:start + chunk_size]))


def build_index(vectors, options: str | IndexOptions = "auto", *, n_queries: int | None = None,
                prepare: Prepare = as_float32) -> BuiltIndex:
    """Build the FAISS index chosen by ``options`` over ``vectors``, adding them chunk by chunk.

    Args:
        vectors: ``(n, dim)`` numpy array or ``numpy.memmap`` of index vectors.
        options: an `IndexOptions`, or just the kind (``"auto"``, ``"flat"``, ``"ivf"``,
            ``"hnsw"``).
        n_queries: how many queries will be searched, for ``"auto"`` (`resolve_kind`).
        prepare: applied to every chunk of rows before it is added (and to the IVF training
            sample); it must return L2-normalised float32 rows. The default only casts, for
            vectors that are normalised already; [`st_gloss.evaluation.knn`][st_gloss.evaluation.knn] passes
            ``normalize_embeddings``.

    Returns:
        A `BuiltIndex`.

    Raises:
        InputError: an IVF ``nlist`` larger than the number of vectors.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(2000, 16)).astype("float32")
        >>> x /= np.linalg.norm(x, axis=1, keepdims=True)
        >>> built = build_index(x, IndexOptions("ivf", nprobe=8))
        >>> built.kind, built.params["nlist"], built.params["nprobe"], built.index.ntotal
        ('ivf', 51, 8, 2000)
    """
    options = IndexOptions.coerce(options)
    n, dim = vectors.shape
    if n < 1:
        raise InputError("the index has no vectors; give at least one labelled text")
    kind = resolve_kind(options.kind, n, n_queries)
    notes: list[str] = []
    params: dict = {}
    if not faiss_available():
        if options.kind in ("ivf", "hnsw"):
            raise InputError(f"index={options.kind!r} needs faiss, which is not installed here; "
                             "pip install faiss-cpu, or use index='flat' (exact search in numpy)")
        if kind != "flat":
            notes.append(f"faiss is not installed: exact search in numpy instead of {kind}")
        kind = "flat"
        params = {"backend": "numpy"}
        start = time.perf_counter()
        index = NumpyFlatIndex(dim)
        _add_in_chunks(index, vectors, prepare, options.add_chunk_size)
        return BuiltIndex(index, kind, options.kind, params, time.perf_counter() - start, notes)
    import faiss

    start = time.perf_counter()
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "ivf":
        nlist = options.nlist or default_nlist(n)
        if nlist > n:
            raise InputError(f"nlist={nlist} IVF lists need at least {nlist} index vectors, got {n}; "
                             f"lower nlist (at most {max(1, n // 39)} is advised) or use index='flat'")
        if nlist * 39 > n:
            notes.append(f"nlist={nlist} leaves fewer than 39 training vectors per list; "
                         f"k-means is poor there, {max(1, n // 39)} lists or fewer is advised")
        train_size = min(n, IVF_TRAIN_POINTS_PER_LIST * nlist)
        rows = np.sort(np.random.default_rng(options.seed).choice(n, size=train_size, replace=False))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = options.seed
        index.cp.niter = IVF_KMEANS_ITERATIONS
        index.cp.min_points_per_centroid = 1  # the note above replaces faiss's stderr warning
        index.cp.max_points_per_centroid = max(train_size, 1)  # we sampled; faiss must not again
        index.train(prepare(vectors[rows]))
        nprobe = min(options.nprobe or DEFAULT_NPROBE, nlist)
        if options.nprobe and nprobe < options.nprobe:
            notes.append(f"nprobe={options.nprobe} lowered to nlist={nlist} (every list is searched)")
        index.nprobe = nprobe
        params = {"nlist": int(nlist), "nprobe": int(nprobe), "train_size": int(train_size),
                  "kmeans_iterations": IVF_KMEANS_ITERATIONS}
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, options.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = options.hnsw_ef_construction
        index.hnsw.rng = faiss.RandomGenerator(options.seed)
        params = {"M": options.hnsw_m, "ef_construction": options.hnsw_ef_construction,
                  "ef_search": options.hnsw_ef_search}
    else:  # pragma: no cover - IndexOptions checks the kind
        raise InputError(f"unknown index {kind!r}")
    _add_in_chunks(index, vectors, prepare, options.add_chunk_size)
    return BuiltIndex(index, kind, options.kind, params, time.perf_counter() - start, notes)


def exact_search(vectors, queries: np.ndarray, k: int, *, prepare: Prepare = as_float32,
                 chunk_size: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``(similarities, ids)`` of the ``k`` best rows of ``vectors`` per query, best first.

    The index vectors are read ``chunk_size`` rows at a time and the best ``k`` kept in a
    heap, so memory stays bounded however large ``vectors`` (e.g. a memory-mapped file) is.

    Args:
        vectors: ``(n, dim)`` index vectors (array or memmap).
        queries: ``(m, dim)`` L2-normalised float32 queries.
        k: neighbours per query (at most ``n``).
        prepare: applied to every chunk of ``vectors`` (see `build_index`).
        chunk_size: index rows scored at once.

    Examples:
        >>> sims, ids = exact_search(np.eye(3, dtype="float32"), np.eye(3, dtype="float32")[:1], 2,
        ...                          chunk_size=2)
        >>> int(ids[0, 0]), float(sims[0, 0])
        (0, 1.0)
    """
    if not faiss_available():
        return _numpy_exact_search(vectors, queries, k, prepare, chunk_size)
    import faiss

    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    for start in range(0, len(vectors), chunk_size):
        rows = prepare(vectors[start:start + chunk_size])
        sims, ids = faiss.knn(queries, rows, min(k, len(rows)), metric=faiss.METRIC_INNER_PRODUCT)
        heap.add_result(sims, np.where(ids >= 0, ids + start, -1))
    heap.finalize()
    return heap.D, heap.I


def _numpy_exact_search(vectors, queries, k, prepare, chunk_size):
    """`exact_search` without faiss: the best ``k`` of every chunk, merged (ties to the lower id)."""
    best_sims = np.full((len(queries), 0), 0, dtype=np.float32)
    best_ids = np.full((len(queries), 0), 0, dtype=np.int64)
    for start in range(0, len(vectors), chunk_size):
        rows = prepare(vectors[start:start + chunk_size])
        sims, ids = numpy_knn(queries, rows, min(k, len(rows)))
        sims = np.concatenate([best_sims, sims], axis=1)
        ids = np.concatenate([best_ids, ids + start], axis=1)
        order = np.lexsort((ids, -sims), axis=1)[:, :k]  # by similarity, ties to the lower id
        best_sims, best_ids = np.take_along_axis(sims, order, axis=1), np.take_along_axis(ids, order, axis=1)
    if best_sims.shape[1] < k:  # fewer vectors than k: faiss's missing places
        pad = k - best_sims.shape[1]
        best_sims = np.pad(best_sims, ((0, 0), (0, pad)), constant_values=-np.finfo(np.float32).max)
        best_ids = np.pad(best_ids, ((0, 0), (0, pad)), constant_values=-1)
    return best_sims, best_ids


def recall_at_k(found_similarities: np.ndarray, exact_similarities: np.ndarray, *,
                tolerance: float = 1e-5) -> float:
    """Fraction of the exact ``k`` nearest neighbours that a search found, averaged over queries.

    A found neighbour counts when its similarity reaches the exact ``k``-th similarity (less
    ``tolerance``), so a search that returns one of two exact duplicates instead of the other
    is not counted as a miss. This equals the usual id-intersection recall when there are no
    ties, and it is valid because every index here returns exact similarities. Missing results
    (id ``-1``, similarity ``-3.4e38``) never count.

    Args:
        found_similarities: ``(m, k)`` similarities returned by the search under test.
        exact_similarities: ``(m, k)`` similarities of the exact search, best first.
        tolerance: similarity slack for ties (float32 rounding).

    Examples:
        >>> exact = np.array([[0.9, 0.8, 0.7]])
        >>> recall_at_k(np.array([[0.9, 0.8, 0.6]]), exact), recall_at_k(exact, exact)
        (0.6666666666666666, 1.0)
    """
    found = np.asarray(found_similarities, dtype=np.float64)
    exact = np.asarray(exact_similarities, dtype=np.float64)
    if found.shape != exact.shape or found.ndim != 2:
        raise InputError(f"recall needs two (queries, k) arrays of one shape, got {found.shape} "
                         f"and {exact.shape}")
    if found.size == 0:
        return 1.0
    k = found.shape[1]
    hits = np.minimum((found >= exact[:, -1:] - tolerance).sum(axis=1), k)
    return float(hits.mean() / k)


def describe(built: BuiltIndex) -> dict:
    """The JSON-safe description of a built index that goes into reports (no timings).

    Examples:
        >>> describe(build_index(np.eye(2), "flat"))
        {'type': 'flat', 'requested': 'flat', 'params': {}, 'notes': []}
    """
    return {"type": built.kind, "requested": built.requested, "params": dict(built.params),
            "notes": list(built.notes)}

r"""Label propagation from a labelled reference set to new texts: the G-Loss-native way to predict.

G-Loss trains the encoder so that the harmonic solution of the batch graph puts each hidden
node's mass on its class. At prediction time the same rule classifies new texts against a
stored, labelled *reference set* $R$ (training embeddings with their labels). Three ways to do it
are implemented here and compared in ``evaluation/benchmarks/classifier_heads.py``:

- **transductive** (`transductive_propagation`): one graph over $R$ and all the new texts
  $U$, solved with [`st_gloss.functional.propagate_labels`][st_gloss.functional.propagate_labels]. With few labelled and
  many new
  texts the walk from a new text mostly wanders among other new texts, and the solution drifts
  to the classes that are central in $U$; optionally corrected by
  `class_mass_normalization` (Zhu, Ghahramani & Lafferty, 2003).
- **reference** (`reference_propagation`): each new text is propagated against $R$ alone.
  For a graph with one hidden node $u$, $P_{uu} = 0$ and the harmonic solution
  $(I - P_{uu})^{-1} P_{ul} Y_l$ is $P_{ul} Y_l$: the kernel-weighted average of the reference
  labels,

  $$
  F_{u c} = \frac{\sum_{j \in R} W_{uj} [y_j = c]}{\sum_{j \in R} W_{uj}}, \qquad
  W_{uj} = \exp\!\big(-\lVert x_u - x_j \rVert^2 / 2\sigma^2\big).
  $$

  A prediction depends on the text alone, not on what else is in the batch.
- **reference, sparse** (``num_neighbors=k``): the same average over the $k$ nearest reference
  embeddings only (found with FAISS), the $k$-nearest-neighbour graph of
  [`st_gloss.functional.knn_graph`][st_gloss.functional.knn_graph] restricted to edges into $R$. Needed when $R$ is
  large:
  the dense average costs $O(|U|\,|R|\,d)$.

All embeddings are L2-normalised first, as in the loss. $\sigma$ comes from
`reference_sigma` (the paper's ``sqrt_median`` rule on the reference set).
"""

from __future__ import annotations

import numpy as np
import torch

from st_gloss import functional
from st_gloss.errors import InputError

_DENSE_BLOCK = 2**24
SIGMA_SAMPLE_SIZE = 2048
"""`reference_sigma` applies the sigma rule to at most this many (seeded) reference rows."""


def _tensor(embeddings) -> torch.Tensor:
    if isinstance(embeddings, torch.Tensor):
        return embeddings.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(embeddings), dtype=torch.float64)


def reference_sigma(reference, rule: str | float = "sqrt_median", labels=None, *, seed: int = 0,
                    sample_size: int = SIGMA_SAMPLE_SIZE) -> float:
    r"""$\sigma$ of the reference graph: a sigma rule of [`st_gloss.sigma`][st_gloss.sigma] on the reference set.

    The rule sees at most ``sample_size`` reference rows, drawn with ``seed`` (the median of the
    pairwise distances of 2,048 rows is within a percent of that of all rows, and the full
    $O(n^2)$ distance matrix of 100k rows would not fit in memory).

    Examples:
        >>> x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
        >>> round(reference_sigma(x), 4)  # sqrt(median distance sqrt(2) / 3)
        0.6866
    """
    from st_gloss.sigma import compute_sigma

    if not isinstance(rule, str):
        return float(rule)
    x = _tensor(reference)
    y = None if labels is None else torch.as_tensor(np.asarray(labels))
    if x.shape[0] > sample_size:
        rows = np.sort(np.random.default_rng(seed).choice(x.shape[0], size=sample_size, replace=False))
        x = x[torch.from_numpy(rows)]
        y = None if y is None else y[torch.from_numpy(rows)]
    return float(compute_sigma(rule, functional.l2_normalize(x), y))


def reference_propagation(reference, reference_labels, queries, sigma: float, num_classes: int, *,
                          num_neighbors: int | None = None, chunk_size: int = 2048) -> np.ndarray:
    r"""Each query's harmonic solution against the reference set alone (kernel-weighted label average).

    $F_{uc} = \sum_j \mathrm{softmax}_j(-\lVert x_u - x_j\rVert^2 / 2\sigma^2)\,[y_j = c]$ over all
    reference rows $j$ (dense), or over the query's ``num_neighbors`` nearest reference rows
    (sparse, exact FAISS search). Rows are L2-normalised first; computed in float64, in chunks of
    at most ``chunk_size`` queries and 2^24 kernel entries (128 MB), so memory stays bounded.

    Args:
        reference: ``(n_ref, d)`` labelled embeddings.
        reference_labels: ``(n_ref,)`` integer class ids.
        queries: ``(n, d)`` embeddings to classify.
        sigma: the kernel width.
        num_classes: $C$.
        num_neighbors: ``None`` for the dense average, else the $k$ of the sparse one.
        chunk_size: queries per block.

    Returns:
        ``(n, C)`` float64 class distributions (rows sum to 1).

    Examples:
        >>> ref = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
        >>> reference_propagation(ref, [0, 0, 1], np.array([[0.8, 0.2]]), sigma=0.3, num_classes=2).round(3)
        array([[1., 0.]])
    """
    ref = functional.l2_normalize(_tensor(reference))
    labels = torch.as_tensor(np.asarray(reference_labels), dtype=torch.long)
    targets = torch.nn.functional.one_hot(labels, num_classes).to(torch.float64)
    query = functional.l2_normalize(_tensor(queries))
    out = np.empty((query.shape[0], num_classes), dtype=np.float64)
    scale = 1.0 / (2.0 * float(sigma) ** 2)
    if num_neighbors is not None:
        from st_gloss.evaluation.knn import search_neighbours

        k = min(int(num_neighbors), ref.shape[0])
        found = search_neighbours(ref.numpy().astype(np.float32), query.numpy().astype(np.float32), k,
                                  index="flat", chunk_size=chunk_size)
        neighbours = torch.from_numpy(found.indices)
        # Recompute the distances of the chosen pairs in float64 (FAISS gives float32 similarities).
        for start in range(0, query.shape[0], chunk_size):
            rows = slice(start, start + chunk_size)
            d2 = (query[rows, None, :] - ref[neighbours[rows]]).pow(2).sum(dim=2)
            weights = torch.softmax(-d2 * scale, dim=1)
            out[rows] = torch.einsum("nk,nkc->nc", weights, targets[neighbours[rows]]).numpy()
        return out
    ref_sq = (ref * ref).sum(dim=1)
    rows = max(1, min(chunk_size, _DENSE_BLOCK // max(ref.shape[0], 1)))  # at most 128 MB of float64 kernel
    for start in range(0, query.shape[0], rows):
        q = query[start:start + rows]
        d2 = ((q * q).sum(dim=1)[:, None] + ref_sq[None, :] - 2.0 * q @ ref.T).clamp_min(0.0)
        out[start:start + len(q)] = (torch.softmax(-d2 * scale, dim=1) @ targets).numpy()
    return out


def transductive_propagation(reference, reference_labels, queries, sigma: float, num_classes: int, *,
                             num_neighbors: int | None = None) -> np.ndarray:
    r"""The plain harmonic solution of ONE graph over the reference set and all the queries.

    [`st_gloss.functional.propagate_labels`][st_gloss.functional.propagate_labels] with the reference rows labelled and
    the queries
    hidden: $F_u = (I - P_{uu})^{-1} P_{ul} Y_l$ on the dense graph, or on the directed
    ``num_neighbors``-nearest-neighbour graph ([`st_gloss.functional.knn_graph`][st_gloss.functional.knn_graph], solved
    iteratively). A query's result depends on the other queries. There for the comparison in
    the benchmark; the classifier head uses `reference_propagation`.

    Examples:
        >>> ref = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> transductive_propagation(ref, [0, 1], np.array([[0.9, 0.1]]), 0.3, 2).argmax(axis=1)
        array([0])
    """
    ref, query = _tensor(reference), _tensor(queries)
    x = torch.cat([ref, query])
    labels = torch.cat([torch.as_tensor(np.asarray(reference_labels), dtype=torch.long),
                        torch.zeros(query.shape[0], dtype=torch.long)])
    mask = torch.zeros(x.shape[0], dtype=torch.bool)
    mask[: ref.shape[0]] = True
    if num_neighbors is None:
        f = functional.propagate_labels(x, labels, mask, float(sigma), num_classes, propagation="auto")
    else:
        f = functional.propagate_labels(x, labels, mask, float(sigma), num_classes, graph="knn",
                                        num_neighbors=int(num_neighbors), propagation="iterative",
                                        num_iterations=1000, tol=1e-9)
    return f.numpy()


def class_mass_normalization(distributions: np.ndarray, prior) -> np.ndarray:
    r"""Zhu, Ghahramani & Lafferty's class mass normalisation of propagated distributions.

    Column $c$ is scaled so that the classes' total masses over the unlabelled set follow the
    prior $q$ (the labelled class frequencies): $F_{uc} \leftarrow q_c F_{uc} / \sum_{v} F_{vc}$;
    rows are then renormalised to sum to 1. Depends on the whole set of unlabelled rows.

    Examples:
        >>> f = np.array([[0.6, 0.4], [0.7, 0.3]])
        >>> class_mass_normalization(f, [0.5, 0.5]).argmax(axis=1)
        array([1, 0])
    """
    f = np.asarray(distributions, dtype=np.float64)
    prior = np.asarray(prior, dtype=np.float64)
    mass = f.sum(axis=0)
    scaled = f * (prior / np.maximum(mass, 1e-300))[None, :]
    totals = scaled.sum(axis=1, keepdims=True)
    uniform = np.full_like(scaled, 1.0 / scaled.shape[1])
    return np.where(totals > 0, scaled / np.maximum(totals, 1e-300), uniform)


def check_reference(reference: np.ndarray, labels: np.ndarray) -> None:
    """Refuse an empty or single-class reference set with an `InputError`."""
    if len(reference) == 0:
        raise InputError("the propagation head needs labelled reference texts; fit it on some")
    if len(np.unique(labels)) < 2:
        raise InputError("the propagation head needs reference texts of at least two classes")

r"""The mathematics of G-Loss as pure functions on tensors.

Everything here is stateless and differentiable with respect to the embeddings. The notation
follows the paper (Sharma, Agarwal & Kumar, LoG 2025) and Zhu, Ghahramani & Lafferty (2003):

- $X \in \mathbb{R}^{B \times d}$: the embeddings of a mini-batch, L2-normalised row-wise;
- $W_{ij} = \exp\!\big(-\lVert x_i - x_j \rVert^2 / 2\sigma^2\big)$, $W_{ii} = 0$: the Gaussian graph;
- $P$: a transition matrix made from $W$ (row-normalised $D^{-1}W$ by default);
- $l$ / $u$: the labelled and the hidden (unlabelled) nodes; $Y_l$: one-hot labels of $l$;
- $F_u = (I - P_{uu})^{-1} P_{ul} Y_l$: the harmonic solution, one class distribution per hidden node;
- $\mathcal{L}_G = -\frac{1}{|u|} \sum_{i \in u} \log F_{i, y_i}$: the graph loss.

The solve runs in float64 (float32 on devices without float64, such as Apple's MPS) whatever the
dtype of the embeddings, so the loss is the same under mixed precision and never NaN.

For graphs of thousands of nodes the closed-form solve, $O(|u|^3)$, gives way to a $k$-step
iterative propagation (`iterative_solution`), and the fully connected graph to an optional
sparse $k$-nearest-neighbour graph (`knn_graph`); `resolve_propagation` picks the
solver by the number of hidden nodes.

Sigma rules live in [`st_gloss.sigma`][st_gloss.sigma], label masking in [`st_gloss.masking`][st_gloss.masking].
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Normalization = Literal["row", "symmetric"]
NORMALIZATIONS: tuple[str, ...] = ("row", "symmetric")
PROPAGATIONS: tuple[str, ...] = ("auto", "closed_form", "iterative")
"""How the hidden nodes' distributions are solved: ``auto`` picks by size (`resolve_propagation`)."""
GRAPHS: tuple[str, ...] = ("dense", "knn")
"""The graph of a batch: fully connected (``dense``, the paper's) or the ``knn`` nearest neighbours of each node."""
AUTO_CLOSED_FORM_MAX_HIDDEN = 2048
"""``propagation="auto"`` solves in closed form up to this many hidden nodes, iteratively above."""
DEFAULT_NUM_ITERATIONS = 100
"""Steps of `iterative_solution` when none is given."""
DEFAULT_KNN_NEIGHBORS = 16
"""Neighbours per node of `knn_graph` when none is given."""
UNLABELLED = -1
"""The label of a text whose class is unknown (scikit-learn's convention for semi-supervised data).

Such a node is always hidden: it carries labels through the graph and receives gradients, but has
no loss term of its own (`graph_loss`)."""

# Damping of the hidden-to-hidden block in the solve, per solve dtype. It keeps
# I - alpha * P_uu invertible when a group of hidden nodes is (numerically) cut off from every
# labelled node; on connected graphs it moves the solution by about this much, far below the
# tolerance of any test or of float32 training.
_DAMPING = {torch.float64: 1e-10, torch.float32: 1e-5}
_TINY = {torch.float64: 1e-200, torch.float32: 1e-30}
_LOG_FLOOR = 1e-12
_MIN_SIGMA = 1e-6  # below it 2 sigma^2 underflows towards 0 and every logit becomes -inf
MAX_INFERRED_CLASSES = 2**20
"""The most classes `propagate_labels` infers from ``labels.max() + 1``; above it, pass ``num_classes``."""


def as_real(value, name: str, *, owner: str = "") -> float:
    """``value`` as a float if it is a real number: Python, numpy or a one-element tensor, but not a bool.

    Raises a ``ValueError`` naming ``name`` (and ``owner``, the class or function) otherwise. Range
    checks are the caller's.

    Examples:
        >>> import numpy as np
        >>> as_real(np.float32(0.5), "sigma"), as_real(torch.tensor(2), "sigma")
        (0.5, 2.0)
        >>> as_real(True, "sigma")
        Traceback (most recent call last):
        ...
        ValueError: sigma must be a real number, got True
    """
    if isinstance(value, Tensor) and value.numel() == 1 and value.dtype != torch.bool and not value.is_complex():
        return float(value.detach().reshape(()))
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    prefix = f"{owner}: " if owner else ""
    raise ValueError(f"{prefix}{name} must be a real number, got {value!r}")


def as_integer(value, name: str, *, minimum: int = 1, owner: str = "") -> int:
    """``value`` as an int if it is an integer >= ``minimum``: Python, numpy or a one-element tensor, not a bool.

    Examples:
        >>> import numpy as np
        >>> as_integer(np.int64(4), "num_neighbors")
        4
        >>> as_integer(4.0, "num_neighbors")
        Traceback (most recent call last):
        ...
        ValueError: num_neighbors must be a positive integer, got 4.0
    """
    if isinstance(value, Tensor) and value.numel() == 1 and not value.dtype.is_floating_point \
            and value.dtype != torch.bool and not value.is_complex():
        value = int(value.reshape(()))
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= minimum:
        return int(value)
    kind = {0: "non-negative integer", 1: "positive integer"}.get(minimum, f"integer >= {minimum}")
    prefix = f"{owner}: " if owner else ""
    raise ValueError(f"{prefix}{name} must be a {kind}, got {value!r}")


def count_non_finite_rows(embeddings: Tensor) -> Tensor:
    """The number of rows of ``embeddings`` with a NaN or inf entry, as a 0-d tensor (no host sync).

    Examples:
        >>> int(count_non_finite_rows(torch.tensor([[1.0, float("nan")], [0.0, 1.0]])))
        1
    """
    return (~torch.isfinite(embeddings)).reshape(embeddings.shape[0], -1).any(dim=1).sum()


def non_finite_message(owner: str, num_bad: int, embeddings: Tensor) -> str:
    """The error for embeddings with NaN or inf rows: who refuses, how many rows, the likely cause and the fix.

    Examples:
        >>> non_finite_message("graph_loss", 2, torch.zeros(8, 3)).split(";")[0]
        'graph_loss: 2 of 8 embedding rows contain NaN or inf'
    """
    cause = (
        "the embeddings are float16, whose range ends at 65504, so an overflow in the model's forward pass "
        "(fp16=True mixed precision) is the likely cause"
        if embeddings.dtype == torch.float16
        else "the usual cause is an overflow under float16 mixed precision (fp16=True) or weights that have "
        "diverged (too high a learning rate)"
    )
    return (
        f"{owner}: {num_bad} of {embeddings.shape[0]} embedding rows contain NaN or inf; the loss of such a "
        f"batch is meaningless and its gradients NaN. {cause[0].upper() + cause[1:]}: train with bf16=True or in "
        "float32 instead of fp16, or lower the learning rate."
    )


def check_finite(embeddings: Tensor, owner: str) -> None:
    """Raise a ``ValueError`` (`non_finite_message`) if any row of ``embeddings`` has NaN or inf; one host sync.

    Examples:
        >>> check_finite(torch.ones(2, 3), "graph_loss")  # finite: nothing happens
    """
    num_bad = int(count_non_finite_rows(embeddings))
    if num_bad:
        raise ValueError(non_finite_message(owner, num_bad, embeddings))


def solve_dtype_for(device: torch.device) -> torch.dtype:
    """The dtype of the propagation solve on ``device``: float64, or float32 where float64 is missing.

    Examples:
        >>> solve_dtype_for(torch.device("cpu"))
        torch.float64
    """
    return torch.float32 if device.type == "mps" else torch.float64


def l2_normalize(embeddings: Tensor, eps: float = 1e-12) -> Tensor:
    r"""Scale each row to unit Euclidean norm: $x_i \leftarrow x_i / \max(\lVert x_i \rVert, \epsilon)$.

    A zero row stays zero, with a gradient of 1 (not $1/\epsilon$). Rows with entries above 1 are
    first divided by their largest absolute entry (a constant, so the result and its gradient are
    unchanged), so that the norm does not overflow: a float32 row of 1e30 is normalised, not
    zeroed. float16 and bfloat16 are normalised in float32 (the $\epsilon$ of a zero row underflows
    in float16) and returned in their own dtype.

    Examples:
        >>> l2_normalize(torch.tensor([[3.0, 4.0], [3e30, 4e30]]))
        tensor([[0.6000, 0.8000],
                [0.6000, 0.8000]])
    """
    x = embeddings.float() if embeddings.dtype in (torch.float16, torch.bfloat16) else embeddings
    if x.numel():
        x = x / x.detach().abs().amax(dim=-1, keepdim=True).clamp_min(1.0)
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    # A zero row stays zero; dividing it by 1 rather than by eps keeps its gradient at 1, not 1 / eps
    # (1e12, beyond float16 and a spike in any dtype).
    denominator = torch.where(norm == 0, torch.ones_like(norm), norm.clamp_min(eps))
    return (x / denominator).to(embeddings.dtype)


def squared_distances(embeddings: Tensor) -> Tensor:
    r"""Pairwise squared Euclidean distances $\lVert x_i - x_j \rVert^2$, exactly zero on the diagonal.

    Computed as $\lVert x_i\rVert^2 + \lVert x_j\rVert^2 - 2 x_i^\top x_j$ in at least float32 and
    clamped at zero (rounding can make it slightly negative).

    Examples:
        >>> squared_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
        tensor([[ 0., 25.],
                [25.,  0.]])
    """
    x = embeddings if embeddings.dtype in (torch.float32, torch.float64) else embeddings.float()
    sq_norms = (x * x).sum(dim=1)
    d2 = sq_norms[:, None] + sq_norms[None, :] - 2.0 * (x @ x.T)
    eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    return d2.clamp_min(0.0).masked_fill(eye, 0.0)


def pairwise_distances(embeddings: Tensor) -> Tensor:
    r"""Pairwise Euclidean distances $\lVert x_i - x_j \rVert$ (zero on the diagonal).

    Examples:
        >>> pairwise_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
        tensor([[0., 5.],
                [5., 0.]])
    """
    d2 = squared_distances(embeddings)
    # sqrt has an infinite derivative at 0: keep the diagonal out of it.
    eye = torch.eye(d2.shape[0], dtype=torch.bool, device=d2.device)
    return d2.masked_fill(eye, 1.0).sqrt().masked_fill(eye, 0.0)


def _as_sigma(sigma: float | Tensor, dtype: torch.dtype, device: torch.device) -> Tensor:
    if isinstance(sigma, Tensor):
        # Computed by a sigma rule on this device: no host sync to validate it, just a floor.
        if sigma.numel() != 1 or not sigma.dtype.is_floating_point:
            raise ValueError(f"sigma must be a single floating-point number, got a {sigma.dtype} tensor of shape "
                             f"{tuple(sigma.shape)}")
        return sigma.detach().to(device=device, dtype=dtype).reshape(()).clamp_min(_MIN_SIGMA)
    if not (isinstance(sigma, numbers.Real) and not isinstance(sigma, bool) and 0 < float(sigma) < float("inf")):
        raise ValueError(f"sigma must be a positive finite number, got {sigma!r}")
    return torch.tensor(max(float(sigma), _MIN_SIGMA), dtype=dtype, device=device)


def gaussian_logits(
    embeddings: Tensor, sigma: float | Tensor, *, normalize: bool = True, dtype: torch.dtype | None = None
) -> Tensor:
    r"""The exponents of the Gaussian graph, $-\lVert x_i - x_j \rVert^2 / 2\sigma^2$, with $-\infty$ on the diagonal.

    Working with logits lets the row normalisation be a softmax, which never divides by zero.

    Args:
        embeddings: ``(B, d)`` embeddings.
        sigma: the kernel width (a positive real number or 0-d tensor; treated as a constant and
            floored at 1e-6, below which $2\sigma^2$ underflows).
        normalize: L2-normalise the rows first (the paper does).
        dtype: dtype of the result; defaults to the solve dtype of the device (float64 on CPU/CUDA).

    Examples:
        >>> gaussian_logits(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), sigma=1.0)
        tensor([[-inf, -1.],
                [-1., -inf]], dtype=torch.float64)
    """
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be a (batch, dim) matrix, got shape {tuple(embeddings.shape)}")
    dtype = dtype or solve_dtype_for(embeddings.device)
    x = l2_normalize(embeddings.to(dtype)) if normalize else embeddings.to(dtype)
    sigma = _as_sigma(sigma, dtype, embeddings.device)
    logits = -squared_distances(x) / (2.0 * sigma * sigma)
    eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    return logits.masked_fill(eye, float("-inf"))


def gaussian_affinity(
    embeddings: Tensor, sigma: float | Tensor, *, normalize: bool = True, dtype: torch.dtype | None = None
) -> Tensor:
    r"""The fully connected Gaussian graph $W_{ij} = \exp(-\lVert x_i - x_j\rVert^2 / 2\sigma^2)$, $W_{ii} = 0$.

    Rows of ``embeddings`` are L2-normalised first unless ``normalize=False``.

    Examples:
        >>> gaussian_affinity(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), sigma=1.0)
        tensor([[0.0000, 0.3679],
                [0.3679, 0.0000]], dtype=torch.float64)
    """
    return gaussian_logits(embeddings, sigma, normalize=normalize, dtype=dtype).exp()


def transition_matrix(logits: Tensor, normalization: Normalization = "row") -> Tensor:
    r"""Turn Gaussian logits into the transition matrix $P$ used for propagation.

    - ``"row"`` (default): $P = D^{-1} W$ with $D = \mathrm{diag}(W \mathbf{1})$, the random-walk
      matrix of Zhu & Ghahramani, computed as a row-wise softmax of the logits. With it the
      harmonic solution equals scikit-learn's ``LabelPropagation(kernel="rbf", gamma=1/(2 sigma^2))``.
    - ``"symmetric"``: the authors' reference code, there to reproduce the paper's numbers:
      $A = D^{-1/2} W D^{-1/2}$, then each column divided by its sum, then each row by its sum.

    Args:
        logits: ``(B, B)`` output of `gaussian_logits` (``-inf`` on the diagonal).
        normalization: ``"row"`` or ``"symmetric"``.

    Examples:
        >>> logits = gaussian_logits(torch.eye(3), sigma=1.0)
        >>> transition_matrix(logits).sum(dim=1)
        tensor([1., 1., 1.], dtype=torch.float64)
    """
    if normalization == "row":
        return torch.softmax(logits, dim=1)
    if normalization == "symmetric":
        # In the log domain, so that no degree underflows (at small sigma most rows' weights are
        # below 1e-308 once exponentiated, and dividing by a clamped degree made NaN gradients):
        # log A = log W - (log d_i + log d_j) / 2, log d = logsumexp of a row of logits; the column
        # normalisation is a log-softmax over each column and the row normalisation a softmax.
        log_degree = _finite_or_zero(torch.logsumexp(logits, dim=1))
        log_a = logits - 0.5 * log_degree[:, None] - 0.5 * log_degree[None, :]
        log_a = log_a - _finite_or_zero(torch.logsumexp(log_a, dim=0, keepdim=True))
        return torch.softmax(log_a, dim=1)
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")


def _finite_or_zero(log_sums: Tensor) -> Tensor:
    """Log-sums of rows with no edge (``-inf``, a graph of one node) as 0, so that no ``-inf - -inf`` appears."""
    return torch.where(torch.isfinite(log_sums), log_sums, torch.zeros_like(log_sums))


def harmonic_solution(transition: Tensor, labelled_mask: Tensor, labelled_targets: Tensor) -> Tensor:
    r"""Closed-form label propagation: $F_u = (I - P_{uu})^{-1} P_{ul} Y_l$, rows renormalised to sum to 1.

    Solved with an LU solve (never an explicit inverse). The hidden block is damped by a factor
    $1 - 10^{-10}$ (float64) so that the system stays invertible when hidden nodes are cut off from
    every labelled node; such nodes get the uniform distribution.

    Args:
        transition: ``(B, B)`` transition matrix $P$.
        labelled_mask: ``(B,)`` bool, ``True`` for the nodes that keep their label.
        labelled_targets: ``(n_l, C)`` label distributions $Y_l$ of the labelled nodes, in mask order.

    Returns:
        ``(n_u, C)``: the class distribution of each hidden node, in the order of
        ``(~labelled_mask).nonzero()``.

    Examples:
        >>> P = torch.tensor([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]], dtype=torch.float64)
        >>> Y_l = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
        >>> harmonic_solution(P, torch.tensor([True, True, False]), Y_l)
        tensor([[0.5000, 0.5000]], dtype=torch.float64)
    """
    hidden = ~labelled_mask
    hidden_rows = transition[hidden]
    p_uu, p_ul = hidden_rows[:, hidden], hidden_rows[:, labelled_mask]
    n_u = p_uu.shape[0]
    damping = _DAMPING.get(transition.dtype, 1e-5)
    tiny = _TINY.get(transition.dtype, 1e-30)
    system = torch.eye(n_u, dtype=transition.dtype, device=transition.device) - (1.0 - damping) * p_uu
    f_u = torch.linalg.solve(system, p_ul @ labelled_targets.to(transition.dtype))
    return _as_distributions(f_u, tiny)


def _as_distributions(f_u: Tensor, tiny: float) -> Tensor:
    """Rows renormalised to sum to 1; a row with no mass (cut off from every label) becomes uniform."""
    f_u = f_u.clamp_min(0.0)
    totals = f_u.sum(dim=1, keepdim=True)
    has_mass = totals > tiny
    uniform = torch.full_like(f_u, 1.0 / max(f_u.shape[1], 1))
    # The branch torch.where drops still gets a zero gradient, and 0 * inf is NaN: divide it by 1.
    safe_totals = torch.where(has_mass, totals, torch.ones_like(totals))
    return torch.where(has_mass, f_u / safe_totals, uniform)


def resolve_propagation(propagation: str, num_hidden: int) -> str:
    r"""The solver that ``propagation`` means for a graph with ``num_hidden`` hidden nodes.

    ``"auto"`` is ``"closed_form"`` up to `AUTO_CLOSED_FORM_MAX_HIDDEN` (2048) hidden nodes
    and ``"iterative"`` above: the LU solve costs $O(|u|^3)$ and is exact, the iteration costs
    $O(k\,|u|^2 C)$ on the dense graph ($O(k\,n\,m\,C)$ on an $m$-neighbour graph) and converges
    geometrically. Below the threshold the solve is also the faster of the two on CPU and GPU
    (``evaluation/benchmarks/graph_scaling.py`` measures both).

    Examples:
        >>> resolve_propagation("auto", 90), resolve_propagation("auto", 5000)
        ('closed_form', 'iterative')
    """
    if propagation not in PROPAGATIONS:
        raise ValueError(f"propagation must be one of {PROPAGATIONS}, got {propagation!r}")
    if propagation != "auto":
        return propagation
    return "closed_form" if num_hidden <= AUTO_CLOSED_FORM_MAX_HIDDEN else "iterative"


def iterative_solution(
    transition: Tensor,
    labelled_mask: Tensor,
    labelled_targets: Tensor,
    num_iterations: int = DEFAULT_NUM_ITERATIONS,
    tol: float | None = None,
) -> Tensor:
    r"""Label propagation in $k$ steps: $F_u^{(t+1)} = P_{uu} F_u^{(t)} + P_{ul} Y_l$, $F_u^{(0)} = 0$.

    The iterate after $t$ steps is $\sum_{s<t} P_{uu}^s P_{ul} Y_l$, the probability that a random
    walk from each hidden node is absorbed at a labelled node of each class within $t$ steps; it
    increases to the harmonic solution $(I - P_{uu})^{-1} P_{ul} Y_l$ of `harmonic_solution`,
    with an error that shrinks like $\rho(P_{uu})^t$. On the Gaussian batch graph every hidden node
    sends a share of about $\gamma$ of its weight to labelled nodes, so $\rho \approx 1 - \gamma$
    and 100 steps are exact to float64 precision; on a sparse `knn_graph` the walk needs more
    steps to reach a label (use ``tol``). Rows are renormalised to sum to 1, as in the closed form.
    Differentiable; costs $O(k\,|u|^2 C)$ with a dense ``transition`` and $O(k\,\mathrm{nnz}\,C)$
    with a sparse one, and keeps $k$ copies of $F$ for the backward pass.

    Args:
        transition: ``(B, B)`` transition matrix $P$, or ``(neighbors, weights)`` of a sparse graph
            (`knn_transition`).
        labelled_mask: ``(B,)`` bool, ``True`` for the nodes that keep their label.
        labelled_targets: ``(n_l, C)`` label distributions $Y_l$ of the labelled nodes, in mask order.
        num_iterations: the maximum number of steps $k$.
        tol: stop early once no entry moves by more than ``tol`` in a step (checked every 10 steps,
            one host sync each); ``None`` runs all ``num_iterations`` steps without a sync.

    Returns:
        ``(n_u, C)``: the class distribution of each hidden node, in the order of ``(~labelled_mask).nonzero()``.

    Examples:
        >>> P = torch.tensor([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]], dtype=torch.float64)
        >>> Y_l = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
        >>> iterative_solution(P, torch.tensor([True, True, False]), Y_l, num_iterations=5)
        tensor([[0.5000, 0.5000]], dtype=torch.float64)
    """
    num_iterations = as_integer(num_iterations, "num_iterations")
    sparse = isinstance(transition, tuple)
    dtype, device = (transition[1] if sparse else transition).dtype, labelled_mask.device
    tiny = _TINY.get(dtype, 1e-30)
    hidden = ~labelled_mask
    targets = labelled_targets.to(dtype)
    if sparse:
        # Iterate on all nodes and clamp the labelled rows: one neighbour sum per step.
        neighbors, weights = transition
        clamp = torch.zeros(labelled_mask.shape[0], targets.shape[1], dtype=dtype, device=device)
        clamp = clamp.index_put((labelled_mask.nonzero().squeeze(1),), targets)
        keep = labelled_mask[:, None]

        def step(f: Tensor) -> Tensor:
            return torch.where(keep, clamp, _NeighbourSum.apply(weights, f, neighbors))

        f = clamp
    else:
        hidden_rows = transition[hidden]
        p_uu, source = hidden_rows[:, hidden], hidden_rows[:, labelled_mask] @ targets

        def step(f: Tensor) -> Tensor:
            return torch.addmm(source, p_uu, f)

        f = torch.zeros_like(source)
    for t in range(num_iterations):
        f_next = step(f)
        converged = tol is not None and t % 10 == 9 and bool((f_next - f).abs().max() <= tol)
        f = f_next
        if converged:
            break
    f_u = f[hidden] if sparse else f
    return _as_distributions(f_u, tiny)


class _NeighbourSum(torch.autograd.Function):
    r"""$out_i = \sum_k P_{ik} F_{n_{ik}}$ for an $m$-neighbour graph, saving only $P$ and $F$ for backward.

    Autograd of the same expression written with indexing (or ``torch.sparse.mm``) keeps an
    $(n, m, C)$ tensor (or builds an $(n, n)$ dense gradient) at every propagation step; this
    recomputes the gather in the backward pass instead, so memory per step is that of $F$.
    """

    @staticmethod
    def forward(ctx, weights: Tensor, f: Tensor, neighbors: Tensor) -> Tensor:
        ctx.save_for_backward(weights, f, neighbors)
        return torch.einsum("nm,nmc->nc", weights, f[neighbors])

    @staticmethod
    def backward(ctx, grad: Tensor):
        weights, f, neighbors = ctx.saved_tensors
        grad_weights = grad_f = None
        if ctx.needs_input_grad[0]:
            grad_weights = torch.einsum("nc,nmc->nm", grad, f[neighbors])
        if ctx.needs_input_grad[1]:
            grad_f = torch.zeros_like(f).index_add_(
                0, neighbors.reshape(-1), (weights[:, :, None] * grad[:, None, :]).reshape(-1, f.shape[1])
            )
        return grad_weights, grad_f, None


def knn_graph(
    embeddings: Tensor,
    sigma: float | Tensor,
    num_neighbors: int = DEFAULT_KNN_NEIGHBORS,
    *,
    normalize: bool = True,
    dtype: torch.dtype | None = None,
    chunk_size: int = 2048,
) -> tuple[Tensor, Tensor]:
    r"""A sparse Gaussian graph: each node's ``num_neighbors`` nearest nodes and their logits.

    The neighbours are found without gradient, ``chunk_size`` rows of distances at a time (so
    memory stays $O(\text{chunk} \cdot n)$ rather than $O(n^2)$); the logits
    $-\lVert x_i - x_j \rVert^2 / 2\sigma^2$ of the chosen pairs are then computed with gradient
    in $O(n\,m\,d)$. The graph is directed (node $i$ keeps its own $m$ nearest), which is what the
    random walk of label propagation needs; with $m = n - 1$ it is the dense graph of
    `gaussian_logits`.

    Args:
        embeddings: ``(n, d)`` embeddings.
        sigma: the kernel width.
        num_neighbors: $m$, neighbours per node (clipped to $n - 1$).
        normalize: L2-normalise the rows first (the paper does).
        dtype: dtype of the logits; defaults to the solve dtype of the device.
        chunk_size: rows per block of the neighbour search and of the distances.

    Returns:
        ``(neighbors, logits)``, both ``(n, m)``: neighbour indices (nearest first) and their logits.

    Examples:
        >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> neighbors, logits = knn_graph(x, sigma=0.5, num_neighbors=1)
        >>> neighbors.squeeze(1).tolist()
        [1, 0, 3, 2]
    """
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be a (batch, dim) matrix, got shape {tuple(embeddings.shape)}")
    n = embeddings.shape[0]
    num_neighbors = as_integer(num_neighbors, "num_neighbors")
    if n < 2:
        raise ValueError(f"a k-nearest-neighbour graph needs at least 2 nodes, got {n}")
    m = min(num_neighbors, n - 1)
    dtype = dtype or solve_dtype_for(embeddings.device)
    x = l2_normalize(embeddings.to(dtype)) if normalize else embeddings.to(dtype)
    sigma = _as_sigma(sigma, dtype, embeddings.device)
    with torch.no_grad():
        xd = x.detach()
        sq = (xd * xd).sum(dim=1)
        neighbors = torch.empty(n, m, dtype=torch.long, device=x.device)
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            d2 = sq[start:stop, None] + sq[None, :] - 2.0 * (xd[start:stop] @ xd.T)
            rows = torch.arange(start, stop, device=x.device)
            d2[rows - start, rows] = float("inf")
            neighbors[start:stop] = d2.topk(m, dim=1, largest=False).indices
    d2 = _NeighbourDistances.apply(x, neighbors, chunk_size)
    return neighbors, -d2 / (2.0 * sigma * sigma)


class _NeighbourDistances(torch.autograd.Function):
    r"""$\lVert x_i - x_{n_{ik}} \rVert^2$ for every node and neighbour, in row chunks, saving only $x$.

    Written with indexing, autograd would keep the ``(n, m, d)`` gathered neighbours; here memory
    beyond the result stays at one chunk of them, in the forward and the backward pass.
    """

    @staticmethod
    def forward(ctx, x: Tensor, neighbors: Tensor, chunk_size: int) -> Tensor:
        ctx.save_for_backward(x, neighbors)
        ctx.chunk_size = chunk_size
        out = x.new_empty(neighbors.shape)
        for start in range(0, x.shape[0], chunk_size):
            rows = slice(start, start + chunk_size)
            out[rows] = (x[rows, None, :] - x[neighbors[rows]]).pow(2).sum(dim=2)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, neighbors = ctx.saved_tensors
        grad_x = torch.zeros_like(x)
        for start in range(0, x.shape[0], ctx.chunk_size):
            rows = slice(start, start + ctx.chunk_size)
            diff = 2.0 * grad[rows, :, None] * (x[rows, None, :] - x[neighbors[rows]])  # (chunk, m, d)
            grad_x[rows] += diff.sum(dim=1)
            grad_x.index_add_(0, neighbors[rows].reshape(-1), -diff.reshape(-1, x.shape[1]))
        return grad_x, None, None


def knn_transition(neighbors: Tensor, logits: Tensor) -> tuple[Tensor, Tensor]:
    r"""The row-normalised transition matrix $P = D^{-1} W$ of a `knn_graph`, in neighbour form.

    Each row is a softmax over its node's neighbour logits. Returns ``(neighbors, weights)``, both
    ``(n, m)``: $P_{i, n_{ik}} = w_{ik}$, zero elsewhere. `iterative_solution` takes the pair
    as its ``transition``; `dense_transition` turns it into an ``(n, n)`` matrix.
    Differentiable with respect to ``logits``.

    Examples:
        >>> neighbors = torch.tensor([[1], [0]])
        >>> dense_transition(*knn_transition(neighbors, torch.tensor([[-1.0], [-2.0]])))
        tensor([[0., 1.],
                [1., 0.]])
    """
    return neighbors, torch.softmax(logits, dim=1)


def dense_transition(neighbors: Tensor, weights: Tensor) -> Tensor:
    """The ``(n, n)`` matrix of a transition in neighbour form (`knn_transition`); differentiable.

    Examples:
        >>> dense_transition(torch.tensor([[1], [0]]), torch.tensor([[1.0], [1.0]]))
        tensor([[0., 1.],
                [1., 0.]])
    """
    n = neighbors.shape[0]
    return weights.new_zeros(n, n).scatter(1, neighbors, weights)


def propagate_labels(
    embeddings: Tensor,
    labels: Tensor,
    labelled_mask: Tensor,
    sigma: float | Tensor,
    num_classes: int | None = None,
    normalization: Normalization = "row",
    *,
    normalize: bool = True,
    propagation: str = "closed_form",
    graph: str = "dense",
    num_neighbors: int = DEFAULT_KNN_NEIGHBORS,
    num_iterations: int = DEFAULT_NUM_ITERATIONS,
    tol: float | None = None,
    solve_dtype: torch.dtype | None = None,
) -> Tensor:
    r"""Propagate the visible labels over the batch graph to the hidden nodes.

    Builds the Gaussian graph of the (L2-normalised) embeddings, the transition matrix
    (`transition_matrix`) and returns the harmonic solution
    $F_u = (I - P_{uu})^{-1} P_{ul} Y_l$ (`harmonic_solution`). Differentiable with respect to
    ``embeddings``; computed in float64 (see `solve_dtype_for`).

    Args:
        embeddings: ``(B, d)`` embeddings (any float dtype, any device).
        labels: ``(B,)`` integer class ids; [`UNLABELLED`][st_gloss.functional.UNLABELLED] (-1) for a
            text without a label, which must be hidden (``labelled_mask`` False): it carries labels
            through the graph and gets a distribution like any hidden node.
        labelled_mask: ``(B,)`` bool, ``True`` for the nodes whose label is visible.
        sigma: Gaussian kernel width.
        num_classes: number of classes $C$ (the columns of the result); defaults to
            ``labels.max() + 1``, which is refused above `MAX_INFERRED_CLASSES` (2**20): pass
            ``num_classes`` or map the ids to ``0..C-1`` first (``torch.unique(return_inverse=True)``).
        normalization: ``"row"`` ($D^{-1}W$, default) or ``"symmetric"`` (the authors' code;
            dense graph only).
        propagation: ``"closed_form"`` (`harmonic_solution`), ``"iterative"``
            (`iterative_solution`) or ``"auto"`` (`resolve_propagation`).
        graph: ``"dense"`` (fully connected, the paper's) or ``"knn"`` (`knn_graph`).
        num_neighbors: neighbours per node of the ``"knn"`` graph.
        num_iterations: steps of the iterative solver.
        tol: early-stopping tolerance of the iterative solver.
        solve_dtype: dtype of the graph and the solve; ``None`` is `solve_dtype_for` the device
            (float64 on CPU and CUDA). float32 is faster on GPUs with slow float64 and stays finite,
            at about 1e-5 relative error in the propagated distributions.

    Returns:
        ``(n_u, C)`` class distributions of the hidden nodes (rows sum to 1), in the order of
        ``(~labelled_mask).nonzero()``.

    Examples:
        >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> y = torch.tensor([0, 0, 1, 1])
        >>> mask = torch.tensor([True, False, True, False])
        >>> propagate_labels(x, y, mask, sigma=0.3).argmax(dim=1)
        tensor([0, 1])
    """
    labels, labelled_mask = _check_labels_and_mask(embeddings, labels, labelled_mask)
    options = _solver_options(normalization, propagation, graph, num_neighbors, num_iterations, tol, solve_dtype)
    n_labelled, num_bad, low, high, masked_unlabelled, _ = _batch_stats(embeddings, labels, labelled_mask)
    _check_batch("propagate_labels", embeddings, num_bad, low, high, num_classes, masked_unlabelled)
    if n_labelled == 0:
        raise ValueError("propagate_labels needs at least one labelled node (labelled_mask is all False)")
    if num_classes is None:
        if high >= MAX_INFERRED_CLASSES:
            raise ValueError(
                f"propagate_labels: the largest label id is {high}, so labels.max() + 1 = {high + 1} classes; "
                f"pass num_classes (it is at most {MAX_INFERRED_CLASSES} when inferred) or map the ids to 0..C-1 "
                "with torch.unique(labels, return_inverse=True)"
            )
        num_classes = high + 1
    num_classes = as_integer(num_classes, "num_classes", owner="propagate_labels")
    return _propagate(embeddings, labels, labelled_mask, sigma, num_classes, normalization, normalize, **options)


def _batch_stats(embeddings: Tensor, labels: Tensor, labelled_mask: Tensor) -> tuple[int, int, int, int, int, int]:
    """``(labelled nodes, non-finite rows, smallest label, largest label, labelled nodes marked
    UNLABELLED, hidden nodes with a known label)`` in one host sync."""
    if labels.numel() == 0:
        return 0, 0, 0, -1, 0, 0
    known = labels >= 0
    stats = torch.stack([labelled_mask.sum(), count_non_finite_rows(embeddings), labels.min(), labels.max(),
                         (labelled_mask & ~known).sum(), (~labelled_mask & known).sum()])
    return tuple(int(v) for v in stats.tolist())


def _check_batch(owner: str, embeddings: Tensor, num_bad: int, low: int, high: int, num_classes,
                 masked_unlabelled: int = 0) -> None:
    if num_bad:
        raise ValueError(non_finite_message(owner, num_bad, embeddings))
    if low < UNLABELLED:
        raise ValueError(f"{owner}: label ids must be >= 0, or {UNLABELLED} for a text without a label; got {low}")
    if masked_unlabelled:
        raise ValueError(f"{owner}: {masked_unlabelled} node(s) with label {UNLABELLED} (no label) are in "
                         "labelled_mask; an unlabelled node can only be hidden: set labelled_mask False there")
    if num_classes is not None and high >= as_integer(num_classes, "num_classes", owner=owner):
        raise ValueError(f"{owner}: label {high} is out of range for num_classes={int(num_classes)}; "
                         "label ids must lie in 0..num_classes-1")


def _solver_options(normalization, propagation, graph, num_neighbors, num_iterations, tol, solve_dtype=None) -> dict:
    """Validate the solver options once; the result is what `_propagate` takes."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if propagation not in PROPAGATIONS:
        raise ValueError(f"propagation must be one of {PROPAGATIONS}, got {propagation!r}")
    if graph not in GRAPHS:
        raise ValueError(f"graph must be one of {GRAPHS}, got {graph!r}")
    if graph == "knn" and normalization != "row":
        raise ValueError("the 'knn' graph supports normalization='row' only; use graph='dense' for 'symmetric'")
    num_neighbors = as_integer(num_neighbors, "num_neighbors")
    num_iterations = as_integer(num_iterations, "num_iterations")
    if tol is not None and not (isinstance(tol, numbers.Real) and not isinstance(tol, bool) and 0 < tol < math.inf):
        raise ValueError(f"tol must be a positive number or None, got {tol!r}")
    tol = None if tol is None else float(tol)
    if solve_dtype not in (None, torch.float32, torch.float64):
        raise ValueError(f"solve_dtype must be torch.float32, torch.float64 or None, got {solve_dtype!r}")
    return {"propagation": propagation, "graph": graph, "num_neighbors": num_neighbors,
            "num_iterations": num_iterations, "tol": tol, "solve_dtype": solve_dtype}


def _propagate(
    embeddings, labels, labelled_mask, sigma, num_classes, normalization, normalize=True, *,
    propagation="closed_form", graph="dense", num_neighbors=DEFAULT_KNN_NEIGHBORS,
    num_iterations=DEFAULT_NUM_ITERATIONS, tol=None, solve_dtype=None, num_hidden: int | None = None,
) -> Tensor:
    """`propagate_labels` without its input checks, for callers that have made them."""
    if graph == "knn":
        neighbors, logits = knn_graph(embeddings, sigma, num_neighbors, normalize=normalize, dtype=solve_dtype)
        transition = knn_transition(neighbors, logits)
    else:
        logits = gaussian_logits(embeddings, sigma, normalize=normalize, dtype=solve_dtype)
        transition = transition_matrix(logits, normalization)
    targets = F.one_hot(labels[labelled_mask], num_classes).to(logits.dtype)
    if propagation == "auto":
        if num_hidden is None:
            num_hidden = int((~labelled_mask).sum())
        propagation = resolve_propagation("auto", num_hidden)
    if propagation == "iterative":
        return iterative_solution(transition, labelled_mask, targets, num_iterations, tol)
    if isinstance(transition, tuple):
        transition = dense_transition(*transition)
    return harmonic_solution(transition, labelled_mask, targets)


def balanced_class_weights(labels: Tensor, num_classes: int) -> Tensor:
    r"""scikit-learn's ``"balanced"`` weights, $w_c = n / (k \cdot n_c)$ for the $k$ classes present.

    Absent classes get weight 0.

    Examples:
        >>> balanced_class_weights(torch.tensor([0, 0, 0, 1]), 3)
        tensor([0.6667, 2.0000, 0.0000])
    """
    counts = torch.bincount(labels, minlength=num_classes).float()
    present = (counts > 0).sum()
    return torch.where(counts > 0, labels.numel() / (present * counts.clamp_min(1)), torch.zeros_like(counts))


def propagation_nll(
    probabilities: Tensor, targets: Tensor, class_weights: Tensor | Sequence[float] | None = None
) -> Tensor:
    r"""Mean negative log-likelihood of the true classes: $-\frac{1}{n}\sum_i w_{y_i} \log F_{i, y_i} / \bar w$.

    Probabilities are clamped at $10^{-12}$, so the loss is at most about 27.6 and never inf or NaN.
    With class weights it is the weighted mean $\sum_i w_{y_i} \ell_i / \sum_i w_{y_i}$, as
    ``torch.nn.functional.nll_loss`` computes it.

    Examples:
        >>> propagation_nll(torch.tensor([[0.5, 0.5], [0.9, 0.1]]), torch.tensor([0, 0]))
        tensor(0.3993)
    """
    picked = probabilities.gather(1, targets[:, None]).squeeze(1)
    nll = -picked.clamp(min=_LOG_FLOOR, max=1.0).log()
    if class_weights is None:
        return nll.mean()
    weights = torch.as_tensor(class_weights, dtype=nll.dtype, device=nll.device)[targets]
    return (weights * nll).sum() / weights.sum().clamp_min(_LOG_FLOOR)


def graph_loss(
    embeddings: Tensor,
    labels: Tensor,
    labelled_mask: Tensor,
    sigma: float | Tensor,
    num_classes: int | None = None,
    normalization: Normalization = "row",
    class_weights: Tensor | Sequence[float] | None = None,
    *,
    propagation: str = "closed_form",
    graph: str = "dense",
    num_neighbors: int = DEFAULT_KNN_NEIGHBORS,
    num_iterations: int = DEFAULT_NUM_ITERATIONS,
    tol: float | None = None,
    solve_dtype: torch.dtype | None = None,
    unlabelled_weight: float = 0.0,
) -> Tensor:
    r"""The G-Loss of one batch: propagate, then score the hidden nodes.

    $$\mathcal{L}_G = -\frac{1}{|u|}\sum_{i \in u} \log \big[(I - P_{uu})^{-1} P_{ul} Y_l\big]_{i, y_i}$$

    Nodes labelled [`UNLABELLED`][st_gloss.functional.UNLABELLED] (-1) are texts without a label
    (semi-supervised G-Loss): they are hidden nodes of the graph, so labels propagate through
    them and they receive gradients, but they have no loss term of their own; only the hidden
    nodes with a known label are scored. They must not be in ``labelled_mask``. With
    ``unlabelled_weight`` $\beta > 0$ they get a term of their own, the mean entropy of their
    propagated distributions (entropy minimisation, Grandvalet & Bengio 2005):
    $\mathcal{L} = \mathcal{L}_G + \beta\,\frac{1}{|U|}\sum_{i \in U} H(F_i)$, which pushes each
    text without a label towards one class.

    With no hidden node of known label (or no labelled node) there is nothing to score: the result
    is a zero that is still connected to ``embeddings``, so ``backward()`` works. The result has the dtype of the
    embeddings promoted to at least float32. The solver options are those of `propagate_labels`.

    Embeddings with a NaN or inf entry and negative label ids are refused with a ``ValueError``.
    Without ``num_classes`` the label ids are mapped to ``0..k-1`` for the $k$ classes present
    (which leaves the loss unchanged: an absent class has no mass), so ids as large as ``2**40``
    cost nothing; ``class_weights`` are then still indexed by the original ids.

    Examples:
        >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], requires_grad=True)
        >>> loss = graph_loss(x, torch.tensor([0, 0, 1, 1]), torch.tensor([True, False, True, False]), 0.3)
        >>> bool(loss < 0.01)
        True
    """
    labels, labelled_mask = _check_labels_and_mask(embeddings, labels, labelled_mask)
    options = _solver_options(normalization, propagation, graph, num_neighbors, num_iterations, tol, solve_dtype)
    unlabelled_weight = as_real(unlabelled_weight, "unlabelled_weight", owner="graph_loss")
    if not 0.0 <= unlabelled_weight < math.inf:
        raise ValueError(f"graph_loss: unlabelled_weight must be a finite number >= 0, got {unlabelled_weight}")
    out_dtype = torch.promote_types(embeddings.dtype, torch.float32)
    # One host sync per step decides the degenerate cases and checks the embeddings and labels.
    n_labelled, num_bad, low, high, masked_unlabelled, hidden_known = _batch_stats(embeddings, labels, labelled_mask)
    _check_batch("graph_loss", embeddings, num_bad, low, high, num_classes, masked_unlabelled)
    if n_labelled == 0 or hidden_known == 0:
        return (embeddings * 0.0).sum().to(out_dtype)  # zeroed first: a float16 sum can overflow, and inf * 0 is NaN
    targets = labels
    if num_classes is None:
        if low < 0:  # number the known classes 0..k-1; unlabelled nodes stay UNLABELLED
            known = labels >= 0
            present, inverse = torch.unique(labels[known], return_inverse=True)
            targets = torch.full_like(labels, UNLABELLED)
            targets[known] = inverse
        else:
            present, targets = torch.unique(labels, return_inverse=True)
        num_classes = present.numel()
        if class_weights is not None:
            class_weights = _class_weights_for(class_weights, present, high)
    else:
        num_classes = as_integer(num_classes, "num_classes", owner="graph_loss")
        if class_weights is not None:
            class_weights = _class_weights_for(class_weights, None, high)
    probabilities = _propagate(embeddings, targets, labelled_mask, sigma, num_classes, normalization,
                               num_hidden=labelled_mask.numel() - n_labelled, **options)
    hidden_targets = targets[~labelled_mask]
    unlabelled_rows = None
    if low < 0:  # score the hidden nodes whose label is known
        scored = hidden_targets >= 0
        if unlabelled_weight > 0:
            unlabelled_rows = probabilities[~scored]
        probabilities, hidden_targets = probabilities[scored], hidden_targets[scored]
    loss = propagation_nll(probabilities, hidden_targets, class_weights)
    if unlabelled_rows is not None and unlabelled_rows.shape[0] > 0:
        loss = loss + unlabelled_weight * propagation_entropy(unlabelled_rows)
    return loss.to(out_dtype)


def propagation_entropy(probabilities: Tensor) -> Tensor:
    r"""Mean entropy of propagated distributions, $-\frac{1}{n}\sum_i \sum_c F_{ic} \log F_{ic}$.

    Probabilities are clamped at $10^{-12}$ inside the log, so a zero entry adds nothing and the
    gradient stays finite.

    Examples:
        >>> round(float(propagation_entropy(torch.tensor([[0.5, 0.5], [1.0, 0.0]]))), 4)
        0.3466
    """
    return -(probabilities * probabilities.clamp(min=_LOG_FLOOR, max=1.0).log()).sum(dim=1).mean()


def _class_weights_for(class_weights, present: Tensor | None, high: int) -> Tensor:
    """The weights of the ``present`` label ids (all of them for ``None``), from one weight per label id."""
    weights = torch.as_tensor(class_weights)
    if weights.ndim != 1 or weights.numel() <= high:
        raise ValueError(f"graph_loss: class_weights has {weights.numel()} weights, too few for label id {high}; "
                         "give one weight per class id")
    return weights if present is None else weights.to(present.device)[present]


def _check_labels_and_mask(embeddings: Tensor, labels: Tensor, labelled_mask: Tensor) -> tuple[Tensor, Tensor]:
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be a (batch, dim) matrix, got shape {tuple(embeddings.shape)}")
    labels = torch.as_tensor(labels, device=embeddings.device)
    labelled_mask = torch.as_tensor(labelled_mask, device=embeddings.device)
    if labels.ndim != 1 or labels.numel() != embeddings.shape[0]:
        raise ValueError(
            f"labels must be 1-D with one entry per embedding ({embeddings.shape[0]}), got shape {tuple(labels.shape)}"
        )
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}")
    if labelled_mask.dtype != torch.bool or labelled_mask.shape != labels.shape:
        raise ValueError(f"labelled_mask must be a bool tensor of shape {tuple(labels.shape)}")
    return labels.long(), labelled_mask

r"""Rules that set the Gaussian kernel width $\sigma$ of the batch graph.

$\sigma$ decides how far labels travel: too small and every node only hears its nearest
neighbour, too large and the graph forgets its geometry. The rules here take embeddings (and,
for ``"dicm"``, labels) and return $\sigma$ as a 0-d tensor on the embeddings' device. They work on
L2-normalised embeddings, as the loss does, where distances lie in $[0, 2]$.

| name | rule | source |
|---|---|---|
| a float | fixed $\sigma$ | |
| ``"sqrt_median"`` | $\sigma = \sqrt{\mathrm{median}_{i<j} \lVert x_i - x_j \rVert / 3}$ | the paper's G-Loss-SQRT |
| ``"dicm"`` | $\sigma = \min_{y_i \ne y_j} \lVert x_i - x_j \rVert / 3$ | the authors' code |
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from st_gloss.functional import as_real, l2_normalize, pairwise_distances

SIGMA_RULES: tuple[str, ...] = ("sqrt_median", "dicm")
MIN_SIGMA = 1e-3
"""Floor of every rule: duplicated texts of different classes would otherwise give sigma = 0."""


def _upper_triangle(matrix: Tensor) -> Tensor:
    i, j = torch.triu_indices(matrix.shape[0], matrix.shape[0], offset=1, device=matrix.device)
    return matrix[i, j]


def _median(values: Tensor) -> Tensor:
    """The median as numpy defines it (mean of the two middle values for an even count), in O(n)."""
    flat = values.flatten()
    n = flat.numel()
    lower = flat.kthvalue((n + 1) // 2).values
    upper = flat.kthvalue(n // 2 + 1).values if n % 2 == 0 else lower
    return (lower + upper) / 2.0


@torch.no_grad()
def sqrt_median_sigma(embeddings: Tensor, labels: Tensor | None = None, *, normalize: bool = True) -> Tensor:
    r"""The paper's G-Loss-SQRT rule: $\sigma = \sqrt{\mathrm{median}_{i<j} \lVert x_i - x_j \rVert / 3}$.

    ``labels`` is accepted (and ignored) so that every rule has the same signature.

    Examples:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
        >>> round(float(sqrt_median_sigma(x)), 4)  # median distance sqrt(2)
        0.6866
    """
    if embeddings.shape[0] < 2:
        raise ValueError("sqrt_median_sigma needs at least two embeddings")
    x = l2_normalize(embeddings).float() if normalize else embeddings.float()
    median = _median(_upper_triangle(pairwise_distances(x)))
    return (median / 3.0).sqrt().clamp_min(MIN_SIGMA)


@torch.no_grad()
def dicm_sigma(embeddings: Tensor, labels: Tensor, *, normalize: bool = True) -> Tensor:
    r"""The authors' code's rule: the smallest distance between two points of different classes, over 3.

    $$\sigma = \frac{1}{3} \min_{i, j:\, y_i \neq y_j} \lVert x_i - x_j \rVert$$

    Examples:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
        >>> round(float(dicm_sigma(x, torch.tensor([0, 1, 1]))), 4)  # closest pair across classes: 0.8944
        0.2981
    """
    labels = torch.as_tensor(labels, device=embeddings.device)
    different = labels[:, None] != labels[None, :]
    if not bool(different.any()):
        raise ValueError("dicm_sigma needs at least two classes among the embeddings")
    x = l2_normalize(embeddings).float() if normalize else embeddings.float()
    distances = pairwise_distances(x).masked_fill(~different, float("inf"))
    return (distances.min() / 3.0).clamp_min(MIN_SIGMA)


_RULES: dict[str, Callable[..., Tensor]] = {"sqrt_median": sqrt_median_sigma, "dicm": dicm_sigma}


def get_sigma_rule(name: str) -> Callable[..., Tensor]:
    """Look a sigma rule up by name (``"sqrt_median"`` or ``"dicm"``).

    Examples:
        >>> get_sigma_rule("sqrt_median") is sqrt_median_sigma
        True
    """
    try:
        return _RULES[name]
    except KeyError:
        raise ValueError(f"unknown sigma rule {name!r}: use a positive number or one of {SIGMA_RULES}") from None


@torch.no_grad()
def compute_sigma(rule: str | float, embeddings: Tensor, labels: Tensor | None = None) -> Tensor:
    """Apply a sigma rule (or return a fixed value) as a 0-d tensor on the embeddings' device.

    Examples:
        >>> float(compute_sigma(0.5, torch.zeros(3, 2)))
        0.5
    """
    if isinstance(rule, str):
        return get_sigma_rule(rule)(embeddings, labels)
    value = as_real(rule, "sigma")
    if not 0.0 < value < math.inf:
        raise ValueError(f"sigma must be a positive finite number or one of {SIGMA_RULES}, got {rule!r}")
    return torch.tensor(value, device=embeddings.device)

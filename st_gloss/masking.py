r"""Which nodes of a batch keep their label: the random, class-stratified mask of G-Loss.

The paper hides the labels of a random part of each batch; $\gamma$ (``labelled_fraction``) is the
fraction that keeps its label. We draw the mask per class: every class with two or more members
in the batch keeps at least one labelled node (a seed its hidden members can be reached from)
and at least one hidden node (something to score). Classes with a single member stay labelled.
Texts without a label (-1) are always hidden and are not counted in any class.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor


def stratified_labelled_mask(
    labels: Tensor, labelled_fraction: float, generator: torch.Generator | None = None
) -> Tensor:
    r"""Draw the labelled-node mask of a batch, stratified by class.

    A class with $n_c \ge 2$ members keeps $\mathrm{clip}(\mathrm{round}(\gamma n_c), 1, n_c - 1)$
    labelled members, chosen uniformly at random; a class with one member keeps it labelled.
    The draw happens on the CPU with ``generator`` (so it is reproducible on any device) and the
    mask is returned on the device of ``labels``.

    Args:
        labels: ``(B,)`` integer class ids; -1 (`st_gloss.functional.UNLABELLED`) marks a text
            without a label, which is never in the mask.
        labelled_fraction: $\gamma \in (0, 1)$, the share of each class that keeps its label.
        generator: a CPU ``torch.Generator`` for reproducible masks.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> mask = stratified_labelled_mask(torch.tensor([0, 0, 0, 0, 1, 1, 2]), 0.5, g)
        >>> mask.sum().item(), mask[-1].item()
        (4, True)
    """
    if not (isinstance(labelled_fraction, numbers.Real) and not isinstance(labelled_fraction, bool)
            and 0.0 < labelled_fraction < 1.0):
        raise ValueError(f"labelled_fraction must lie strictly between 0 and 1, got {labelled_fraction!r}")
    labelled_fraction = float(labelled_fraction)
    cpu_labels = labels.detach().to("cpu", torch.long)
    n = cpu_labels.numel()
    if n == 0:
        return torch.zeros(0, dtype=torch.bool, device=labels.device)
    if bool((cpu_labels < 0).any()):
        # Texts without a label (-1) are never labelled; the mask is drawn among the others.
        known = cpu_labels >= 0
        mask = torch.zeros(n, dtype=torch.bool)
        if bool(known.any()):
            mask[known] = stratified_labelled_mask(cpu_labels[known], labelled_fraction, generator)
        return mask.to(labels.device)
    # Sort by (label, random key): each class becomes a contiguous run in random order. Two stable
    # sorts, not one on label * 2 + key: float64 cannot tell ids near 2**62 apart.
    keys = torch.rand(n, generator=generator, dtype=torch.float64)
    order = torch.argsort(keys)
    order = order[torch.argsort(cpu_labels[order], stable=True)]
    sorted_labels = cpu_labels[order]
    _, counts = torch.unique_consecutive(sorted_labels, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(n) - torch.repeat_interleave(starts, counts)
    keep = torch.round(counts.double() * labelled_fraction).long()
    keep = torch.minimum(torch.clamp(keep, min=1), torch.clamp(counts - 1, min=1))
    mask = torch.empty(n, dtype=torch.bool)
    mask[order] = rank < torch.repeat_interleave(keep, counts)
    return mask.to(labels.device)

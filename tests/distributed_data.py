"""The shared problem of the distributed tests: float64 inputs, labels and a projection weight."""

from __future__ import annotations

import torch

ROWS_PER_RANK = (10, 8)
"""Rows of each process's batch: unequal on purpose (the last batch of an epoch may be short)."""


def problem() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(inputs (18, 5), labels (18,), weight (5, 6))`` in float64, the same in every process."""
    g = torch.Generator().manual_seed(0)
    n = sum(ROWS_PER_RANK)
    labels = torch.arange(n) % 3
    centres = torch.randn(3, 5, generator=g, dtype=torch.float64)
    inputs = centres[labels] + 0.6 * torch.randn(n, 5, generator=g, dtype=torch.float64)
    weight = torch.randn(5, 6, generator=g, dtype=torch.float64).requires_grad_()
    return inputs, labels, weight

r"""One graph over all processes: gathering embeddings and labels under torch.distributed.

With data parallelism (``torchrun``, accelerate, the sentence-transformers trainer) each process
embeds its own batch of $B$ texts. `gather_with_grad` concatenates the embeddings of all
$N$ processes, in rank order, so that every process builds the same graph of $N B$ nodes. Its
backward pass sums the gradient of every process's loss with respect to each process's rows
(an all-reduce), so after DDP averages the parameter gradients over the $N$ processes they equal
the gradient of one process that saw the whole global batch. Batches may differ in size between
processes (the last batch of an epoch): they are padded for the collective and unpadded after.

Without an initialised process group every function here is a no-op.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """Whether a torch.distributed process group is initialised with more than one process.

    Examples:
        >>> is_distributed()
        False
    """
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """The number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def batch_sizes(tensor: Tensor) -> list[int]:
    """The first-dimension size of ``tensor`` on every process (one small all-gather).

    Pass the result to `gather_with_grad` and `gather` when several tensors of one
    batch are gathered, so the sizes are exchanged once.

    Examples:
        >>> batch_sizes(torch.zeros(3, 2))  # one process
        [3]
    """
    if not is_distributed():
        return [int(tensor.shape[0])]
    local = torch.tensor([tensor.shape[0]], dtype=torch.long, device=tensor.device)
    sizes = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, local)
    return [int(s) for s in sizes]


def _gather(tensor: Tensor, sizes: list[int]) -> Tensor:
    """All-gather ``tensor`` (no autograd), padding it to the largest first dimension."""
    largest = max(sizes)
    padded = tensor
    if tensor.shape[0] < largest:
        pad = tensor.new_zeros((largest - tensor.shape[0], *tensor.shape[1:]))
        padded = torch.cat([tensor, pad])
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


class _GatherWithGrad(torch.autograd.Function):
    """All-gather whose backward all-reduces (sums) the gradient and returns this process's rows."""

    @staticmethod
    def forward(ctx, tensor: Tensor, sizes: list[int], rank: int) -> Tensor:
        ctx.start = sum(sizes[:rank])
        ctx.stop = ctx.start + sizes[rank]
        return _gather(tensor.detach(), sizes)

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start:ctx.stop], None, None


def gather_with_grad(tensor: Tensor, sizes: list[int] | None = None) -> Tensor:
    r"""Concatenate ``tensor`` from every process in rank order, keeping the gradient path to the local rows.

    The gradient that reaches this process's ``tensor`` is the sum, over all processes, of the
    gradient of each process's loss with respect to these rows. When every process computes the
    same loss $L$ of the gathered tensor (as [`GraphGuidedLoss`][st_gloss.GraphGuidedLoss] does), that is
    $N\,\partial L / \partial x_{\text{local}}$, and DDP's averaging over $N$ processes turns the
    parameter gradients into exactly $\partial L / \partial \theta$ of the global batch.

    ``sizes`` (`batch_sizes`) saves the exchange of batch sizes when it is known already.
    Returns ``tensor`` itself when not distributed.

    Examples:
        >>> x = torch.ones(2, 3, requires_grad=True)
        >>> gather_with_grad(x) is x  # one process: nothing to gather
        True
    """
    if not is_distributed():
        return tensor
    return _GatherWithGrad.apply(tensor, sizes or batch_sizes(tensor), dist.get_rank())


def gather(tensor: Tensor, sizes: list[int] | None = None) -> Tensor:
    """Concatenate ``tensor`` (labels, masks) from every process in rank order, without gradient.

    ``sizes`` as in `gather_with_grad`.

    Examples:
        >>> gather(torch.tensor([0, 1])).tolist()  # one process
        [0, 1]
    """
    if not is_distributed():
        return tensor
    return _gather(tensor.detach(), sizes or batch_sizes(tensor))


def shared_seed(seed: int, device: torch.device | str = "cpu") -> int:
    """Rank 0's ``seed`` on every process, so that random choices (the label mask) agree.

    Examples:
        >>> shared_seed(7)
        7
    """
    if not is_distributed():
        return int(seed)
    value = torch.tensor([int(seed) % (2**62)], dtype=torch.long, device=device)
    dist.broadcast(value, src=0)
    return int(value.item())

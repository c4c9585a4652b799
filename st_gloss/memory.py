r"""A cross-batch memory: the embeddings and labels of the last few steps, as extra labelled nodes.

The paper builds its graph inside one mini-batch. With a memory of $M$ steps the graph of step $t$
also holds the (detached) embeddings of steps $t-M, \dots, t-1$, all of them labelled, so the
hidden nodes of the batch are scored against $(M + 1)$ times as many labelled examples, and a
class that is rare in one batch is still represented. The price is staleness: the stored
embeddings were computed by older weights and receive no gradient, so a large $M$ with a high
learning rate propagates labels from positions the model has since left. A few steps (2 to 8) at
fine-tuning learning rates keep the drift small; ``evaluation/benchmarks/memory_queue.py`` measures
the trade-off.
"""

from __future__ import annotations

from collections import deque

import torch
from torch import Tensor

from st_gloss.functional import as_integer, check_finite


class EmbeddingMemory:
    """A first-in, first-out queue of the last ``num_steps`` batches' embeddings and labels.

    Stored embeddings are detached copies (no gradient ever reaches an old step), kept on the
    device they came from; labels are kept on the CPU, where the loss reads them without a device
    sync. When the queue is full, pushing a batch evicts the oldest one.

    Args:
        num_steps: $M$, how many past batches to keep (``0`` keeps none).

    Examples:
        >>> memory = EmbeddingMemory(num_steps=2)
        >>> for step in range(3):
        ...     memory.push(torch.full((2, 4), float(step)), torch.tensor([0, 1]))
        >>> len(memory), memory.num_nodes
        (2, 4)
        >>> memory.embeddings()[:, 0].tolist()  # steps 1 and 2, oldest first; step 0 was evicted
        [1.0, 1.0, 2.0, 2.0]
    """

    def __init__(self, num_steps: int) -> None:
        self.num_steps = as_integer(num_steps, "num_steps", minimum=0, owner="EmbeddingMemory")
        self._batches: deque[tuple[Tensor, Tensor]] = deque(maxlen=self.num_steps)

    def __len__(self) -> int:
        """The number of batches held."""
        return len(self._batches)

    @property
    def num_nodes(self) -> int:
        """The number of embeddings held, over all batches."""
        return sum(labels.numel() for _, labels in self._batches)

    def push(self, embeddings: Tensor, labels: Tensor) -> None:
        """Store a batch (detached); evicts the oldest batch when ``num_steps`` are held.

        Embeddings with a NaN or inf entry are refused (``ValueError``): they would poison the
        graph of every later step.
        """
        if self.num_steps == 0:
            return
        if embeddings.ndim != 2 or labels.ndim != 1 or embeddings.shape[0] != labels.shape[0]:
            raise ValueError(
                f"EmbeddingMemory.push takes (n, d) embeddings and (n,) labels, got {tuple(embeddings.shape)} "
                f"and {tuple(labels.shape)}"
            )
        if self._batches and embeddings.shape[1] != self._batches[0][0].shape[1]:
            raise ValueError(
                f"EmbeddingMemory: embedding size changed from {self._batches[0][0].shape[1]} to "
                f"{embeddings.shape[1]}; call clear() when the model changes"
            )
        check_finite(embeddings, "EmbeddingMemory.push")
        self._batches.append((embeddings.detach().clone(), labels.detach().to("cpu", torch.long).clone()))

    def embeddings(self) -> Tensor | None:
        """All stored embeddings, oldest batch first, as one ``(num_nodes, d)`` tensor (``None`` when empty)."""
        if not self._batches:
            return None
        return torch.cat([e for e, _ in self._batches])

    def labels(self) -> Tensor | None:
        """The labels of `embeddings`, in the same order, on the CPU (``None`` when empty)."""
        if not self._batches:
            return None
        return torch.cat([y for _, y in self._batches])

    def clear(self) -> None:
        """Forget every stored batch."""
        self._batches.clear()

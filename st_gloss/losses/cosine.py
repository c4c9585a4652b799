"""InBatchCosineSimilarityLoss: cosine similarity of all in-batch pairs regressed on "same class"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from st_gloss.compat import SentenceTransformer
from st_gloss.functional import l2_normalize
from st_gloss.losses.base import LabelledTextLoss


def in_batch_cosine_loss(embeddings: Tensor, labels: Tensor) -> Tensor:
    r"""Mean squared error between the cosine similarity of every in-batch pair and "same class".

    $$\mathcal{L} = \frac{2}{B(B-1)} \sum_{i<j} \big(\cos(e_i, e_j) - [y_i = y_j]\big)^2$$

    A batch of fewer than two texts has no pair and gives 0 (with a gradient of zeros).

    Args:
        embeddings: ``(B, d)`` sentence embeddings.
        labels: ``(B,)`` integer class ids.

    Returns:
        A scalar tensor.

    Examples:
        >>> e = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
        >>> float(in_batch_cosine_loss(e, torch.tensor([0, 0, 1]))) < 0.01
        True
    """
    n = embeddings.shape[0]
    if n < 2:
        return (embeddings * 0.0).sum()  # zeroed first: a float16 sum can overflow, and inf * 0 is NaN
    # float32 for half inputs: the epsilon of a zero row underflows in float16 and made 0 / 0.
    z = l2_normalize(embeddings.float() if embeddings.dtype in (torch.float16, torch.bfloat16) else embeddings)
    cosine = z @ z.T
    target = (labels[:, None] == labels[None, :]).to(cosine.dtype)
    upper = torch.triu_indices(n, n, offset=1, device=embeddings.device)
    return F.mse_loss(cosine[upper[0], upper[1]], target[upper[0], upper[1]])


class InBatchCosineSimilarityLoss(LabelledTextLoss):
    r"""Cosine loss over all in-batch pairs: similarity 1 within a class, 0 across classes.

    The "cosine" baseline of the G-Loss paper (as in the authors' code): every pair of texts in the
    batch is a training pair whose target similarity is 1 when both have the same class and 0
    otherwise; the loss is the mean squared error over the $B(B-1)/2$ pairs. Unlike
    sentence-transformers' ``CosineSimilarityLoss``, the pairs are formed in the batch from
    single labelled texts.

    $$\mathcal{L} = \frac{2}{B(B-1)} \sum_{i<j} \big(\cos(e_i, e_j) - [y_i = y_j]\big)^2$$

    Args:
        model: the SentenceTransformer to fine-tune.

    References:
        - Sharma, Agarwal & Kumar, "G-Loss: Graph-Guided Fine-Tuning of Language Models",
          LoG 2025 (the cosine baseline), https://arxiv.org/abs/2604.25853

    Requirements:
        1. Each input is a single text labelled with an integer class.

    Inputs:
        | Texts | Labels |
        |---|---|
        | single inputs | class |

    Recommendations:
        - Use ``batch_sampler=st_gloss.ClassBalancedBatchSampler``: with a random batch of a
          many-class dataset almost every pair is a negative.

    Relations:
        - `CosineSimilarityLoss` takes
          explicit (text, text, score) pairs.
        - [`SupervisedContrastiveLoss`][st_gloss.SupervisedContrastiveLoss] uses the same inputs with a softmax over the
        batch.

    Examples:
        ```python
        from st_gloss import ClassBalancedBatchSampler, InBatchCosineSimilarityLoss

        loss = InBatchCosineSimilarityLoss(model)
        args = SentenceTransformerTrainingArguments(
            output_dir="cosine-model", batch_sampler=ClassBalancedBatchSampler,
        )
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=train_dataset, loss=loss,
        )
        trainer.train()
        ```
    """

    def __init__(self, model: SentenceTransformer) -> None:
        super().__init__(model)

    def compute_loss_from_embeddings(self, embeddings: Tensor | Sequence[Tensor], labels: Tensor) -> Tensor:
        """The loss of one batch from its embeddings ``(B, d)`` and labels ``(B,)``."""
        if not isinstance(embeddings, Tensor):
            embeddings = embeddings[0]
        labels, _ = self.check_labels(embeddings, labels)
        self.check_embeddings(embeddings)
        return in_batch_cosine_loss(embeddings, labels)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's parameters, for the model card (it has none)."""
        return {}

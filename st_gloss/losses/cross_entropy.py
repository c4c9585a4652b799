"""LinearHeadCrossEntropyLoss: the cross-entropy baseline of the G-Loss paper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from st_gloss.compat import SentenceTransformer
from st_gloss.losses.base import LabelledTextLoss


class LinearHeadCrossEntropyLoss(LabelledTextLoss):
    r"""Cross-entropy of a linear classification head on the sentence embedding.

    $$\mathcal{L}_{CE} = -\frac{1}{B} \sum_i \log \mathrm{softmax}(W e_i + b)_{y_i}$$

    The standard fine-tuning baseline that the G-Loss paper compares with, on single texts (unlike
    sentence-transformers' ``SoftmaxLoss``, which classifies pairs). The head is trained with the
    model and is not saved with it.

    Args:
        model: the SentenceTransformer to fine-tune.
        num_labels: number of classes.
        embedding_dimension: size of the sentence embedding, when the model cannot report it.

    References:
        - Sharma, Agarwal & Kumar, "G-Loss: Graph-Guided Fine-Tuning of Language Models", LoG 2025
          (the CE baseline), https://arxiv.org/abs/2604.25853

    Inputs:
        | Texts | Labels |
        |---|---|
        | single inputs | class |

    Relations:
        - [`GraphGuidedLoss`][st_gloss.GraphGuidedLoss] with ``num_labels`` adds this term to the graph loss.

    Examples:
        ```python
        loss = LinearHeadCrossEntropyLoss(model, num_labels=8)
        trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
        trainer.train()
        ```
    """

    def __init__(self, model: SentenceTransformer, num_labels: int, embedding_dimension: int | None = None) -> None:
        if num_labels is None:
            raise ValueError(f"{type(self).__name__}: num_labels must be an integer >= 2 (the number of classes)")
        super().__init__(model, num_labels, 0.0, weight_name="head weight", embedding_dimension=embedding_dimension)

    def compute_loss_from_embeddings(self, embeddings: Tensor | Sequence[Tensor], labels: Tensor) -> Tensor:
        """Cross-entropy of the head's logits for ``(B, d)`` embeddings and ``(B,)`` class ids."""
        if not isinstance(embeddings, Tensor):
            embeddings = embeddings[0]
        labels, _ = self.check_labels(embeddings, labels)
        self.check_embeddings(embeddings)
        return self.head_cross_entropy(embeddings, labels)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's parameters, for the model card."""
        return {"num_labels": self.num_labels}

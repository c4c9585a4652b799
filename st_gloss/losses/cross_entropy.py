"""LinearHeadCrossEntropyLoss: the cross-entropy baseline of the G-Loss paper."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from st_gloss import compat
from st_gloss.compat import SentenceTransformer


class LinearHeadCrossEntropyLoss(nn.Module):
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
        +---------------+--------+
        | Texts         | Labels |
        +===============+========+
        | single inputs | class  |
        +---------------+--------+

    Relations:
        - :class:`~st_gloss.GraphGuidedLoss` with ``num_labels`` adds this term to the graph loss.

    Examples:
        ::

            loss = LinearHeadCrossEntropyLoss(model, num_labels=8)
            trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
            trainer.train()
    """

    def __init__(self, model: SentenceTransformer, num_labels: int, embedding_dimension: int | None = None) -> None:
        super().__init__()
        if not isinstance(num_labels, int) or num_labels < 2:
            raise ValueError(
                f"{type(self).__name__}: num_labels must be an integer >= 2 (the number of classes), got {num_labels!r}"
            )
        self.model = model
        self.num_labels = num_labels
        self.classifier = nn.Linear(embedding_dimension or compat.embedding_dimension(model), num_labels)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        features = list(sentence_features)
        if len(features) != 1:
            raise ValueError(
                f"{type(self).__name__} takes single texts with a class label, got {len(features)} text columns"
            )
        return self.compute_loss_from_embeddings(self.model(features[0])["sentence_embedding"], labels)

    def compute_loss_from_embeddings(self, embeddings: Tensor | Sequence[Tensor], labels: Tensor) -> Tensor:
        """Cross-entropy of the head's logits for ``(B, d)`` embeddings and ``(B,)`` class ids."""
        if not isinstance(embeddings, Tensor):
            embeddings = embeddings[0]
        logits = self.classifier(embeddings.to(self.classifier.weight.dtype))
        return F.cross_entropy(logits.float(), labels.long())

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's parameters, for the model card."""
        return {"num_labels": self.num_labels}

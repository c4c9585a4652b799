"""SupervisedContrastiveLoss: SupCon (Khosla et al., 2020), alone or with a linear-head cross-entropy."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from st_gloss.compat import SentenceTransformer
from st_gloss.functional import l2_normalize
from st_gloss.losses.base import LabelledTextLoss

CITATION = """
@inproceedings{khosla2020supervised,
    title={Supervised Contrastive Learning},
    author={Khosla, Prannay and Teterwak, Piotr and Wang, Chen and Sarna, Aaron and Tian, Yonglong
            and Isola, Phillip and Maschinot, Aaron and Liu, Ce and Krishnan, Dilip},
    booktitle={Advances in Neural Information Processing Systems},
    year={2020},
    eprint={2004.11362},
    archivePrefix={arXiv},
    primaryClass={cs.LG}
}
"""


def supervised_contrastive_loss(embeddings: Tensor, labels: Tensor, temperature: float = 0.1) -> Tensor:
    r"""The SupCon loss ($\mathcal{L}^{sup}_{out}$) of one batch, as a pure tensor function.

    $$\mathcal{L} = \frac{1}{|I'|} \sum_{i \in I'} \frac{-1}{|P(i)|} \sum_{p \in P(i)}
    \log \frac{\exp(z_i \cdot z_p / \tau)}{\sum_{a \in A(i)} \exp(z_i \cdot z_a / \tau)}$$

    with $z = e / \lVert e \rVert$, $A(i)$ every other example of the batch, $P(i) \subseteq A(i)$
    those of the same class, and $I'$ the anchors with at least one positive. A batch without any
    positive pair gives 0 (with a gradient of zeros).

    Args:
        embeddings: ``(B, d)`` sentence embeddings (normalised here).
        labels: ``(B,)`` integer class ids.
        temperature: $\tau > 0$.

    Returns:
        A scalar tensor.

    Examples:
        >>> e = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> good = supervised_contrastive_loss(e, torch.tensor([0, 0, 1, 1]))
        >>> bad = supervised_contrastive_loss(e, torch.tensor([0, 1, 0, 1]))
        >>> bool(good < bad)
        True
    """
    z = l2_normalize(embeddings.float() if embeddings.dtype in (torch.float16, torch.bfloat16) else embeddings)
    n = z.shape[0]
    logits = z @ z.T / temperature
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))  # A(i) excludes i
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    counts = positives.sum(dim=1)
    anchors = counts > 0
    if not bool(anchors.any()):
        return (z * 0.0).sum()
    # -inf on the diagonal times 0 would be nan: zero the diagonal before weighting.
    per_anchor = -(log_prob.masked_fill(self_mask, 0.0) * positives).sum(dim=1)[anchors] / counts[anchors]
    return per_anchor.mean()


class SupervisedContrastiveLoss(LabelledTextLoss):
    r"""SupCon: pull together the texts of a class, push apart the rest, over the whole batch.

    Every text of the batch is an anchor; the other texts of its class are its positives and all
    other texts its contrast set. The loss is the softmax cross-entropy of finding each positive
    among the contrast set by temperature-scaled cosine similarity, averaged over the positives
    of an anchor and then over the anchors (the "outside" form, $\mathcal{L}^{sup}_{out}$, that
    Khosla et al. found to work best).

    $$\mathcal{L}_{SC} = \frac{1}{|I'|} \sum_{i \in I'} \frac{-1}{|P(i)|} \sum_{p \in P(i)}
    \log \frac{\exp(z_i \cdot z_p / \tau)}{\sum_{a \ne i} \exp(z_i \cdot z_a / \tau)},
    \qquad \mathcal{L} = \lambda\, \mathcal{L}_{SC} + (1 - \lambda)\, \mathcal{L}_{CE}$$

    Without ``num_labels`` the loss is SupCon alone. With ``num_labels`` it owns a linear
    classification head on the sentence embedding and returns both parts,
    $\lambda \mathcal{L}_{SC}$ and $(1-\lambda)\mathcal{L}_{CE}$, as a dict (the trainer sums and logs
    them), from one forward pass of the encoder: the ``supcon+ce`` baseline of the G-Loss paper.
    The head is trained with the model but is not saved with it.

    Args:
        model: the SentenceTransformer to fine-tune.
        temperature: $\tau$, the softmax temperature (Khosla et al. use 0.1).
        num_labels: number of classes; with it the loss owns a linear head (SupCon + CE).
        contrastive_weight: $\lambda$, the weight of the SupCon part. Defaults to 1 without a head
            and 0.8 with one (the value st-gloss uses for G-Loss + CE too).
        embedding_dimension: size of the sentence embedding, when the model cannot report it.

    References:
        - Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020,
          https://arxiv.org/abs/2004.11362
        - Gunel et al., "Supervised Contrastive Learning for Pre-trained Language Model
          Fine-tuning", ICLR 2021 (SupCon + CE for text), https://arxiv.org/abs/2011.01403

    Requirements:
        1. Each input is a single text labelled with an integer class.
        2. A batch needs two texts of one class somewhere; anchors without a positive are skipped.

    Inputs:
        | Texts | Labels |
        |---|---|
        | single inputs | class |

    Recommendations:
        - Use ``batch_sampler=st_gloss.ClassBalancedBatchSampler`` so that every batch holds several
          examples of several classes.
        - Larger batches give more negatives; 32 to 128 works for sentence encoders.

    Relations:
        - [`GraphGuidedLoss`][st_gloss.GraphGuidedLoss] uses the same inputs but scores label propagation over
          the whole batch graph.
        - `BatchAllTripletLoss` constrains
          triplets with a margin instead of a softmax over the batch.

    Examples:
        ```python
        from datasets import Dataset
        from sentence_transformers import (
            SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments,
        )
        from st_gloss import ClassBalancedBatchSampler, SupervisedContrastiveLoss

        model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
        train_dataset = Dataset.from_dict({
            "text": ["A gripping, funny film.", "Dull and far too long.",
                     "I loved every minute.", "A waste of two hours."],
            "label": [1, 0, 1, 0],
        })
        loss = SupervisedContrastiveLoss(model, temperature=0.1)
        args = SentenceTransformerTrainingArguments(
            output_dir="supcon-model",
            per_device_train_batch_size=64,
            batch_sampler=ClassBalancedBatchSampler,
        )
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=train_dataset, loss=loss,
        )
        trainer.train()
        ```
    """

    def __init__(
        self,
        model: SentenceTransformer,
        temperature: float = 0.1,
        num_labels: int | None = None,
        contrastive_weight: float | None = None,
        embedding_dimension: int | None = None,
    ) -> None:
        super().__init__(
            model,
            num_labels,
            contrastive_weight,
            weight_name="contrastive_weight",
            embedding_dimension=embedding_dimension,
        )
        if not (isinstance(temperature, numbers.Real) and not isinstance(temperature, bool)
                and 0 < temperature < math.inf):
            raise ValueError(
                f"{type(self).__name__}: temperature must be a positive number, got {temperature!r}; try 0.1"
            )
        self.temperature = float(temperature)

    @property
    def contrastive_weight(self) -> float:
        """$\\lambda$, the weight of the SupCon term (1 without a head)."""
        return self.head_weight

    def compute_loss_from_embeddings(
        self, embeddings: Tensor | Sequence[Tensor], labels: Tensor
    ) -> Tensor | dict[str, Tensor]:
        """The loss of one batch from its embeddings ``(B, d)`` and labels ``(B,)``.

        Returns a scalar (SupCon alone) or ``{"supcon": lambda * L_SC, "ce": (1 - lambda) * L_CE}``.
        """
        if not isinstance(embeddings, Tensor):
            embeddings = embeddings[0]
        labels, _ = self.check_labels(embeddings, labels)
        self.check_embeddings(embeddings)
        supcon = supervised_contrastive_loss(embeddings, labels, self.temperature)
        return self.with_head("supcon", supcon, embeddings, labels)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's parameters, JSON-safe, for the model card."""
        return {
            "temperature": self.temperature,
            "num_labels": self.num_labels,
            "contrastive_weight": self.contrastive_weight,
        }

    @property
    def citation(self) -> str:
        """BibTeX of the SupCon paper, shown in the model card."""
        return CITATION

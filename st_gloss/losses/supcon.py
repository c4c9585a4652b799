"""SupervisedContrastiveLoss: SupCon (Khosla et al., 2020), alone or with a linear-head cross-entropy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from st_gloss import compat
from st_gloss.compat import SentenceTransformer

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
    z = F.normalize(embeddings.float() if embeddings.dtype in (torch.float16, torch.bfloat16) else embeddings, dim=-1)
    n = z.shape[0]
    logits = z @ z.T / temperature
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))  # A(i) excludes i
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    counts = positives.sum(dim=1)
    anchors = counts > 0
    if not bool(anchors.any()):
        return z.sum() * 0.0
    # -inf on the diagonal times 0 would be nan: zero the diagonal before weighting.
    per_anchor = -(log_prob.masked_fill(self_mask, 0.0) * positives).sum(dim=1)[anchors] / counts[anchors]
    return per_anchor.mean()


class SupervisedContrastiveLoss(nn.Module):
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
        +---------------+--------+
        | Texts         | Labels |
        +===============+========+
        | single inputs | class  |
        +---------------+--------+

    Recommendations:
        - Use ``batch_sampler=st_gloss.ClassBalancedBatchSampler`` so that every batch holds several
          examples of several classes.
        - Larger batches give more negatives; 32 to 128 works for sentence encoders.

    Relations:
        - :class:`~st_gloss.GraphGuidedLoss` uses the same inputs but scores label propagation over
          the whole batch graph.
        - :class:`~sentence_transformers.sentence_transformer.losses.BatchAllTripletLoss` constrains
          triplets with a margin instead of a softmax over the batch.

    Examples:
        ::

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
    """

    def __init__(
        self,
        model: SentenceTransformer,
        temperature: float = 0.1,
        num_labels: int | None = None,
        contrastive_weight: float | None = None,
        embedding_dimension: int | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ValueError(f"{name}: temperature must be a positive number, got {temperature!r}; try 0.1")
        if num_labels is not None and (not isinstance(num_labels, int) or num_labels < 2):
            raise ValueError(f"{name}: num_labels must be an integer >= 2 (the number of classes), got {num_labels!r}")
        if contrastive_weight is None:
            contrastive_weight = 1.0 if num_labels is None else 0.8
        if not 0.0 <= float(contrastive_weight) <= 1.0:
            raise ValueError(f"{name}: contrastive_weight (lambda) must lie in [0, 1], got {contrastive_weight!r}")
        if num_labels is None and float(contrastive_weight) != 1.0:
            raise ValueError(
                f"{name}: contrastive_weight={contrastive_weight} mixes in a cross-entropy head, which needs "
                "num_labels=<number of classes>; without a head leave contrastive_weight at 1"
            )
        self.model = model
        self.temperature = float(temperature)
        self.num_labels = num_labels
        self.contrastive_weight = float(contrastive_weight)
        self.classifier: nn.Linear | None = None
        if num_labels is not None:
            self.classifier = nn.Linear(embedding_dimension or compat.embedding_dimension(model), num_labels)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor | dict[str, Tensor]:
        features = list(sentence_features)
        if len(features) != 1:
            raise ValueError(
                f"{type(self).__name__} takes single texts with a class label (one text column), "
                f"got {len(features)} text columns"
            )
        return self.compute_loss_from_embeddings(self.model(features[0])["sentence_embedding"], labels)

    def compute_loss_from_embeddings(
        self, embeddings: Tensor | Sequence[Tensor], labels: Tensor
    ) -> Tensor | dict[str, Tensor]:
        """The loss of one batch from its embeddings ``(B, d)`` and labels ``(B,)``.

        Returns a scalar (SupCon alone) or ``{"supcon": lambda * L_SC, "ce": (1 - lambda) * L_CE}``.
        """
        if not isinstance(embeddings, Tensor):
            embeddings = embeddings[0]
        labels = self._check_labels(embeddings, labels)
        supcon = supervised_contrastive_loss(embeddings, labels, self.temperature)
        if self.classifier is None:
            return supcon
        logits = self.classifier(embeddings.to(self.classifier.weight.dtype))
        ce = F.cross_entropy(logits.float(), labels).to(supcon.dtype)
        return {"supcon": self.contrastive_weight * supcon, "ce": (1.0 - self.contrastive_weight) * ce}

    def _check_labels(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        name = type(self).__name__
        if labels is None:
            raise ValueError(f"{name} needs a class label for every text: give the dataset a 'label' column")
        labels = torch.as_tensor(labels, device=embeddings.device)
        if embeddings.ndim != 2:
            raise ValueError(f"{name} expects (batch, dim) embeddings, got shape {tuple(embeddings.shape)}")
        if labels.ndim != 1 or labels.numel() != embeddings.shape[0]:
            raise ValueError(
                f"{name} expects 1-D labels, one per text ({embeddings.shape[0]}), got shape {tuple(labels.shape)}"
            )
        if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.dtype.is_complex:
            raise ValueError(f"{name} expects integer class ids as labels, got dtype {labels.dtype}")
        labels = labels.long()
        if self.num_labels is not None and labels.numel() and int(labels.max()) >= self.num_labels:
            raise ValueError(
                f"{name}: label {int(labels.max())} is out of range for num_labels={self.num_labels}; "
                "set num_labels to the number of classes"
            )
        return labels

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

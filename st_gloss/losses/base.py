"""What every st-gloss loss on (single text, class label) batches shares.

The sentence-transformers glue (one forward pass, then ``compute_loss_from_embeddings``), the
label checks, and the optional linear classification head whose cross-entropy is mixed in as
$\\lambda \\mathcal{L} + (1 - \\lambda) \\mathcal{L}_{CE}$.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from st_gloss import compat
from st_gloss.functional import as_real, check_finite


class LabelledTextLoss(nn.Module):
    """Base class of the losses that take single texts with an integer class label.

    Subclasses implement ``compute_loss_from_embeddings(embeddings, labels)``. With ``num_labels``
    the loss owns ``self.classifier``, a linear head on the sentence embedding; ``head_weight``
    is then the weight $\\lambda$ of the subclass's own term and ``1 - head_weight`` that of the
    head's cross-entropy.

    Args:
        model: the SentenceTransformer to fine-tune (stored as ``self.model``, as the trainer expects).
        num_labels: number of classes, for the head and the label range check; ``None`` for no head.
        head_weight: $\\lambda$; defaults to 1 without a head and 0.8 with one.
        weight_name: the subclass's name for $\\lambda$, used in error messages.
        embedding_dimension: size of the sentence embedding, when the model cannot report it.
    """

    accepts_unlabelled = False
    """Whether label -1 (a text without a label) is allowed; only `GraphGuidedLoss` uses such texts."""

    def __init__(
        self,
        model,
        num_labels: int | None = None,
        head_weight: float | None = None,
        *,
        weight_name: str = "weight",
        embedding_dimension: int | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if num_labels is not None:
            if not (isinstance(num_labels, numbers.Integral) and not isinstance(num_labels, bool) and num_labels >= 2):
                raise ValueError(
                    f"{name}: num_labels must be an integer >= 2 (the number of classes), got {num_labels!r}"
                )
            num_labels = int(num_labels)
        if head_weight is None:
            head_weight = 1.0 if num_labels is None else 0.8
        head_weight = as_real(head_weight, f"{weight_name} (lambda)", owner=name)
        if not 0.0 <= head_weight <= 1.0:
            raise ValueError(f"{name}: {weight_name} (lambda) must lie in [0, 1], got {head_weight!r}")
        if num_labels is None and head_weight != 1.0:
            raise ValueError(
                f"{name}: {weight_name}={head_weight} mixes in a cross-entropy head, which needs "
                f"num_labels=<number of classes>; without a head leave {weight_name} at 1"
            )
        self.model = model
        self.num_labels = num_labels
        self.head_weight = float(head_weight)
        self.classifier: nn.Linear | None = None
        if num_labels is not None:
            self.classifier = nn.Linear(embedding_dimension or compat.embedding_dimension(model), num_labels)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor):
        features = list(sentence_features)
        if len(features) != 1:
            raise ValueError(
                f"{type(self).__name__} takes single texts with a class label (one text column), "
                f"got {len(features)} text columns"
            )
        return self.compute_loss_from_embeddings(self.model(features[0])["sentence_embedding"], labels)

    def compute_loss_from_embeddings(self, embeddings: Tensor | Sequence[Tensor], labels: Tensor):
        raise NotImplementedError

    def check_labels(self, embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Validate the labels of a batch; return them as int64 on the embeddings' device and on the CPU."""
        name = type(self).__name__
        if labels is None:
            raise ValueError(f"{name} needs a class label for every text: give the dataset a 'label' column")
        if embeddings.ndim != 2:
            raise ValueError(f"{name} expects (batch, dim) embeddings, got shape {tuple(embeddings.shape)}")
        labels = torch.as_tensor(labels, device=embeddings.device)
        if labels.ndim != 1 or labels.numel() != embeddings.shape[0]:
            raise ValueError(
                f"{name} expects 1-D labels, one per text ({embeddings.shape[0]}), got shape {tuple(labels.shape)}"
            )
        if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.dtype.is_complex:
            raise ValueError(
                f"{name} expects integer class ids as labels, got dtype {labels.dtype}; map class names to 0..C-1 first"
            )
        labels = labels.long()
        labels_cpu = labels.detach().cpu()  # one host copy per step; every check below reads it
        low = int(labels_cpu.min()) if labels_cpu.numel() else 0
        if low == -1 and not self.accepts_unlabelled:
            raise ValueError(
                f"{name} cannot use texts without a label (label -1): it needs a class for every text. Only "
                "GraphGuidedLoss propagates labels to unlabelled texts (st-gloss train --loss gloss); drop the "
                "-1 rows for this loss"
            )
        if low < -1:
            raise ValueError(
                f"{name}: label ids must be >= 0 (or -1 for a text without a label), got {low}; map the classes "
                "to 0..C-1 first"
            )
        if self.num_labels is not None and labels_cpu.numel() and int(labels_cpu.max()) >= self.num_labels:
            raise ValueError(
                f"{name}: label {int(labels_cpu.max())} is out of range for num_labels={self.num_labels}; "
                "set num_labels to the number of classes"
            )
        return labels, labels_cpu

    def check_embeddings(self, embeddings: Tensor) -> None:
        """Refuse embeddings with a NaN or inf entry (a ``ValueError`` naming the loss, the count and the fix).

        Without it a non-finite row gives a NaN loss or, worse, a normal-looking loss with NaN
        gradients. One host sync.
        """
        check_finite(embeddings, type(self).__name__)

    def head_cross_entropy(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Cross-entropy of the linear head's logits (float32 or wider, whatever the autocast dtype)."""
        if self.classifier is None:
            raise ValueError(f"{type(self).__name__} has no classification head: pass num_labels")
        logits = self.classifier(embeddings.to(self.classifier.weight.dtype)).float()
        if not self.accepts_unlabelled:
            return F.cross_entropy(logits, labels)
        # Texts without a label (-1) have no term: the mean over the others, without a host sync
        # (0, still connected to the graph, when every text is unlabelled).
        total = F.cross_entropy(logits, labels, ignore_index=-1, reduction="sum")
        return total / (labels >= 0).sum().clamp_min(1)

    def with_head(self, name: str, value: Tensor, embeddings: Tensor, labels: Tensor) -> Tensor | dict[str, Tensor]:
        """``value`` alone without a head; else ``{name: lambda * value, "ce": (1 - lambda) * CE}``."""
        if self.classifier is None:
            return value
        ce = self.head_cross_entropy(embeddings, labels).to(value.dtype)
        return {name: self.head_weight * value, "ce": (1.0 - self.head_weight) * ce}

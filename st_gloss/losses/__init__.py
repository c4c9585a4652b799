"""Losses for sentence-transformers, one per module, named after the loss."""

from st_gloss.losses.cross_entropy import LinearHeadCrossEntropyLoss
from st_gloss.losses.graph_guided import GraphGuidedLoss

__all__ = ["GraphGuidedLoss", "LinearHeadCrossEntropyLoss"]

from st_gloss.losses.cosine import InBatchCosineSimilarityLoss  # noqa: E402
from st_gloss.losses.supcon import SupervisedContrastiveLoss  # noqa: E402

__all__ += ["InBatchCosineSimilarityLoss", "SupervisedContrastiveLoss"]

"""st-gloss: G-Loss (graph-guided fine-tuning) for sentence-transformers.

>>> from st_gloss import GraphGuidedLoss, ClassBalancedBatchSampler
"""

from st_gloss import functional
from st_gloss.losses import GraphGuidedLoss, LinearHeadCrossEntropyLoss
from st_gloss.samplers import ClassBalancedBatchSampler

__version__ = "0.1.0"

__all__ = ["GraphGuidedLoss", "LinearHeadCrossEntropyLoss", "ClassBalancedBatchSampler", "functional", "__version__"]

from st_gloss.losses import InBatchCosineSimilarityLoss, SupervisedContrastiveLoss  # noqa: E402

__all__ += ["InBatchCosineSimilarityLoss", "SupervisedContrastiveLoss"]

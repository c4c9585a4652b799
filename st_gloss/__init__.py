"""st-gloss: G-Loss (graph-guided fine-tuning) for sentence-transformers.

The public names load on first use, so that ``import st_gloss`` (and the ``st-gloss`` command's
``--help``) does not import torch or sentence-transformers before they are needed.

>>> from st_gloss import GraphGuidedLoss, ClassBalancedBatchSampler
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    "GraphGuidedLoss": "st_gloss.losses",
    "LinearHeadCrossEntropyLoss": "st_gloss.losses",
    "SupervisedContrastiveLoss": "st_gloss.losses",
    "InBatchCosineSimilarityLoss": "st_gloss.losses",
    "ClassBalancedBatchSampler": "st_gloss.samplers",
    "SemiSupervisedBatchSampler": "st_gloss.samplers",
    "InputError": "st_gloss.errors",
    "TextClassifier": "st_gloss.classifier",
}
_SUBMODULES = ("functional", "evaluation")

__all__ = [*_LAZY, *_SUBMODULES, "__version__"]

if TYPE_CHECKING:  # pragma: no cover - for type checkers, IDEs and the docs (re-exports, hence F401)
    from st_gloss import evaluation, functional  # noqa: F401
    from st_gloss.classifier import TextClassifier  # noqa: F401
    from st_gloss.errors import InputError  # noqa: F401
    from st_gloss.losses import (  # noqa: F401
        GraphGuidedLoss,
        InBatchCosineSimilarityLoss,
        LinearHeadCrossEntropyLoss,
        SupervisedContrastiveLoss,
    )
    from st_gloss.samplers import ClassBalancedBatchSampler, SemiSupervisedBatchSampler  # noqa: F401


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"st_gloss.{name}")
    else:
        raise AttributeError(f"module 'st_gloss' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

"""A classifier users keep: a SentenceTransformer body, a head, and the label names.

`TextClassifier` fits a head on frozen embeddings (or takes the linear head a ``+ce`` loss
trained), predicts label names and probabilities, and saves itself into the model folder without
pickle. Heads (`st_gloss.classifier.heads`): ``logistic`` (the default), ``linear``,
``propagation`` (`st_gloss.classifier.propagation`) and ``knn``.

>>> from st_gloss.classifier import TextClassifier
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_LAZY = {
    "TextClassifier": "st_gloss.classifier.text_classifier",
    "HEAD_KINDS": "st_gloss.classifier.heads",
    "Head": "st_gloss.classifier.heads",
    "LogisticHead": "st_gloss.classifier.heads",
    "LinearHead": "st_gloss.classifier.heads",
    "PropagationHead": "st_gloss.classifier.heads",
    "KNNHead": "st_gloss.classifier.heads",
}

__all__ = ["HEAD_KINDS", "Head", "KNNHead", "LinearHead", "LogisticHead", "PropagationHead",
           "TextClassifier"]

if TYPE_CHECKING:  # pragma: no cover
    from st_gloss.classifier.heads import HEAD_KINDS, Head, KNNHead, LinearHead, LogisticHead, PropagationHead
    from st_gloss.classifier.text_classifier import TextClassifier


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'st_gloss.classifier' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

"""One place for imports that moved between sentence-transformers versions."""

from __future__ import annotations

try:  # sentence-transformers >= 5.4 (v6 layout)
    from sentence_transformers.base.evaluation.evaluator import BaseEvaluator
except ImportError:  # pragma: no cover - older releases
    from sentence_transformers.evaluation import SentenceEvaluator as BaseEvaluator

__all__ = ["BaseEvaluator"]

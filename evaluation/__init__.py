"""Embedding-quality evaluation for any SentenceTransformer model.

Metrics (FAISS kNN classification, silhouette, linear probe, MTEB classification) work on
plain arrays; the same metrics are available as sentence-transformers evaluators and through
the ``st-gloss eval`` command.
"""

from evaluation.errors import InputError
from evaluation.models import DEFAULT_MODEL, default_model_path, load_model

__all__ = ["InputError", "DEFAULT_MODEL", "default_model_path", "load_model"]

"""Embedding-quality evaluation for any SentenceTransformer model.

`evaluate` encodes each split once and computes every requested metric (FAISS kNN
classification, silhouette, linear probe, MTEB classification); ``st-gloss eval``, ``st-gloss
train``, ``st-gloss demo`` and the benchmarks all call it. The metrics also work on plain arrays
and as sentence-transformers evaluators.
"""

from st_gloss.errors import InputError
from st_gloss.evaluation.data import LabelledData, Split, load_labelled_data
from st_gloss.evaluation.encode import encode_texts, encode_to_file
from st_gloss.evaluation.index import IndexOptions
from st_gloss.evaluation.knn import KNNResult, knn_classify
from st_gloss.evaluation.models import DEFAULT_MODEL, default_model_path, load_model
from st_gloss.evaluation.pipeline import METRICS, EvaluationReport, evaluate, load_data
from st_gloss.evaluation.probe import ProbeResult, linear_probe
from st_gloss.evaluation.silhouette import SilhouetteResult, silhouette

_LAZY = {  # these import sentence-transformers or mteb, so only on first use
    "KNNEvaluator": "st_gloss.evaluation.evaluators",
    "SilhouetteEvaluator": "st_gloss.evaluation.evaluators",
    "LinearProbeEvaluator": "st_gloss.evaluation.evaluators",
    "LinearHeadEvaluator": "st_gloss.evaluation.evaluators",
    "make_classification_task": "st_gloss.evaluation.mteb_tasks",
    "run_mteb": "st_gloss.evaluation.mteb_tasks",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'st_gloss.evaluation' has no attribute {name!r}")


__all__ = [
    "evaluate",
    "EvaluationReport",
    "METRICS",
    "load_data",
    "InputError",
    "DEFAULT_MODEL",
    "default_model_path",
    "load_model",
    "LabelledData",
    "Split",
    "load_labelled_data",
    "encode_texts",
    "encode_to_file",
    "IndexOptions",
    "KNNResult",
    "knn_classify",
    "SilhouetteResult",
    "silhouette",
    "ProbeResult",
    "linear_probe",
    "KNNEvaluator",
    "SilhouetteEvaluator",
    "LinearProbeEvaluator",
    "LinearHeadEvaluator",
    "make_classification_task",
    "run_mteb",
]

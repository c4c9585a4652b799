"""The local-data MTEB task runs offline with the tiny model and is never cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from st_gloss.evaluation.data import load_labelled_data
from st_gloss.evaluation.mteb_tasks import make_classification_task, run_mteb

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def test_local_task_runs_offline_and_is_not_cached(tiny_model, offline, tmp_path, monkeypatch):
    monkeypatch.setenv("MTEB_CACHE", str(tmp_path / "mteb-cache"))
    data = load_labelled_data(REPO / "st_gloss" / "data" / "r8_sample")
    task = make_classification_task(data, samples_per_label=4, n_experiments=2)
    assert task.metadata.name == "LocalR8SampleClassification"
    scores = run_mteb(tiny_model, [task], batch_size=64, show_progress_bar=False)
    entry = scores["LocalR8SampleClassification"]
    assert 0.0 <= entry["accuracy"] <= 1.0 and entry["main_score"] == entry["accuracy"]
    assert entry["split"] == "test" and entry["samples_per_label"] == 4
    assert entry.get("ap") is None  # NaN for multi-class tasks becomes None (valid JSON)
    cache = tmp_path / "mteb-cache"  # mteb may create the folder, but must write no result
    assert not [path for path in cache.rglob("*") if path.is_file()]


def test_task_data_are_the_local_splits(offline):
    data = load_labelled_data(REPO / "st_gloss" / "data" / "mr_sample")
    task = make_classification_task(data)
    task.load_data()
    assert set(task.dataset) == {"train", "test"}
    assert task.dataset["test"]["text"] == data["test"].texts
    assert task.dataset["train"]["label"] == data["train"].labels.tolist()

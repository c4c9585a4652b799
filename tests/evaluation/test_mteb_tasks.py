"""The local-data MTEB task runs offline with the tiny model and is never cached."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
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
    assert entry["main_score"] == entry["accuracy"]
    assert entry["split"] == "test" and entry["samples_per_label"] == 4
    assert entry.get("ap") is None  # NaN for multi-class tasks becomes None (valid JSON)
    cache = tmp_path / "mteb-cache"  # mteb may create the folder, but must write no result
    assert not [path for path in cache.rglob("*") if path.is_file()]


def _write_toy(folder: Path, seed: int, shuffle_labels: bool) -> Path:
    """Two classes told apart by their words ("cat ..." vs "oil ..."): 20 train and 30 test texts each."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    for split, n in (("train", 20), ("test", 30)):
        texts = [" ".join([word] * int(rng.integers(3, 7))) for word in ("cat", "oil") for _ in range(n)]
        labels = np.repeat(["animal", "commodity"], n)
        if shuffle_labels:  # labels that the texts say nothing about
            labels = rng.permutation(labels)
        with open(folder / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(zip(texts, labels))
    return folder


def test_separable_classes_score_one_and_random_labels_score_chance(tiny_model, offline, tmp_path, monkeypatch):
    monkeypatch.setenv("MTEB_CACHE", str(tmp_path / "mteb-cache"))
    scores = {}
    for shuffle in (False, True):
        data = load_labelled_data(_write_toy(tmp_path / f"toy-{shuffle}", 0, shuffle))
        task = make_classification_task(data, samples_per_label=8, n_experiments=3)
        scores[shuffle] = run_mteb(tiny_model, [task], batch_size=64, show_progress_bar=False)[task.metadata.name]
    assert scores[False]["accuracy"] == 1.0 and scores[False]["f1"] == 1.0, scores[False]
    assert 0.25 < scores[True]["accuracy"] < 0.75, scores[True]  # 60 test texts, 2 classes, 3 draws


def test_task_data_are_the_local_splits(offline):
    data = load_labelled_data(REPO / "st_gloss" / "data" / "mr_sample")
    task = make_classification_task(data)
    task.load_data()
    assert set(task.dataset) == {"train", "test"}
    assert task.dataset["test"]["text"] == data["test"].texts
    assert task.dataset["train"]["label"] == data["train"].labels.tolist()

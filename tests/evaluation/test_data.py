"""The labelled-data loader: sources, label ids, and every bad input with its message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from st_gloss.errors import InputError
from st_gloss.evaluation.data import load_labelled_data

REPO = Path(__file__).resolve().parents[2]


def _write(folder: Path, name: str, rows, header="text,label"):
    folder.mkdir(parents=True, exist_ok=True)
    lines = [header] + [f"{text},{label}" for text, label in rows]
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _toy(folder: Path, val=True):
    _write(folder, "train.csv", [("good film", "pos"), ("bad film", "neg"), ("great", "pos")])
    _write(folder, "test.csv", [("fine film", "pos"), ("awful", "neg")])
    if val:
        _write(folder, "val.csv", [("nice", "pos"), ("dull", "neg")])
    return folder


def test_folder_with_string_labels(tmp_path):
    data = load_labelled_data(_toy(tmp_path / "toy"))
    assert list(data.splits) == ["train", "val", "test"]
    assert data.label_names == ["neg", "pos"]
    assert data["train"].labels.tolist() == [1, 0, 1]
    assert data["test"].labels.dtype == np.int64
    assert data.index_split() == "train"
    with pytest.raises(InputError, match="no split 'dev'; available splits: train, val, test"):
        data["dev"]


def test_integer_labels_sort_numerically(tmp_path):
    folder = tmp_path / "ints"
    _write(folder, "train.csv", [("a", 10), ("b", 2), ("c", 2)])
    _write(folder, "test.csv", [("d", 10), ("e", 2)])
    data = load_labelled_data(folder)
    assert data.label_names == ["2", "10"]
    assert data["train"].labels.tolist() == [1, 0, 0]


def test_bundled_sample_and_optional_val():
    data = load_labelled_data(REPO / "st_gloss" / "data" / "r8_sample")
    assert "val" not in data and len(data["train"]) == 240 and data.num_classes == 8


def test_single_jsonl_file_with_other_columns(tmp_path):
    path = tmp_path / "reviews.jsonl"
    records = [{"body": "good", "y": 1}, {"body": "bad", "y": 0}, {"body": "ok", "y": 1}]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    data = load_labelled_data(path, text_column="body", label_column="y")
    assert list(data.splits) == ["all"] and data.index_split() == "all"
    assert data["all"].labels.tolist() == [1, 0, 1]


def test_benchmark_name_under_data_root(tmp_path, monkeypatch):
    _toy(tmp_path / "root" / "r8")
    monkeypatch.setenv("ST_GLOSS_DATA", str(tmp_path / "root"))
    assert load_labelled_data("r8").name == "r8"
    monkeypatch.delenv("ST_GLOSS_DATA")
    with pytest.raises(InputError, match="pass --data-root DIR or set ST_GLOSS_DATA"):
        load_labelled_data("r8")
    with pytest.raises(InputError, match="does not exist"):
        load_labelled_data("mr", data_root=tmp_path / "root")


def test_empty_rows_are_skipped_with_a_count_or_refused(tmp_path):
    folder = tmp_path / "gaps"
    _write(folder, "train.csv", [("good", "pos"), ("", "neg"), ("bad", ""), ("bad", "neg")])
    _write(folder, "test.csv", [("fine", "pos"), ("awful", "neg")])
    with pytest.warns(UserWarning, match="skipped 2 row"):
        data = load_labelled_data(folder)
    assert data["train"].skipped == 2 and len(data["train"]) == 2
    with pytest.raises(InputError, match="2 row\\(s\\) with an empty text or label.*--on-empty skip"):
        load_labelled_data(folder, on_empty="error")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda f: None, "does not exist"),
        (lambda f: (f.mkdir(), _write(f, "train.csv", [("a", "x")])), "has no test.csv"),
        (lambda f: (_toy(f), (f / "test.csv").write_text("")), "is empty"),
        (lambda f: (_toy(f), (f / "test.csv").write_text("text,label\n")), "header but no rows"),
        (lambda f: (_toy(f), _write(f, "test.csv", [("a", "x")], header="text,category")),
         "has no column 'label' \\(columns: text, category\\); pass --text-column/--label-column"),
        (lambda f: (_toy(f), _write(f, "train.csv", [("a", "pos"), ("b", "pos")])),
         "split 'train' has only one class"),
        (lambda f: (_toy(f), _write(f, "test.csv", [("a", "pos"), ("b", "meh")])),
         "split 'test' has 1 label\\(s\\) that never occur in 'train': meh"),
    ],
)
def test_bad_folders(tmp_path, setup, message):
    folder = tmp_path / "bad"
    setup(folder)
    with pytest.raises(InputError, match=message):
        load_labelled_data(str(folder) if folder.exists() else str(folder) + "/")


def test_missing_file_and_wrong_suffix(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_labelled_data(tmp_path / "nope.csv")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(InputError, match="is not .csv, .tsv, .jsonl or .parquet; convert it"):
        load_labelled_data(tmp_path / "x.txt")


def test_unknown_name_offline_names_the_options(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(InputError, match="hub did not provide it"):
        load_labelled_data("surely-not-a-dataset-xyz")

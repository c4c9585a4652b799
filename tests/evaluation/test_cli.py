"""`st-gloss eval` end to end with click's CliRunner and the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from st_gloss.cli import main

REPO = Path(__file__).resolve().parents[2]
R8_SAMPLE = str(REPO / "st_gloss" / "data" / "r8_sample")


def _invoke(*args):
    return CliRunner().invoke(main, ["eval", *map(str, args)])


def _toy(folder: Path, train_rows=None, test_rows=None):
    folder.mkdir(parents=True, exist_ok=True)
    train_rows = train_rows or [("good film love", "pos"), ("bad dull film", "neg"),
                                ("great fun story", "pos"), ("boring worst movie", "neg"),
                                ("best movie", "pos"), ("hate it", "neg")]
    test_rows = test_rows or [("love the story", "pos"), ("dull and bad", "neg")]
    for name, rows in (("train.csv", train_rows), ("test.csv", test_rows)):
        (folder / name).write_text("text,label\n" + "".join(f"{text},{label}\n" for text, label in rows))
    return folder


def test_success_prints_the_table_and_writes_json(tiny_model_path, tmp_path):
    output, plot = tmp_path / "r8.json", tmp_path / "space.png"
    result = _invoke(tiny_model_path, "--data", R8_SAMPLE, "--k", 5, "--no-progress",
                     "--output", output, "--plot", plot, "--plot-method", "pca")
    assert result.exit_code == 0, result.output
    assert "kNN accuracy" in result.output and "silhouette macro" in result.output
    report = json.loads(output.read_text())
    assert report["data"]["name"] == "r8_sample" and report["data"]["split"] == "test"
    assert report["data"]["classes"] == 8 and report["options"]["k"] == 5
    assert report["environment"]["versions"]["faiss-cpu"]
    (entry,) = report["models"]
    assert entry["embedding_dim"] == 32
    assert 0.0 <= entry["results"]["knn"]["accuracy"] <= 1.0
    assert len(entry["results"]["knn"]["per_class"]) == 8
    assert {"macro", "micro"} <= set(entry["results"]["silhouette"])
    assert {"encode", "knn", "silhouette", "probe"} <= set(entry["seconds"])
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_two_models_side_by_side_and_single_file_leave_one_out(tiny_model_path, tmp_path):
    folder = _toy(tmp_path / "toy")
    single = folder / "train.csv"
    result = _invoke(tiny_model_path, tiny_model_path, "--data", single, "--no-progress")
    # A model named twice is refused; a second distinct path of the same model is fine.
    assert result.exit_code == 2 and "named twice" in result.output
    copy = tmp_path / "copy"
    copy.symlink_to(tiny_model_path, target_is_directory=True)
    result = _invoke(tiny_model_path, copy, "--data", single, "--k", 2, "--no-progress",
                     "--metrics", "knn,probe", "--output", tmp_path / "out.json")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if line.startswith("metric"))
    assert str(tiny_model_path) in header and str(copy) in header
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["data"]["split"] == "all"
    assert report["models"][0]["results"]["knn"]["leave_one_out"] is True
    assert "cross-validation" in report["models"][0]["results"]["probe"]["protocol"]
    # Same weights, same numbers.
    assert report["models"][0]["results"] == report["models"][1]["results"]


def test_mteb_metric_on_local_data(tiny_model_path, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = _invoke(tiny_model_path, "--data", R8_SAMPLE, "--metrics", "mteb", "--no-progress",
                     "--mteb-samples-per-label", 2, "--output", tmp_path / "m.json")
    assert result.exit_code == 0, result.output
    assert "MTEB LocalR8SampleClassification acc" in result.output
    entry = json.loads((tmp_path / "m.json").read_text())["models"][0]["results"]["mteb"]
    assert entry["LocalR8SampleClassification"]["samples_per_label"] == 2


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (lambda d: d / "missing", [], "does not exist"),
        (lambda d: (_toy(d / "t"), (d / "t" / "test.csv").write_text(""))[0], [], "is empty"),
        (lambda d: (_toy(d / "t"), (d / "t" / "test.csv").write_text("body,label\na,pos\n"))[0], [],
         "has no column 'text'"),
        (lambda d: _toy(d / "t", test_rows=[("x", "pos"), ("y", "meh")]), [],
         "never occur in 'train': meh"),
        (lambda d: _toy(d / "t", test_rows=[("x", "pos"), ("y", "pos")]), [],
         "only one class"),
        (lambda d: _toy(d / "t", test_rows=[("x", "pos"), ("", "neg"), ("y", "neg")]),
         ["--on-empty", "error"], "1 row(s) with an empty text or label"),
        (lambda d: _toy(d / "t"), ["--metrics", "knn,recall"], "unknown metric(s) recall"),
        (lambda d: _toy(d / "t"), ["--split", "val"], "no split 'val'; available splits: train, test"),
        (lambda d: _toy(d / "t"), ["--k", "50"], "choose 1 <= k <= 6"),
    ],
)
def test_bad_input_exits_2_with_one_line(tiny_model_path, tmp_path, make, extra, message):
    data = make(tmp_path)
    result = _invoke(tiny_model_path, "--data", data, "--no-progress", *extra)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output


def test_skipped_rows_are_reported(tiny_model_path, tmp_path):
    folder = _toy(tmp_path / "t", test_rows=[("x good", "pos"), ("", "neg"), ("y bad", "neg")])
    result = _invoke(tiny_model_path, "--data", folder, "--no-progress", "--k", 3,
                     "--metrics", "knn", "--output", tmp_path / "o.json")
    assert result.exit_code == 0, result.output
    assert "skipped 1 row(s)" in result.output
    assert json.loads((tmp_path / "o.json").read_text())["data"]["skipped_rows"]["test"] == 1


def test_existing_output_needs_overwrite(tiny_model_path, tmp_path):
    output = tmp_path / "out.json"
    output.write_text("keep me")
    args = [tiny_model_path, "--data", _toy(tmp_path / "t"), "--no-progress", "--k", 3,
            "--metrics", "knn", "--output", output]
    result = _invoke(*args)
    assert result.exit_code == 2 and "pass --overwrite" in result.output
    assert output.read_text() == "keep me"
    result = _invoke(*args, "--overwrite")
    assert result.exit_code == 0 and json.loads(output.read_text())["models"]


def test_unknown_model_path_exits_2(tmp_path):
    result = _invoke(tmp_path / "no-model", "--data", _toy(tmp_path / "t"), "--no-progress")
    assert result.exit_code == 2 and "does not exist" in result.output


@pytest.mark.slow
def test_bundled_minilm_separates_the_mr_sample(tmp_path):
    output = tmp_path / "mr.json"
    result = _invoke("--data", REPO / "st_gloss" / "data" / "mr_sample", "--max-seq-length", 64,
                     "--no-progress", "--output", output)
    assert result.exit_code == 0, result.output
    entry = json.loads(output.read_text())["models"][0]
    assert entry["embedding_dim"] == 384 and entry["max_seq_length"] == 64
    assert entry["results"]["knn"]["accuracy"] > 0.6  # zero-shot MiniLM on MR: about 0.7
    assert entry["results"]["probe"]["accuracy"] > 0.6

"""`st-gloss predict` end to end with click's CliRunner, the tiny model and a saved TextClassifier."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from tiny_model import simple_corpus

from st_gloss.cli.predict import _scores, predict_command

CLASSES = ["film", "finance", "sport"]


@pytest.fixture(scope="module")
def saved(tiny_model_path, tmp_path_factory):
    """A classifier folder with a logistic (default) and a propagation head, and its training texts."""
    from sentence_transformers import SentenceTransformer

    from st_gloss.classifier import TextClassifier

    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    texts, ids = simple_corpus(n_per_class=6)
    names = [CLASSES[i] for i in ids]
    classifier = TextClassifier(model, head="logistic")
    classifier.add_head("propagation", default=False)
    classifier.fit(texts, names).fit(texts, names, head="propagation")
    folder = tmp_path_factory.mktemp("clf")
    classifier.save_pretrained(folder)
    return folder, classifier, texts, names


def _invoke(*args):
    return CliRunner().invoke(predict_command, [str(a) for a in args])


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_csv_with_labels_writes_rows_and_prints_scores(saved, tmp_path):
    folder, classifier, texts, names = saved
    data = _write_csv(tmp_path / "in.csv", ["id", "text", "label"],
                      [[i, t, n] for i, (t, n) in enumerate(zip(texts, names))])
    output, plot = tmp_path / "out.csv", tmp_path / "cm.png"
    result = _invoke(folder, "--data", data, "--output", output, "--probabilities", "--no-progress",
                     "--plot", plot)
    assert result.exit_code == 0, result.output
    with output.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "text", "label", "prediction", "probability", *CLASSES]
    assert [r["id"] for r in rows] == [str(i) for i in range(len(texts))]
    proba = classifier.predict_proba(texts)
    expected = classifier.predict(texts)
    assert [r["prediction"] for r in rows] == expected
    np.testing.assert_allclose([[float(r[c]) for c in CLASSES] for r in rows], proba, rtol=1e-6)
    np.testing.assert_allclose([float(r["probability"]) for r in rows], proba.max(axis=1), rtol=1e-6)
    # The scores printed are sklearn's.
    from sklearn.metrics import accuracy_score, confusion_matrix

    assert f"accuracy  {accuracy_score(names, expected):.4f}" in result.output
    lines = result.output.splitlines()
    start = lines.index("confusion matrix (rows: true label, columns: prediction)") + 2
    printed = np.array([[int(v) for v in line.split()[1:]] for line in lines[start:start + 3]])
    np.testing.assert_array_equal(printed, confusion_matrix(names, expected, labels=CLASSES))
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_scores_equal_scikit_learn_with_an_unknown_true_label():
    from sklearn.metrics import confusion_matrix, f1_score

    true = ["a", "b", "c", "a", "zz"]
    predicted = ["a", "c", "c", "b", "a"]
    accuracy, macro_f1, names, *_, matrix = _scores(true, predicted, ["a", "b", "c"])
    assert names == ["a", "b", "c", "zz"] and accuracy == pytest.approx(0.4)
    np.testing.assert_array_equal(matrix, confusion_matrix(true, predicted, labels=names))
    assert macro_f1 == pytest.approx(f1_score(true, predicted, average="macro", zero_division=0))


def test_jsonl_without_labels_and_another_head(saved, tmp_path):
    folder, classifier, texts, _ = saved
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"body": t, "n": i}) + "\n" for i, t in enumerate(texts[:5])))
    output = tmp_path / "out.jsonl"
    result = _invoke(folder, "--data", data, "--output", output, "--text-column", "body", "--head",
                     "propagation", "--no-progress", "--batch-size", 2)
    assert result.exit_code == 0, result.output
    assert "accuracy" not in result.output
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["n"] for r in rows] == list(range(5))
    assert [r["prediction"] for r in rows] == classifier.predict(texts[:5], head="propagation")
    proba = classifier.predict_proba(texts[:5], head="propagation")
    np.testing.assert_allclose([r["probability"] for r in rows], proba.max(axis=1))


def test_bad_inputs_exit_2_with_one_line(saved, tmp_path, tiny_model_path):
    folder = saved[0]
    good = _write_csv(tmp_path / "good.csv", ["text"], [["good film"]])
    cases = {
        "no text column": ((folder, "--data", _write_csv(tmp_path / "a.csv", ["body"], [["x"]]),
                            "--output", tmp_path / "o1.csv"), "has no column 'text' (columns: body)"),
        "empty file": ((folder, "--data", tmp_path / "empty.csv", "--output", tmp_path / "o2.csv"),
                       "is empty"),
        "no head": ((tiny_model_path, "--data", good, "--output", tmp_path / "o3.csv"),
                    "holds no st-gloss classifier head"),
        "unknown head": ((folder, "--data", good, "--output", tmp_path / "o4.csv", "--head", "svm"),
                         "has no head 'svm'; it has: logistic, propagation"),
        "missing folder": ((folder, "--data", good, "--output", tmp_path / "nope" / "o.csv"),
                           "does not exist; create it first"),
        "bad suffix": ((folder, "--data", good, "--output", tmp_path / "o.txt"), "must end in .csv or .jsonl"),
        "labels asked": ((folder, "--data", good, "--output", tmp_path / "o5.csv", "--label-column", "y"),
                         "has no column 'y'"),
    }
    (tmp_path / "empty.csv").write_text("")
    for name, (args, message) in cases.items():
        result = _invoke(*args)
        assert result.exit_code == 2, (name, result.output)
        assert message in result.output, (name, result.output)
        assert "Traceback" not in result.output and result.output.count("\n") == 1, (name, result.output)
    assert not list(tmp_path.glob("o*.csv"))


def test_existing_output_is_kept_without_overwrite(saved, tmp_path):
    folder = saved[0]
    data = _write_csv(tmp_path / "in.csv", ["text"], [["good film"], ["oil price"]])
    output = tmp_path / "out.csv"
    output.write_text("precious\n")
    result = _invoke(folder, "--data", data, "--output", output, "--no-progress")
    assert result.exit_code == 2 and "exists; pass --overwrite" in result.output
    assert output.read_text() == "precious\n"
    result = _invoke(folder, "--data", data, "--output", output, "--no-progress", "--overwrite")
    assert result.exit_code == 0, result.output
    assert output.read_text().splitlines()[0] == "text,prediction,probability"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left

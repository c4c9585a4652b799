"""The `st-gloss demo` command, end to end on the tiny model."""

from __future__ import annotations

from click.testing import CliRunner

from st_gloss.cli import main


def test_demo_prints_before_and_after_and_saves_safetensors(tiny_model_path, tmp_path):
    out = tmp_path / "model"
    result = CliRunner().invoke(
        main,
        [
            "demo",
            "--model",
            str(tiny_model_path),
            "--data",
            "r8",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--max-seq-length",
            "32",
            "--save",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "kNN accuracy (k=10)" in result.output and "before" in result.output and "after" in result.output
    assert "240 train, 115 test, 8 classes" in result.output
    assert list(out.glob("*.safetensors"))
    # It ends by classifying the sample's new texts with the saved classifier's head.
    import re

    from st_gloss import TextClassifier
    from st_gloss.evaluation.samples import NEW_TEXTS

    printed = re.findall(r"^(\S+) +(\d\.\d\d)  (.+)$", result.output.split("classifying new texts")[1], flags=re.M)
    assert len(printed) == len(NEW_TEXTS["r8"])
    classifier = TextClassifier.from_pretrained(out)
    assert classifier.default_head == "logistic"
    proba = classifier.predict_proba(NEW_TEXTS["r8"])
    for (label, probability, _), row in zip(printed, proba):
        assert label == classifier.labels[int(row.argmax())]
        assert float(probability) == round(float(row.max()), 2)


def test_demo_refuses_a_non_empty_save_folder_and_a_missing_model(tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    runner = CliRunner()
    result = runner.invoke(main, ["demo", "--save", str(taken)])
    assert result.exit_code == 2 and "not empty" in result.output
    assert (taken / "notes.txt").read_text() == "mine"
    result = runner.invoke(main, ["demo", "--model", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output
    assert "Traceback" not in result.output

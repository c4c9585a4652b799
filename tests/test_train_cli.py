"""``st-gloss train`` end to end on the tiny model: every loss name, the output folder, bad options."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from st_gloss.cli import main
from st_gloss.registry import LOSSES


def _train(model_path, data, output, *extra):
    args = [
        "train",
        str(model_path),
        "--data",
        str(data),
        "--output",
        str(output),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--max-seq-length",
        "16",
        "--no-progress",
        *extra,
    ]
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize("loss", list(LOSSES))
def test_every_loss_trains_end_to_end_and_writes_model_and_metrics(loss, tiny_model_path, tiny_data, tmp_path):
    output = tmp_path / "out"
    result = _train(tiny_model_path, tiny_data, output, "--loss", loss)
    assert result.exit_code == 0, result.output
    assert "carved 10% of each class of train" in result.output
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["status"] == "finished"
    assert metrics["loss"]["name"] == loss
    assert metrics["best_epoch"] == 1 and metrics["epochs_run"] == 1
    (epoch,) = metrics["curve"]
    assert epoch["train_seconds"] > 0 and epoch["train_loss"] is not None
    assert {"knn_accuracy", "knn_macro_f1", "silhouette_macro"} <= set(epoch["val"])
    has_linear = loss == "ce" or loss.endswith("+ce")
    heads = (["linear"] if has_linear else []) + ["logistic", "propagation"]
    assert set(metrics["test"]) == {
        "knn_accuracy",
        "knn_macro_f1",
        "probe_accuracy",
        "probe_macro_f1",
        "silhouette_macro",
        "silhouette_micro",
        *(f"head_{head}_{score}" for head in heads for score in ("accuracy", "macro_f1")),
    }
    assert metrics["classifier"] == {"heads": heads, "default_head": heads[0], "labels": ["0", "1", "2"]}
    assert metrics["data"]["sizes"] == {"train": 54, "val": 6, "test": 12}
    assert metrics["data"]["label_names"] == ["0", "1", "2"]
    assert {row["name"] for row in metrics["test_per_class"]["classes"]} == {"0", "1", "2"}
    assert ("head_learning_rate" in metrics) == has_linear
    if loss.endswith("+ce"):
        assert set(epoch["loss_parts"]) == {"graph" if loss.startswith("gloss") else "supcon", "ce"}
    assert (output / "model.safetensors").exists() and (output / "README.md").exists()
    assert (output / "st_gloss_head.json").exists()


def test_a_non_empty_output_folder_is_refused_without_overwrite(tiny_model_path, tiny_data, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "notes.txt").write_text("keep me")
    result = _train(tiny_model_path, tiny_data, output, "--loss", "ce")
    assert result.exit_code == 2
    assert "exists and is not empty; pass --overwrite" in result.output
    result = _train(tiny_model_path, tiny_data, output, "--loss", "ce", "--overwrite")
    assert result.exit_code == 2 and "holds no earlier st-gloss job" in result.output
    assert (output / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--loss", "gloss", "--temperature", "0.1"], "--loss gloss does not use --temperature"),
        (["--loss", "nope"], "Invalid value for '--loss'"),
        (["--loss", "gloss", "--sigma", "median"], "neither a positive number nor one of"),
        (["--loss", "ce", "--batch-size", "2"], "Invalid value for '--batch-size'"),
    ],
)
def test_bad_options_exit_2_with_a_reason_and_no_traceback(extra, message, tiny_model_path, tiny_data, tmp_path):
    result = _train(tiny_model_path, tiny_data, tmp_path / "out", *extra)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_ctrl_c_leaves_a_usable_model_and_an_interrupted_metrics_file(
    tiny_model_path, tiny_data, tmp_path, monkeypatch
):
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(SentenceTransformerTrainer, "train", interrupted)
    output = tmp_path / "out"
    result = _train(tiny_model_path, tiny_data, output, "--loss", "cosine")
    assert result.exit_code == 130
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and "no epoch finished" in metrics["note"]
    SentenceTransformer(str(output), device="cpu").encode(["a usable model"])

"""What ``st-gloss train`` keeps: a classifier with the best epoch's heads, its own head learning rate."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from st_gloss.cli import main


def _train(model_path, data, output, *extra):
    args = ["train", str(model_path), "--data", str(data), "--output", str(output), "--epochs", "2",
            "--batch-size", "8", "--max-seq-length", "16", "--no-progress", *extra]
    return CliRunner().invoke(main, args)


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row["label"] for row in rows]


@pytest.fixture(scope="module")
def trained(tiny_model_path, tiny_data, tmp_path_factory):
    output = tmp_path_factory.mktemp("trained") / "out"
    result = _train(tiny_model_path, tiny_data, output, "--loss", "gloss+ce", "--lr", "1e-3")
    assert result.exit_code == 0, result.output
    return output, json.loads((output / "metrics.json").read_text())


def test_the_output_folder_is_a_classifier_whose_heads_score_as_metrics_json_says(trained, tiny_data):
    from st_gloss import TextClassifier

    output, metrics = trained
    texts, labels = _rows(tiny_data / "test.csv")
    classifier = TextClassifier.from_pretrained(output)
    assert classifier.labels == ["0", "1", "2"]
    assert classifier.default_head == "linear"  # the loss's own head, for a +ce loss
    for head in ("linear", "logistic", "propagation"):
        predicted = classifier.predict(texts, head=head)
        accuracy = float(np.mean(np.array(predicted) == np.array(labels)))
        assert accuracy == pytest.approx(metrics["test"][f"head_{head}_accuracy"], abs=1e-12)
        proba = classifier.predict_proba(texts, head=head)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    # the logistic head is the linear probe's protocol: the same scikit-learn fit on the same embeddings
    assert metrics["test"]["head_logistic_accuracy"] == pytest.approx(metrics["test"]["probe_accuracy"])


def test_the_saved_linear_head_is_the_one_of_the_best_epoch(tiny_model_path, tiny_data, tmp_path, monkeypatch):
    """The callback copies the head when it saves a new best epoch, not at the end of training."""
    from st_gloss import checkpointing, training

    snapshots = []
    real = training.snapshot_linear

    def recording(loss):
        snapshots.append(real(loss))
        return snapshots[-1]

    monkeypatch.setattr(training, "snapshot_linear", recording)
    # validation gets worse after epoch 1 -> epoch 1 stays the best, its head is the one saved
    scores = iter([0.9, 0.1])
    original = checkpointing.BestEpochCallback.on_evaluate

    def rigged(self, args, state, control, metrics=None, **kwargs):
        metrics = dict(metrics or {}, eval_knn_accuracy=next(scores))
        return original(self, args, state, control, metrics=metrics, **kwargs)

    monkeypatch.setattr(checkpointing.BestEpochCallback, "on_evaluate", rigged)
    output = tmp_path / "out"
    result = _train(tiny_model_path, tiny_data, output, "--loss", "ce", "--lr", "1e-3")
    assert result.exit_code == 0, result.output
    assert len(snapshots) == 1  # only epoch 1 improved
    from safetensors.numpy import load_file

    saved = load_file(str(output / "st_gloss_head.safetensors"))
    np.testing.assert_array_equal(saved["linear.weight"], snapshots[0]["weight"])
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["best_epoch"] == 1 and metrics["epochs_run"] == 2


def test_the_head_gets_its_own_learning_rate_in_the_optimizer(tiny_model):
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer

    from st_gloss.losses import GraphGuidedLoss
    from st_gloss.training import HEAD_PARAMETERS, training_arguments

    loss = GraphGuidedLoss(tiny_model, num_labels=3, sigma=0.5)
    args = training_arguments("unused", epochs=1, batch_size=8, learning_rate=5e-5, warmup_ratio=0.0, seed=0,
                              show_progress_bar=False, learning_rate_mapping={HEAD_PARAMETERS: 1e-3})
    data = Dataset.from_dict({"text": ["a b", "c d", "e f", "g h"], "label": [0, 1, 0, 1]})
    trainer = SentenceTransformerTrainer(model=tiny_model, args=args, train_dataset=data, loss=loss)
    optimizer = trainer.create_optimizer()
    head = {id(p) for p in loss.classifier.parameters()}
    rates = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            rates[id(p)] = group["lr"]
    assert {rates[i] for i in head} == {1e-3}
    body = [rates[id(p)] for p in tiny_model.parameters() if p.requires_grad]
    assert set(body) == {5e-5}


def test_head_lr_is_refused_for_a_loss_without_a_head(tiny_model_path, tiny_data, tmp_path):
    result = _train(tiny_model_path, tiny_data, tmp_path / "out", "--loss", "gloss", "--head-lr", "1e-3")
    assert result.exit_code == 2
    assert "--loss gloss has none" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_the_help_names_the_default_head_learning_rate():
    import re

    from st_gloss.training_heads import HEAD_LEARNING_RATE

    result = CliRunner().invoke(main, ["train", "--help"])
    text = " ".join(result.output.split())
    (default,) = re.findall(r"--head-lr FLOAT .*?\[default: ([^\]]+)\]", text)
    assert float(default) == HEAD_LEARNING_RATE


def test_the_training_output_loads_as_a_setfit_model(trained, tiny_data):
    setfit = pytest.importorskip("setfit")
    output, _ = trained
    model = setfit.SetFitModel.from_pretrained(str(output))
    assert model.labels == ["0", "1", "2"]
    texts, labels = _rows(tiny_data / "train.csv")
    model.model_head.fit(model.model_body.encode(texts), labels)
    assert len(model.predict(texts[:3])) == 3


def test_a_tiny_validation_split_is_flagged(tmp_path):
    from st_gloss.training import SMALL_VALIDATION, TrainConfig, prepare_data

    lines = []
    data = prepare_data(TrainConfig("sample:mr", "gloss", str(tmp_path / "out"), val_fraction=0.1), echo=lines.append)
    assert len(data["val"]) == 30 < SMALL_VALIDATION
    assert any(line.startswith("warning: the validation split has 30 texts, so its score moves in steps of 3%")
               for line in lines)
    lines.clear()
    prepare_data(TrainConfig("sample:mr", "gloss", str(tmp_path / "out"), val_fraction=0.2), echo=lines.append)
    assert not any(line.startswith("warning") for line in lines)  # 60 validation texts

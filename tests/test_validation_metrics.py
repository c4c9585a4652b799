"""The per-epoch validation: the linear head's macro-F1 (the paper's integrated rule) and a capped kNN index."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from sklearn.metrics import accuracy_score, f1_score
from tiny_model import simple_corpus

from st_gloss.cli import main
from st_gloss.errors import InputError
from st_gloss.evaluation.evaluators import LinearHeadEvaluator
from st_gloss.training import TrainConfig, prepare_data, validation_evaluators


def test_the_head_evaluator_scores_the_head_on_the_models_outputs(tiny_model):
    texts, labels = simple_corpus(n_per_class=6, seed=3)
    raw = tiny_model.encode(texts, convert_to_numpy=True, normalize_embeddings=False)
    # A centroid head, with noise, so that it predicts several classes and makes mistakes.
    centred = raw - raw.mean(axis=0)
    weight = np.stack([centred[np.asarray(labels) == c].mean(axis=0) for c in range(3)])
    weight += np.random.default_rng(0).normal(scale=np.abs(weight).mean(), size=weight.shape)
    head = torch.nn.Linear(raw.shape[1], 3)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight))
        head.bias.copy_(torch.from_numpy(-(weight @ raw.mean(axis=0))))
    scores = LinearHeadEvaluator(head, texts, labels, name="head")(tiny_model)
    # Independent: numpy logits on the unnormalised outputs.
    logits = raw.astype(np.float64) @ head.weight.detach().double().numpy().T + head.bias.detach().double().numpy()
    predicted = logits.argmax(axis=1)
    assert len(set(predicted)) > 1  # a head that predicts one class would make the check weak
    assert scores["head_accuracy"] == pytest.approx(accuracy_score(labels, predicted))
    assert scores["head_macro_f1"] == pytest.approx(f1_score(labels, predicted, average="macro"))
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))  # the evaluator reads the head at each call
    assert LinearHeadEvaluator(head, texts, labels)(tiny_model)["head_accuracy"] == pytest.approx(1 / 3)


def test_the_head_evaluator_refuses_labels_outside_the_head():
    with pytest.raises(InputError, match=r"class ids in 0\.\.1"):
        LinearHeadEvaluator(torch.nn.Linear(4, 2), ["a", "b"], [0, 2])


def _train(model, data, output, *extra):
    return CliRunner().invoke(main, ["train", str(model), "--data", str(data), "--output", str(output),
                                     "--batch-size", "8", "--max-seq-length", "16", "--no-progress", *extra])


@pytest.mark.parametrize("loss", ["gloss+ce", "ce"])
def test_eval_metric_head_picks_the_epoch_by_the_heads_validation_macro_f1(loss, tiny_model_path, tiny_data,
                                                                           tmp_path):
    result = _train(tiny_model_path, tiny_data, tmp_path / "out", "--loss", loss, "--epochs", "3",
                    "--eval-metric", "head", "--patience", "3")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["eval_metric"] == "head_macro_f1"
    trained = [e for e in metrics["curve"] if e["epoch"] > 0]
    scores = [e["val"]["head_macro_f1"] for e in trained]
    assert len(scores) == 3 and all(0 <= s <= 1 for s in scores)
    assert metrics["best_epoch"] == trained[int(np.argmax(scores))]["epoch"]  # argmax keeps the first of ties


def test_eval_metric_head_without_a_head_exits_2_and_keeps_the_earlier_job(tiny_model_path, tiny_data, tmp_path):
    output = tmp_path / "out"
    assert _train(tiny_model_path, tiny_data, output, "--loss", "gloss", "--epochs", "1").exit_code == 0
    before = (output / "metrics.json").read_text()
    result = _train(tiny_model_path, tiny_data, output, "--loss", "gloss", "--eval-metric", "head", "--overwrite")
    assert result.exit_code == 2
    assert "--loss gloss has none" in result.output and "Traceback" not in result.output
    assert (output / "metrics.json").read_text() == before  # refused before anything was replaced


def test_the_knn_validation_index_can_be_a_stratified_subset(tiny_data, tmp_path):
    config = TrainConfig(str(tiny_data), "gloss", str(tmp_path / "o"), knn_index_examples=12)
    data = prepare_data(config, echo=lambda line: None)
    knn = validation_evaluators(data, config)[0]
    assert len(knn.index_texts) == 12 and np.bincount(knn.index_labels).tolist() == [4, 4, 4]
    assert set(knn.index_texts) <= set(data["train"].texts)
    full = validation_evaluators(data, TrainConfig(str(tiny_data), "gloss", str(tmp_path / "o")))[0]
    assert len(full.index_texts) == len(data["train"])
    with pytest.raises(InputError, match="knn_index_examples must be at least 1"):
        from st_gloss.training import _check_config

        _check_config(TrainConfig(str(tiny_data), "gloss", "o", knn_index_examples=0))

"""evaluate(): one encoding per split, the same figures as the metric functions called by hand."""

from __future__ import annotations

import pytest

from st_gloss.evaluation import EvaluationReport, evaluate, load_data
from st_gloss.evaluation.encode import encode_texts
from st_gloss.evaluation.knn import knn_classify
from st_gloss.evaluation.probe import linear_probe
from st_gloss.evaluation.silhouette import silhouette


def test_evaluate_gives_the_figures_of_the_metric_functions(tiny_model):
    data = load_data("sample:r8")
    report = evaluate(tiny_model, data, ("knn", "silhouette", "probe"), k=5,
                      weighting=("majority", "similarity"), seed=3)
    assert isinstance(report, EvaluationReport) and report.split == "test" and report.index_split == "train"
    train = encode_texts(tiny_model, data["train"].texts, show_progress_bar=False)
    test = encode_texts(tiny_model, data["test"].texts, show_progress_bar=False)
    knn = knn_classify(train, data["train"].labels, test, data["test"].labels, k=5, num_classes=8)
    similar = knn_classify(train, data["train"].labels, test, data["test"].labels, k=5, weighting="similarity",
                           num_classes=8)
    probe = linear_probe(train, data["train"].labels, test, data["test"].labels, seed=3, num_classes=8)
    sil = silhouette(test, data["test"].labels, metric="cosine", seed=3)
    assert report.as_dict() == {
        "knn_accuracy": knn.accuracy, "knn_macro_f1": knn.macro_f1,
        "probe_accuracy": probe.accuracy, "probe_macro_f1": probe.macro_f1,
        "silhouette_macro": sil.macro, "silhouette_micro": sil.micro,
    }
    assert report.knn_by_weighting["similarity"].accuracy == similar.accuracy
    assert {"encode", "encode_test", "encode_train", "knn", "knn_similarity", "silhouette", "probe"} <= set(
        report.seconds)
    assert set(report.results()) == {"knn", "knn_similarity", "silhouette", "probe"}


def test_evaluate_on_a_single_split_is_leave_one_out_and_skips_the_index(tiny_model):
    data = load_data("sample:mr")
    data.splits.pop("test")
    report = evaluate(tiny_model, data, "knn,probe", k=3)
    assert report.leave_one_out and report.split == "train" and "encode_test" not in report.seconds
    assert "cross-validation" in report.probe.protocol and set(report.as_dict()) == {
        "knn_accuracy", "knn_macro_f1", "probe_accuracy", "probe_macro_f1"}


def test_evaluate_refuses_unknown_metrics_and_mteb_without_an_index_split(tiny_model):
    from st_gloss.errors import InputError

    data = load_data("sample:mr")
    with pytest.raises(InputError, match="unknown metric"):
        evaluate(tiny_model, data, ["recall"])
    data.splits.pop("test")
    with pytest.raises(InputError, match="MTEB classification needs a train split"):
        evaluate(tiny_model, data, ["mteb"])

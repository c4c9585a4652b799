"""GraphGuidedLoss: the sentence-transformers glue around the math."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from loss_helpers import FakeModel, clusters, numpy_harmonic

from st_gloss import GraphGuidedLoss
from st_gloss import functional as F
from st_gloss.masking import stratified_labelled_mask


def test_standalone_loss_equals_the_functional_with_the_same_mask():
    x, y = clusters()
    loss = GraphGuidedLoss(FakeModel(), labelled_fraction=0.6, sigma=0.5, seed=3)
    value = loss.compute_loss_from_embeddings(x, y)
    mask = stratified_labelled_mask(y, 0.6, torch.Generator().manual_seed(3))
    expected = F.graph_loss(x, y, mask, 0.5, num_classes=3)
    torch.testing.assert_close(value, expected)


def test_same_seed_same_losses_and_masks_change_between_steps():
    x, y = clusters()
    a = GraphGuidedLoss(FakeModel(), sigma=0.5, seed=7)
    b = GraphGuidedLoss(FakeModel(), sigma=0.5, seed=7)
    first = [float(a.compute_loss_from_embeddings(x, y)) for _ in range(4)]
    second = [float(b.compute_loss_from_embeddings(x, y)) for _ in range(4)]
    assert first == second
    assert len(set(first)) > 1  # a new mask every step


def test_seed_defaults_to_torch_initial_seed():
    x, y = clusters()
    torch.manual_seed(123)
    a = float(GraphGuidedLoss(FakeModel(), sigma=0.5).compute_loss_from_embeddings(x, y))
    b = float(GraphGuidedLoss(FakeModel(), sigma=0.5, seed=123).compute_loss_from_embeddings(x, y))
    assert a == b


def test_head_returns_weighted_graph_and_ce_parts_from_one_embedding():
    x, y = clusters()
    loss = GraphGuidedLoss(FakeModel(), sigma=0.5, num_labels=3, graph_weight=0.7, seed=1)
    parts = loss.compute_loss_from_embeddings(x, y)
    assert set(parts) == {"graph", "ce"}
    ref = GraphGuidedLoss(FakeModel(), sigma=0.5, seed=1)
    torch.testing.assert_close(parts["graph"], 0.7 * ref.compute_loss_from_embeddings(x, y))
    ce = torch.nn.functional.cross_entropy(loss.classifier(x), y)
    torch.testing.assert_close(parts["ce"], 0.3 * ce)
    sum(parts.values()).backward()
    assert loss.classifier.weight.grad is not None


def test_default_graph_weight_depends_on_the_head():
    assert GraphGuidedLoss(FakeModel()).graph_weight == 1.0
    assert GraphGuidedLoss(FakeModel(), num_labels=3).graph_weight == 0.8


@pytest.mark.parametrize(
    "labels",
    [
        torch.tensor([2, 2, 2, 2, 2, 2]),  # all one class
        torch.tensor([1]),  # one example
        torch.tensor([0, 1, 2, 3, 4, 5]),  # every class a singleton
    ],
    ids=["one-class", "one-example", "all-singletons"],
)
def test_degenerate_batches_give_a_zero_that_backpropagates_and_warn_once(labels):
    emb = torch.randn(labels.numel(), 4, requires_grad=True)
    loss = GraphGuidedLoss(FakeModel(), sigma="dicm", seed=0)
    with pytest.warns(UserWarning, match="ClassBalancedBatchSampler"):
        value = loss.compute_loss_from_embeddings(emb, labels)
    value.backward()
    assert float(value.detach()) == 0.0 and emb.grad is not None and torch.isfinite(emb.grad).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second degenerate batch stays silent
        loss.compute_loss_from_embeddings(emb, labels)


def test_degenerate_batch_with_head_keeps_the_ce_part():
    emb = torch.randn(4, 4, requires_grad=True)
    loss = GraphGuidedLoss(FakeModel(), num_labels=3, graph_weight=0.5)
    with pytest.warns(UserWarning):
        parts = loss.compute_loss_from_embeddings(emb, torch.tensor([1, 1, 1, 1]))
    assert float(parts["graph"]) == 0.0 and float(parts["ce"]) > 0.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"labelled_fraction": 0.0}, "labelled_fraction"),
        ({"labelled_fraction": 1.0}, "labelled_fraction"),
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": -1.0}, "sigma"),
        ({"sigma": "mean"}, "unknown sigma rule"),
        ({"graph_weight": 0.5}, "num_labels"),
        ({"num_labels": 3, "graph_weight": 1.5}, "graph_weight"),
        ({"num_labels": 1}, "num_labels"),
        ({"normalization": "cols"}, "normalization"),
        ({"class_weight": "inverse"}, "class_weight"),
    ],
)
def test_bad_arguments_name_the_class_and_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        GraphGuidedLoss(FakeModel(), **kwargs)
    assert "GraphGuidedLoss" in str(info.value)


def test_bad_labels_are_refused():
    emb = torch.randn(4, 4)
    loss = GraphGuidedLoss(FakeModel(), num_labels=3)
    with pytest.raises(ValueError, match="integer class ids"):
        loss.compute_loss_from_embeddings(emb, torch.tensor([0.0, 1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="1-D labels"):
        loss.compute_loss_from_embeddings(emb, torch.tensor([[0, 1], [0, 1]]))
    with pytest.raises(ValueError, match="out of range for num_labels=3"):
        loss.compute_loss_from_embeddings(emb, torch.tensor([0, 1, 2, 3]))


def test_balanced_class_weight_gives_the_weighted_nll_of_an_independent_computation():
    x, _ = clusters(n=6)
    y = torch.tensor([0] * 12 + [1] * 3 + [2] * 3)
    weighted = GraphGuidedLoss(FakeModel(), sigma=1.0, seed=0, class_weight="balanced")
    value = float(weighted.compute_loss_from_embeddings(x, y))

    mask = stratified_labelled_mask(y, 0.7, torch.Generator().manual_seed(0)).numpy()  # the loss's first mask
    xn, yn = x.double().numpy(), y.numpy()
    probs = numpy_harmonic(xn, yn, mask, 1.0, 3)
    probs = probs / probs.sum(axis=1, keepdims=True)
    nll = -np.log(probs[np.arange(len(probs)), yn[~mask]])
    counts = np.bincount(yn, minlength=3)
    class_weight = len(yn) / (3 * counts)  # scikit-learn's "balanced", over the whole batch
    w = class_weight[yn[~mask]]
    expected = (w * nll).sum() / w.sum()
    assert value == pytest.approx(expected, rel=1e-5)
    assert abs(expected - nll.mean()) > 1e-3  # the weighting matters on this batch: a plain mean fails
    plain = GraphGuidedLoss(FakeModel(), sigma=1.0, seed=0).compute_loss_from_embeddings(x, y)
    assert float(plain) == pytest.approx(nll.mean(), rel=1e-5)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "fp16-overflow"])
def test_non_finite_embeddings_are_refused_naming_the_loss_the_count_and_the_fix(bad):
    x, y = clusters()
    if bad == "fp16-overflow":
        x = (x * 3e4).half()  # beyond float16's 65504
    else:
        x[[1, 4, 7]] = bad
    x.requires_grad_()
    for loss in (GraphGuidedLoss(FakeModel(), sigma=0.5), GraphGuidedLoss(FakeModel(), num_labels=3),
                 GraphGuidedLoss(FakeModel(), sigma="dicm", memory_steps=2)):
        with pytest.raises(ValueError, match=r"GraphGuidedLoss: \d+ of 18 embedding rows contain NaN or inf") as info:
            loss.compute_loss_from_embeddings(x, y)
        assert "bf16=True or in float32" in str(info.value)
        assert len(loss.memory) == 0  # nothing poisoned the memory
    if bad != "fp16-overflow":
        assert "3 of 18" in str(info.value)


def test_linear_head_cross_entropy_refuses_non_finite_embeddings():
    from st_gloss import LinearHeadCrossEntropyLoss

    x, y = clusters()
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="LinearHeadCrossEntropyLoss: 1 of 18 embedding rows contain NaN or inf"):
        LinearHeadCrossEntropyLoss(FakeModel(), num_labels=3).compute_loss_from_embeddings(x, y)


def test_numpy_and_tensor_numbers_are_accepted_for_every_numeric_option():
    x, y = clusters()
    plain = GraphGuidedLoss(FakeModel(), labelled_fraction=0.625, sigma=0.5, num_labels=3, graph_weight=0.75, seed=2,
                            graph="knn", num_neighbors=5, propagation="iterative", num_iterations=30, memory_steps=1,
                            class_weight=[1.0, 2.0, 0.5])
    numpy_typed = GraphGuidedLoss(
        FakeModel(), labelled_fraction=np.float32(0.625), sigma=np.float32(0.5), num_labels=np.int64(3),
        graph_weight=np.float64(0.75), seed=np.int64(2), graph="knn", num_neighbors=np.int32(5),
        propagation="iterative", num_iterations=np.int64(30), memory_steps=np.int64(1),
        class_weight=np.array([1.0, 2.0, 0.5]),
    )
    numpy_typed.classifier.load_state_dict(plain.classifier.state_dict())
    assert json.loads(json.dumps(numpy_typed.get_config_dict())) == plain.get_config_dict()
    torch.testing.assert_close(numpy_typed.compute_loss_from_embeddings(x, y), plain.compute_loss_from_embeddings(x, y))
    tensor_sigma = GraphGuidedLoss(FakeModel(), sigma=torch.tensor(0.5), seed=0)
    assert tensor_sigma.get_config_dict()["sigma"] == 0.5


@pytest.mark.parametrize(
    "kwargs",
    [{"sigma": True}, {"labelled_fraction": True}, {"num_labels": True}, {"num_labels": 3.0},
     {"num_labels": 3, "graph_weight": True}, {"num_labels": 3, "graph_weight": "0.5"}, {"num_neighbors": True},
     {"num_iterations": 10.0}, {"memory_steps": True}, {"memory_steps": 1.5}, {"seed": 1.5},
     {"class_weight": [1.0, float("nan")]}, {"class_weight": [1.0, -1.0]}, {"class_weight": [0.0, 0.0]},
     {"class_weight": ["1", "2"]}, {"sigma": float("nan")}],
)
def test_bools_strings_and_non_finite_numbers_are_refused(kwargs):
    with pytest.raises(ValueError, match="GraphGuidedLoss"):
        GraphGuidedLoss(FakeModel(), **kwargs)


def test_huge_label_ids_without_num_labels_are_numbered_per_batch():
    x, y = clusters()
    ids = torch.tensor([2**40, 0, 7])[y]  # one-hot targets over 2**40 classes would need terabytes
    for kwargs in ({}, {"class_weight": "balanced"}, {"normalization": "symmetric"}, {"graph": "knn"}):
        huge = GraphGuidedLoss(FakeModel(), sigma=0.5, seed=0, **kwargs).compute_loss_from_embeddings(x, ids)
        small = GraphGuidedLoss(FakeModel(), sigma=0.5, seed=0, **kwargs).compute_loss_from_embeddings(x, y)
        torch.testing.assert_close(huge, small)


def test_class_weight_list_follows_the_label_ids_and_refuses_ids_it_lacks():
    x, y = clusters()
    ids = torch.tensor([4, 0, 2])[y]
    weights = [1.0, 0.0, 3.0, 0.0, 0.5]
    by_id = GraphGuidedLoss(FakeModel(), sigma=0.5, seed=0, class_weight=weights).compute_loss_from_embeddings(x, ids)
    # Classes 0, 1, 2 of y are ids 4, 0, 2: weights 0.5, 1.0, 3.0.
    dense = GraphGuidedLoss(FakeModel(), sigma=0.5, seed=0, class_weight=[0.5, 1.0, 3.0])
    torch.testing.assert_close(by_id, dense.compute_loss_from_embeddings(x, y))
    with pytest.raises(ValueError, match="class_weight has 2 weights, none for label 2"):
        GraphGuidedLoss(FakeModel(), sigma=0.5, class_weight=[1.0, 2.0]).compute_loss_from_embeddings(x, y)


def test_negative_label_ids_are_refused_with_a_clear_message():
    x, y = clusters()
    y[0] = -2  # -1 is a text without a label (tests/test_unlabelled.py); below it is an error
    with pytest.raises(ValueError, match=r"GraphGuidedLoss: label ids must be >= 0 \(or -1 for a text without a "
                                         r"label\), got -2"):
        GraphGuidedLoss(FakeModel()).compute_loss_from_embeddings(x, y)


def test_autocast_bfloat16_gives_a_finite_float32_loss():
    x, y = clusters()
    layer = torch.nn.Linear(4, 4)
    loss = GraphGuidedLoss(FakeModel(), num_labels=3, seed=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emb = layer(x)
        assert emb.dtype == torch.bfloat16
        parts = loss.compute_loss_from_embeddings(emb, y)
    total = sum(parts.values())
    total.backward()
    assert total.dtype == torch.float32 and torch.isfinite(total)
    assert torch.isfinite(layer.weight.grad).all()


def test_config_is_json_safe_and_citation_names_the_paper():
    loss = GraphGuidedLoss(FakeModel(), sigma="sqrt_median", num_labels=3, class_weight=[1, 2, 3])
    config = loss.get_config_dict()
    assert json.loads(json.dumps(config)) == config
    assert config["labelled_fraction"] == 0.7 and config["sigma"] == "sqrt_median"
    assert "2604.25853" in loss.citation and "G-Loss" in loss.citation


def test_calibrate_sigma_fixes_the_paper_rule_on_the_training_texts(tiny_model):
    from tiny_model import simple_corpus as corpus

    texts, labels = corpus()
    loss = GraphGuidedLoss(tiny_model, sigma="sqrt_median")
    sigma = loss.calibrate_sigma(texts, show_progress_bar=False)
    emb = tiny_model.encode(texts, convert_to_tensor=True)
    from st_gloss.sigma import sqrt_median_sigma

    assert sigma == pytest.approx(float(sqrt_median_sigma(emb)), rel=1e-5)
    assert loss.get_config_dict()["calibrated_sigma"] == sigma
    assert loss.sigma_for_batch(emb[:4], torch.tensor(labels[:4])) == sigma
    with pytest.raises(ValueError, match="needs the labels"):
        loss.calibrate_sigma(texts, rule="dicm")
    assert loss.calibrate_sigma(texts, labels, rule="dicm", show_progress_bar=False) > 0


def test_linear_head_cross_entropy_matches_torch():
    from st_gloss import LinearHeadCrossEntropyLoss

    x, y = clusters()
    loss = LinearHeadCrossEntropyLoss(FakeModel(), num_labels=3)
    expected = torch.nn.functional.cross_entropy(loss.classifier(x), y)
    torch.testing.assert_close(loss.compute_loss_from_embeddings(x, y), expected)
    with pytest.raises(ValueError, match="num_labels"):
        LinearHeadCrossEntropyLoss(FakeModel(), num_labels=1)


def test_degenerate_float16_batch_of_large_embeddings_gives_a_zero_not_nan():
    # Five rows of 3e4 sum to 1.5e5, beyond float16: the connected zero must not be inf * 0.
    emb = torch.full((5, 3), 3e4, dtype=torch.float16, requires_grad=True)
    loss = GraphGuidedLoss(FakeModel(3), num_labels=5, graph_weight=0.5)
    with pytest.warns(UserWarning):
        parts = loss.compute_loss_from_embeddings(emb, torch.tensor([1, 1, 1, 1, 1]))
    assert float(parts["graph"]) == 0.0 and torch.isfinite(parts["ce"])
    graph_zero = F.graph_loss(emb, torch.tensor([0, 0, 1, 1, 1]), torch.ones(5, dtype=torch.bool), 0.5)
    assert float(graph_zero) == 0.0

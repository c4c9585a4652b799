"""Texts without a label (-1) in the graph: hidden nodes that carry labels, receive gradients, score nothing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from st_gloss import functional
from st_gloss.functional import UNLABELLED
from st_gloss.masking import stratified_labelled_mask


def numpy_harmonic(x: np.ndarray, labels: np.ndarray, labelled: np.ndarray, sigma: float, num_classes: int):
    """Zhu & Ghahramani's harmonic solution, written out in numpy: rows of the hidden nodes in index order."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    w = np.exp(-d2 / (2 * sigma**2))
    np.fill_diagonal(w, 0.0)
    p = w / w.sum(axis=1, keepdims=True)
    u, lab = np.where(~labelled)[0], np.where(labelled)[0]
    y_l = np.eye(num_classes)[labels[lab]]
    return np.linalg.solve(np.eye(len(u)) - p[np.ix_(u, u)], p[np.ix_(u, lab)] @ y_l), u


@pytest.fixture()
def batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5))
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, UNLABELLED, UNLABELLED, UNLABELLED, UNLABELLED])
    labelled = np.array([1, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    return x, labels, labelled


def test_propagation_through_unlabelled_nodes_is_the_numpy_harmonic_solution(batch):
    x, labels, labelled = batch
    expected, _ = numpy_harmonic(x, labels, labelled, 0.7, 3)
    got = functional.propagate_labels(torch.tensor(x), torch.tensor(labels), torch.tensor(labelled), 0.7,
                                      num_classes=3)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)


def test_only_hidden_nodes_with_a_label_are_scored(batch):
    x, labels, labelled = batch
    f_u, hidden = numpy_harmonic(x, labels, labelled, 0.7, 3)
    scored = labels[hidden] >= 0
    expected = -np.log(f_u[scored, labels[hidden][scored]]).mean()
    for num_classes in (None, 3):
        loss = functional.graph_loss(torch.tensor(x), torch.tensor(labels), torch.tensor(labelled), 0.7,
                                     num_classes=num_classes)
        assert float(loss) == pytest.approx(expected, abs=1e-9)
    # the unlabelled rows change the loss only as graph nodes: without them it is another number
    without = functional.graph_loss(torch.tensor(x[:8]), torch.tensor(labels[:8]), torch.tensor(labelled[:8]), 0.7)
    assert abs(float(without) - expected) > 1e-3


def test_gradients_reach_the_unlabelled_rows_and_gradcheck_passes(batch):
    x, labels, labelled = batch
    xt = torch.tensor(x, requires_grad=True)
    functional.graph_loss(xt, torch.tensor(labels), torch.tensor(labelled), 0.7).backward()
    assert (xt.grad[labels == UNLABELLED].abs().sum(dim=1) > 0).all()
    small = torch.tensor(x[[0, 1, 3, 4, 8, 9]], requires_grad=True)
    small_labels = torch.tensor([0, 0, 1, 1, UNLABELLED, UNLABELLED])
    small_mask = torch.tensor([True, False, True, False, False, False])
    assert torch.autograd.gradcheck(lambda e: functional.graph_loss(e, small_labels, small_mask, 0.7), (small,))


def test_an_unlabelled_node_in_the_labelled_mask_is_refused(batch):
    x, labels, labelled = batch
    labelled = labelled.copy()
    labelled[9] = True
    with pytest.raises(ValueError, match="can only be hidden"):
        functional.graph_loss(torch.tensor(x), torch.tensor(labels), torch.tensor(labelled), 0.7)
    with pytest.raises(ValueError, match="or -1 for a text without a label"):
        functional.graph_loss(torch.tensor(x), torch.tensor([-2] + [0] * 11), torch.tensor([False] * 12), 0.7)


def test_the_mask_is_drawn_among_the_labelled_texts_only():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1])
    for seed in range(20):
        mask = stratified_labelled_mask(labels, 0.5, torch.Generator().manual_seed(seed))
        assert not mask[labels == -1].any()
        # the labelled texts get exactly the mask they would get alone (same generator state)
        alone = stratified_labelled_mask(labels[:8], 0.5, torch.Generator().manual_seed(seed))
        assert torch.equal(mask[:8], alone)


def test_one_labelled_class_plus_unlabelled_texts_is_degenerate(tiny_model):
    from st_gloss import GraphGuidedLoss

    loss = GraphGuidedLoss(tiny_model, sigma=0.5, seed=0)
    embeddings = torch.randn(8, 16, requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = loss.compute_loss_from_embeddings(embeddings, torch.tensor([0, 0, 0, 0, -1, -1, -1, -1]))
    assert float(value) == 0.0 and value.requires_grad
    from st_gloss.losses.graph_guided import DEGENERATE_BATCH_WARNING

    assert [str(w.message) for w in caught] == [DEGENERATE_BATCH_WARNING]


def test_graph_guided_loss_with_unlabelled_texts_matches_the_functional(tiny_model):
    from st_gloss import GraphGuidedLoss

    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, -1, -1, -1, -1])
    embeddings = torch.randn(10, 16, dtype=torch.float64, requires_grad=True)
    loss = GraphGuidedLoss(tiny_model, labelled_fraction=0.5, sigma=0.6, seed=3)
    value = loss.compute_loss_from_embeddings(embeddings, labels)
    mask = stratified_labelled_mask(labels, 0.5, torch.Generator().manual_seed(3))
    expected = functional.graph_loss(embeddings, labels, mask, 0.6)
    assert float(value) == pytest.approx(float(expected), abs=1e-12)
    value.backward()
    assert (embeddings.grad[6:].abs().sum(dim=1) > 0).all()


def test_the_ce_head_and_the_memory_ignore_unlabelled_texts(tiny_model):
    from st_gloss import GraphGuidedLoss

    torch.manual_seed(0)
    loss = GraphGuidedLoss(tiny_model, num_labels=2, sigma=0.6, seed=0, memory_steps=2, embedding_dimension=16)
    embeddings = torch.randn(8, 16, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, -1, -1, -1, -1])
    parts = loss.compute_loss_from_embeddings(embeddings, labels)
    logits = loss.classifier(embeddings[:4])
    expected_ce = torch.nn.functional.cross_entropy(logits, labels[:4])
    assert float(parts["ce"]) == pytest.approx(float(0.2 * expected_ce), rel=1e-6)
    assert torch.isfinite(parts["graph"]) and torch.isfinite(parts["ce"])
    assert loss.memory.labels().tolist() == [0, 0, 1, 1]  # only the labelled texts are remembered


@pytest.mark.parametrize("name", ["ce", "supcon", "supcon+ce", "cosine"])
def test_the_other_losses_refuse_texts_without_a_label(tiny_model, name):
    from st_gloss.registry import build_loss

    loss = build_loss(name, tiny_model, num_labels=2)
    with pytest.raises(ValueError, match="cannot use texts without a label"):
        loss.compute_loss_from_embeddings(torch.randn(4, 16), torch.tensor([0, 1, -1, 0]))

"""The cross-batch memory: a FIFO of detached past batches, added to the graph as labelled nodes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from loss_helpers import FakeModel, clusters

from st_gloss import GraphGuidedLoss
from st_gloss import functional as F
from st_gloss.masking import stratified_labelled_mask
from st_gloss.memory import EmbeddingMemory


def test_memory_shapes_and_labels_follow_the_pushed_batches():
    memory = EmbeddingMemory(num_steps=3)
    assert memory.embeddings() is None and memory.labels() is None and len(memory) == 0
    memory.push(torch.zeros(4, 5), torch.tensor([0, 1, 0, 1]))
    memory.push(torch.ones(2, 5), torch.tensor([2, 2]))
    assert memory.embeddings().shape == (6, 5)
    assert memory.labels().tolist() == [0, 1, 0, 1, 2, 2]
    assert memory.num_nodes == 6 and len(memory) == 2


def test_memory_evicts_the_oldest_batch_first():
    memory = EmbeddingMemory(num_steps=2)
    for step in range(5):
        memory.push(torch.full((step + 1, 3), float(step)), torch.full((step + 1,), step))
    # Steps 3 (4 rows) and 4 (5 rows) remain, oldest first.
    assert memory.labels().tolist() == [3] * 4 + [4] * 5
    assert memory.embeddings()[:, 0].tolist() == [3.0] * 4 + [4.0] * 5


def test_memory_stores_detached_copies():
    x = torch.randn(3, 4, requires_grad=True)
    y = torch.tensor([0, 1, 1])
    memory = EmbeddingMemory(num_steps=1)
    memory.push(x * 2, y)
    stored = memory.embeddings()
    assert not stored.requires_grad and stored.grad_fn is None
    y[0] = 5  # later changes to the caller's tensors do not reach the memory
    assert memory.labels()[0].item() == 0


def test_zero_steps_keeps_nothing_and_bad_input_is_refused():
    memory = EmbeddingMemory(num_steps=0)
    memory.push(torch.zeros(2, 3), torch.tensor([0, 1]))
    assert len(memory) == 0
    with pytest.raises(ValueError, match="non-negative integer"):
        EmbeddingMemory(-1)
    memory = EmbeddingMemory(2)
    memory.push(torch.zeros(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="embedding size changed"):
        memory.push(torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"\(n, d\) embeddings and \(n,\) labels"):
        memory.push(torch.zeros(3, 3), torch.tensor([0, 1]))


def test_loss_with_memory_is_the_graph_loss_over_batch_plus_memory_nodes():
    x0, y0 = clusters(seed=0)
    x1, y1 = clusters(seed=1)
    loss = GraphGuidedLoss(FakeModel(), labelled_fraction=0.5, sigma=0.7, seed=4, memory_steps=2)
    loss.compute_loss_from_embeddings(x0, y0)  # step 0: graph of the batch only, then stored
    value = loss.compute_loss_from_embeddings(x1, y1)

    generator = torch.Generator().manual_seed(4)
    stratified_labelled_mask(y0, 0.5, generator)  # the mask of step 0
    mask1 = stratified_labelled_mask(y1, 0.5, generator)
    nodes = torch.cat([x1, x0])
    expected = F.graph_loss(nodes, torch.cat([y1, y0]), torch.cat([mask1, torch.ones(len(y0), dtype=torch.bool)]),
                            0.7, num_classes=3)
    torch.testing.assert_close(value, expected)
    without_memory = F.graph_loss(x1, y1, mask1, 0.7, num_classes=3)
    assert not torch.isclose(value, without_memory)


def test_no_gradient_reaches_an_old_step():
    loss = GraphGuidedLoss(FakeModel(), labelled_fraction=0.5, sigma=0.7, seed=0, memory_steps=1)
    x0 = clusters(seed=0)[0].requires_grad_()
    x1, y = clusters(seed=1)
    x1.requires_grad_()
    loss.compute_loss_from_embeddings(x0, y)
    loss.compute_loss_from_embeddings(x1, y).backward()
    assert x0.grad is None  # the stored copy of step 0 is detached
    assert x1.grad is not None and x1.grad.abs().sum() > 0


def test_memory_is_filled_only_by_training_steps():
    model = FakeModel()
    loss = GraphGuidedLoss(model, sigma=0.7, seed=0, memory_steps=3)
    x, y = clusters()
    with torch.no_grad():
        loss.compute_loss_from_embeddings(x, y)  # evaluation loss: no gradient
    model.eval()
    loss.compute_loss_from_embeddings(x, y)
    assert len(loss.memory) == 0
    model.train()
    loss.compute_loss_from_embeddings(x, y)
    assert len(loss.memory) == 1


def test_memory_gives_a_one_class_batch_something_to_propagate():
    x, y = clusters(n=6, classes=2)
    loss = GraphGuidedLoss(FakeModel(), sigma=0.7, seed=0, memory_steps=1)
    loss.compute_loss_from_embeddings(x, y)
    one_class = y == 0
    value = loss.compute_loss_from_embeddings(x[one_class], y[one_class])
    assert value > 0  # class 1 in the memory competes with class 0


def test_memory_steps_is_validated_and_in_the_config():
    with pytest.raises(ValueError, match="memory_steps must be a non-negative integer"):
        GraphGuidedLoss(FakeModel(), memory_steps=-2)
    config = GraphGuidedLoss(FakeModel(), memory_steps=4).get_config_dict()
    assert config["memory_steps"] == 4 and config["gather_across_devices"] is False


def test_memory_refuses_non_finite_embeddings():
    memory = EmbeddingMemory(2)
    with pytest.raises(ValueError, match="EmbeddingMemory.push: 1 of 2 embedding rows contain NaN or inf"):
        memory.push(torch.tensor([[0.0, float("inf")], [1.0, 0.0]]), torch.tensor([0, 1]))
    assert len(memory) == 0


def test_memory_steps_accepts_numpy_integers():
    assert EmbeddingMemory(np.int64(3)).num_steps == 3
    assert GraphGuidedLoss(FakeModel(), memory_steps=np.int32(2)).get_config_dict()["memory_steps"] == 2
    with pytest.raises(ValueError, match="non-negative integer"):
        EmbeddingMemory(True)


def test_dicm_sigma_on_a_one_class_batch_uses_the_memory():
    x, y = clusters(n=6, classes=2)
    loss = GraphGuidedLoss(FakeModel(), sigma="dicm", seed=0, memory_steps=1)
    loss.compute_loss_from_embeddings(x, y)
    one_class = y == 0
    value = loss.compute_loss_from_embeddings(x[one_class], y[one_class])  # dicm needs two classes: batch + memory
    assert torch.isfinite(value) and value > 0

"""The loss registry: every name builds a loss that trains on (text, class) batches; options are checked."""

from __future__ import annotations

import pytest
import torch

from st_gloss.registry import DEFAULT_OPTIONS, LOSSES, LossSpec, build_loss, register

NAMES = ["gloss", "gloss+ce", "ce", "supcon", "supcon+ce", "batch-all-triplet", "batch-hard-triplet", "cosine",
         "gloss+memory"]


def test_the_registry_holds_the_benchmark_losses_in_order():
    assert list(LOSSES) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_loss_builds_and_gives_a_finite_differentiable_loss(name, tiny_model):
    loss = build_loss(name, tiny_model, num_labels=3)
    features = tiny_model.tokenize(
        ["film movie story", "great love fun", "oil price trade", "bank rate share", "cat dog sport", "game team won"]
    )
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    value = loss([features], labels)
    total = sum(value.values()) if isinstance(value, dict) else value
    assert torch.isfinite(total)
    total.backward()
    assert any(p.grad is not None for p in tiny_model.parameters())


def test_options_reach_the_loss_and_foreign_options_are_refused(tiny_model):
    loss = build_loss("supcon+ce", tiny_model, num_labels=3, temperature=0.05, graph_weight=0.6)
    assert loss.get_config_dict() == {"temperature": 0.05, "num_labels": 3, "contrastive_weight": 0.6}
    assert build_loss("batch-hard-triplet", tiny_model, 3).triplet_margin == DEFAULT_OPTIONS["margin"]
    assert build_loss("gloss", tiny_model, 3, sigma="0.5").sigma == 0.5
    assert build_loss("gloss", tiny_model, 3).memory_steps == 0
    assert build_loss("gloss+memory", tiny_model, 3).memory_steps == 4
    assert build_loss("gloss+ce", tiny_model, 3, memory_steps=2).memory.num_steps == 2
    with pytest.raises(ValueError, match="loss 'supcon' does not use memory_steps"):
        build_loss("supcon", tiny_model, 3, memory_steps=2)
    with pytest.raises(ValueError, match="loss 'ce' does not use temperature"):
        build_loss("ce", tiny_model, 3, temperature=0.1)
    with pytest.raises(ValueError, match="unknown loss 'softmax'"):
        build_loss("softmax", tiny_model, 3)


def test_register_refuses_duplicates_and_unknown_options():
    with pytest.raises(ValueError, match="already registered"):
        register(LossSpec("ce", lambda m, k, o: None, (), "again"))
    with pytest.raises(ValueError, match="unknown options"):
        register(LossSpec("new", lambda m, k, o: None, ("alpha",), "typo"))

"""SupervisedContrastiveLoss and InBatchCosineSimilarityLoss against loop-based formulas; degenerate batches."""

from __future__ import annotations

import math

import pytest
import torch

from st_gloss.losses import InBatchCosineSimilarityLoss, SupervisedContrastiveLoss
from st_gloss.losses.cosine import in_batch_cosine_loss
from st_gloss.losses.supcon import supervised_contrastive_loss


def supcon_loop(embeddings: torch.Tensor, labels: list[int], tau: float) -> float:
    """Khosla et al. (2020), eq. 2 (L^sup_out), one anchor and one positive at a time, in float64."""
    z = [e / math.sqrt(float((e * e).sum())) for e in embeddings.double()]
    n = len(z)
    total, anchors = 0.0, 0
    for i in range(n):
        positives = [p for p in range(n) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        denominator = sum(math.exp(float(z[i] @ z[a]) / tau) for a in range(n) if a != i)
        total += -sum(math.log(math.exp(float(z[i] @ z[p]) / tau) / denominator) for p in positives) / len(positives)
        anchors += 1
    return total / anchors


TOLERANCE = {torch.float16: 2e-2, torch.float32: 1e-5, torch.float64: 1e-10}


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_supcon_matches_the_loop_formula(dtype, tau):
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(10, 6, generator=generator, dtype=torch.float64)
    labels = [0, 0, 1, 1, 1, 2, 2, 3, 0, 1]  # class 3 has a single example: an anchor without positives
    expected = supcon_loop(embeddings, labels, tau)
    got = supervised_contrastive_loss(embeddings.to(dtype), torch.tensor(labels), tau)
    assert float(got) == pytest.approx(expected, rel=TOLERANCE[dtype], abs=TOLERANCE[dtype])


def test_supcon_is_lower_when_classes_are_clustered():
    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.tensor([[1.0, 0.0], [0.95, 0.05], [0.0, 1.0], [0.05, 0.95]])
    mixed = clustered[[0, 2, 1, 3]]
    assert supervised_contrastive_loss(clustered, labels) < supervised_contrastive_loss(mixed, labels)


def test_supcon_of_a_batch_without_positive_pairs_is_zero_with_a_working_backward():
    embeddings = torch.randn(4, 3, requires_grad=True)
    loss = supervised_contrastive_loss(embeddings, torch.tensor([0, 1, 2, 3]))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(embeddings.grad, torch.zeros_like(embeddings))


def test_supcon_gradient_matches_finite_differences():
    embeddings = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    assert torch.autograd.gradcheck(lambda e: supervised_contrastive_loss(e, labels, 0.2), (embeddings,))


def test_supcon_with_a_head_returns_weighted_parts(tiny_model):
    loss = SupervisedContrastiveLoss(tiny_model, temperature=0.1, num_labels=3, contrastive_weight=0.7)
    embeddings = torch.randn(6, 32)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    parts = loss.compute_loss_from_embeddings(embeddings, labels)
    assert set(parts) == {"supcon", "ce"}
    assert float(parts["supcon"]) == pytest.approx(0.7 * float(supervised_contrastive_loss(embeddings, labels, 0.1)))
    assert loss.get_config_dict() == {"temperature": 0.1, "num_labels": 3, "contrastive_weight": 0.7}
    assert "khosla2020supervised" in loss.citation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": 0.0}, "temperature must be a positive number"),
        ({"num_labels": 1}, "num_labels must be an integer >= 2"),
        ({"contrastive_weight": 0.5}, "needs num_labels"),
    ],
)
def test_supcon_refuses_bad_arguments_naming_the_class(tiny_model, kwargs, message):
    with pytest.raises(ValueError, match=f"SupervisedContrastiveLoss.*{message}|{message}"):
        SupervisedContrastiveLoss(tiny_model, **kwargs)


def test_supcon_refuses_float_labels(tiny_model):
    with pytest.raises(ValueError, match="SupervisedContrastiveLoss expects integer class ids"):
        SupervisedContrastiveLoss(tiny_model).compute_loss_from_embeddings(torch.randn(2, 32), torch.tensor([0.0, 1.0]))


def test_cosine_loss_matches_the_pair_loop():
    generator = torch.Generator().manual_seed(1)
    embeddings = torch.randn(7, 5, generator=generator, dtype=torch.float64)
    labels = [0, 1, 0, 2, 1, 1, 0]
    errors = []
    for i in range(7):
        for j in range(i + 1, 7):
            cosine = float(embeddings[i] @ embeddings[j] / (embeddings[i].norm() * embeddings[j].norm()))
            errors.append((cosine - float(labels[i] == labels[j])) ** 2)
    expected = sum(errors) / len(errors)
    assert float(in_batch_cosine_loss(embeddings, torch.tensor(labels))) == pytest.approx(expected, rel=1e-12)


def test_cosine_loss_of_a_single_text_is_zero_with_a_working_backward(tiny_model):
    embeddings = torch.randn(1, 32, requires_grad=True)
    loss = InBatchCosineSimilarityLoss(tiny_model).compute_loss_from_embeddings(embeddings, torch.tensor([0]))
    assert loss.item() == 0.0
    loss.backward()
    assert embeddings.grad is not None


@pytest.mark.parametrize("loss_class", [SupervisedContrastiveLoss, InBatchCosineSimilarityLoss])
def test_non_finite_embeddings_are_refused_naming_the_loss(tiny_model, loss_class):
    embeddings = torch.randn(6, 32)
    embeddings[2, 3] = float("nan")
    with pytest.raises(ValueError, match=f"{loss_class.__name__}: 1 of 6 embedding rows contain NaN or inf"):
        loss_class(tiny_model).compute_loss_from_embeddings(embeddings, torch.tensor([0, 0, 1, 1, 2, 2]))


@pytest.mark.parametrize(("dtype", "scale"), [(torch.float16, 1.0), (torch.float16, 1e3), (torch.bfloat16, 1e30),
                                             (torch.float32, 1e-6), (torch.float32, 1e30)])
def test_zero_tiny_and_huge_rows_give_finite_losses_and_gradients(dtype, scale):
    embeddings = torch.randn(6, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    embeddings[:2] = 0.0  # zero rows: no direction, and a float16 epsilon underflows
    embeddings = (embeddings * scale).to(dtype).requires_grad_()
    assert torch.isfinite(embeddings).all()
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    for fn in (lambda e: supervised_contrastive_loss(e, labels), lambda e: in_batch_cosine_loss(e, labels)):
        embeddings.grad = None
        loss = fn(embeddings)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(embeddings.grad).all()


def test_temperature_accepts_numpy_numbers_and_refuses_bools(tiny_model):
    import numpy as np

    assert SupervisedContrastiveLoss(tiny_model, temperature=np.float32(0.5)).get_config_dict()["temperature"] == 0.5
    for bad in (True, float("inf"), float("nan"), "0.1"):
        with pytest.raises(ValueError, match="temperature must be a positive number"):
            SupervisedContrastiveLoss(tiny_model, temperature=bad)

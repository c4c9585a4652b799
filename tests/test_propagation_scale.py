"""Propagation for large graphs: the iterative solver and the k-nearest-neighbour graph.

Each is checked against an independent closed form written in numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from loss_helpers import clustered, fixed_mask, numpy_harmonic

from st_gloss import functional as F
from st_gloss.masking import stratified_labelled_mask


def numpy_knn_harmonic(x, y, mask, sigma, num_classes, m):
    """The harmonic solution on the directed m-nearest-neighbour Gaussian graph, in numpy."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    w = np.zeros_like(d2)
    for i in range(len(x)):
        nearest = np.argsort(d2[i], kind="stable")[:m]
        w[i, nearest] = np.exp(-d2[i, nearest] / (2 * sigma**2))
    p = w / w.sum(axis=1, keepdims=True)
    u, lab = ~mask, mask
    f = np.linalg.solve(np.eye(u.sum()) - p[np.ix_(u, u)], p[np.ix_(u, lab)] @ np.eye(num_classes)[y[lab]])
    return f / f.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("sigma", [0.4, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_iterative_solution_converges_to_the_closed_form(sigma, seed):
    x, y = clustered(n_per_class=20, num_classes=4, seed=seed)
    mask = fixed_mask(y, seed, fraction=0.6)
    expected = numpy_harmonic(x, y, mask, sigma, 4)
    ours = F.propagate_labels(torch.tensor(x), torch.tensor(y), torch.tensor(mask), sigma, 4,
                              propagation="iterative", num_iterations=300)
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-8)


def test_iterative_error_shrinks_with_the_number_of_steps():
    x, y = clustered(n_per_class=20, num_classes=3, seed=3)
    mask = torch.tensor(fixed_mask(y, 3))
    closed = F.propagate_labels(torch.tensor(x), torch.tensor(y), mask, 0.5, 3)
    errors = [
        (F.propagate_labels(torch.tensor(x), torch.tensor(y), mask, 0.5, 3, propagation="iterative",
                            num_iterations=k) - closed).abs().max().item()
        for k in (1, 5, 20, 80)
    ]
    assert errors == sorted(errors, reverse=True) and errors[0] > 1e-3 > errors[-1]


def test_iterative_gradients_match_the_closed_form():
    x, y = clustered(n_per_class=10, num_classes=3, seed=4)
    mask = torch.tensor(fixed_mask(y, 4))
    grads = {}
    for method in ("closed_form", "iterative"):
        xt = torch.tensor(x, requires_grad=True)
        F.graph_loss(xt, torch.tensor(y), mask, 0.6, 3, propagation=method, num_iterations=300).backward()
        grads[method] = xt.grad
    torch.testing.assert_close(grads["iterative"], grads["closed_form"], atol=1e-9, rtol=1e-7)


def test_tolerance_stops_early_but_stays_close():
    x, y = clustered(n_per_class=20, num_classes=3, seed=5)
    mask = torch.tensor(fixed_mask(y, 5))
    closed = F.propagate_labels(torch.tensor(x), torch.tensor(y), mask, 0.5, 3)
    loose = F.propagate_labels(torch.tensor(x), torch.tensor(y), mask, 0.5, 3, propagation="iterative",
                               num_iterations=10_000, tol=1e-10)
    np.testing.assert_allclose(loose.numpy(), closed.numpy(), atol=1e-8)


@pytest.mark.parametrize("m", [3, 8])
@pytest.mark.parametrize("propagation", ["closed_form", "iterative"])
def test_knn_graph_propagation_matches_numpy(m, propagation):
    x, y = clustered(n_per_class=12, num_classes=3, seed=6)
    mask = fixed_mask(y, 6, fraction=0.5)
    expected = numpy_knn_harmonic(x, y, mask, 0.5, 3, m)
    ours = F.propagate_labels(torch.tensor(x), torch.tensor(y), torch.tensor(mask), 0.5, 3, graph="knn",
                              num_neighbors=m, propagation=propagation, num_iterations=2000)
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-7)


def test_knn_graph_with_all_neighbours_is_the_dense_graph():
    x, y = clustered(n_per_class=8, num_classes=3, seed=7)
    xt, yt, mask = torch.tensor(x), torch.tensor(y), torch.tensor(fixed_mask(y, 7))
    dense = F.propagate_labels(xt, yt, mask, 0.5, 3)
    knn = F.propagate_labels(xt, yt, mask, 0.5, 3, graph="knn", num_neighbors=len(x) - 1)
    torch.testing.assert_close(knn, dense, atol=1e-10, rtol=0)


def test_knn_graph_chunks_do_not_change_the_neighbours():
    x = torch.randn(50, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    whole, logits = F.knn_graph(x, 0.5, 5, chunk_size=4096)
    chunked, chunked_logits = F.knn_graph(x, 0.5, 5, chunk_size=7)
    assert torch.equal(whole, chunked)
    torch.testing.assert_close(logits, chunked_logits)
    assert not (whole == torch.arange(50)[:, None]).any()  # never its own neighbour


def test_knn_graph_loss_has_gradients_and_gradcheck():
    x, y = clustered(n_per_class=5, num_classes=2, dim=4, seed=8)
    mask = torch.tensor(fixed_mask(y, 8))
    xt = torch.tensor(x, requires_grad=True)

    def loss(inp):
        return F.graph_loss(inp, torch.tensor(y), mask, 0.7, 2, graph="knn", num_neighbors=4,
                            propagation="iterative", num_iterations=60)

    assert torch.autograd.gradcheck(loss, (xt,), atol=1e-6)


def test_auto_picks_the_solver_by_the_number_of_hidden_nodes():
    limit = F.AUTO_CLOSED_FORM_MAX_HIDDEN
    assert F.resolve_propagation("auto", limit) == "closed_form"
    assert F.resolve_propagation("auto", limit + 1) == "iterative"
    assert F.resolve_propagation("iterative", 3) == "iterative"
    with pytest.raises(ValueError, match="propagation must be one of"):
        F.resolve_propagation("lu", 3)


def test_auto_above_the_threshold_uses_the_iterative_solver(monkeypatch):
    calls = []
    real = F.iterative_solution
    monkeypatch.setattr(F, "AUTO_CLOSED_FORM_MAX_HIDDEN", 5)
    monkeypatch.setattr(F, "iterative_solution", lambda *a, **k: calls.append(1) or real(*a, **k))
    x, y = clustered(n_per_class=6, num_classes=3, seed=9)
    mask = torch.tensor(fixed_mask(y, 9))  # 9 hidden nodes > 5
    out = F.graph_loss(torch.tensor(x), torch.tensor(y), mask, 0.5, 3, propagation="auto")
    assert calls and torch.isfinite(out)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_iterative_and_knn_are_finite_under_low_precision(dtype):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 16, generator=g).to(dtype).requires_grad_()
    y = torch.arange(64) % 4
    mask = stratified_labelled_mask(y, 0.7, g)
    for kwargs in ({"propagation": "iterative"}, {"graph": "knn", "num_neighbors": 5, "propagation": "iterative"}):
        loss = F.graph_loss(x, y, mask, 1e-3, 4, **kwargs)  # tiny sigma: weights underflow
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
        x.grad = None


def test_bad_solver_options_are_refused():
    x, y = torch.randn(6, 3), torch.tensor([0, 0, 0, 1, 1, 1])
    mask = torch.tensor([True, False, True, True, False, True])
    for kwargs, message in [
        ({"graph": "sparse"}, "graph must be one of"),
        ({"graph": "knn", "normalization": "symmetric"}, "normalization='row' only"),
        ({"num_iterations": 0}, "num_iterations must be a positive integer"),
        ({"num_neighbors": 0}, "num_neighbors must be a positive integer"),
        ({"tol": -1.0}, "tol must be a positive number"),
    ]:
        with pytest.raises(ValueError, match=message):
            F.graph_loss(x, y, mask, 0.5, 2, **kwargs)


@pytest.mark.parametrize("propagation", ["closed_form", "iterative"])
def test_float32_solve_is_close_to_float64(propagation):
    x, y = clustered(n_per_class=30, num_classes=3, seed=10)
    mask = torch.tensor(fixed_mask(y, 10))
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    exact = F.propagate_labels(xt, yt, mask, 0.5, 3, propagation=propagation)
    single = F.propagate_labels(xt, yt, mask, 0.5, 3, propagation=propagation, solve_dtype=torch.float32)
    assert exact.dtype == torch.float64 and single.dtype == torch.float32
    torch.testing.assert_close(single.double(), exact, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="solve_dtype must be"):
        F.propagate_labels(xt, yt, mask, 0.5, 3, solve_dtype=torch.float16)


def test_knn_gradients_do_not_depend_on_the_chunk_size():
    x0 = torch.randn(40, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    grads = []
    for chunk_size in (3, 4096):
        x = x0.clone().requires_grad_()
        neighbors, logits = F.knn_graph(x, 0.5, 6, chunk_size=chunk_size)
        (logits * torch.linspace(0, 1, logits.numel(), dtype=torch.float64).reshape(logits.shape)).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1])

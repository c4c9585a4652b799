"""The math of G-Loss against independent computations (numpy, scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from loss_helpers import clustered, fixed_mask, numpy_harmonic, numpy_symmetric_transition
from sklearn.semi_supervised import LabelPropagation

from st_gloss import functional as F
from st_gloss.masking import stratified_labelled_mask
from st_gloss.sigma import compute_sigma, dicm_sigma, sqrt_median_sigma


@pytest.mark.parametrize("sigma", [0.3, 0.6, 1.5])
@pytest.mark.parametrize("seed", [0, 1])
def test_propagation_matches_numpy_harmonic_solution(sigma, seed):
    x, y = clustered(seed=seed)
    mask = fixed_mask(y, seed)
    ours = F.propagate_labels(torch.tensor(x), torch.tensor(y), torch.tensor(mask), sigma, num_classes=3)
    expected = numpy_harmonic(x, y, mask, sigma, 3)
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(ours.sum(dim=1).numpy(), 1.0, atol=1e-12)


@pytest.mark.parametrize("sigma", [0.4, 0.8])
def test_row_normalisation_equals_sklearn_label_propagation(sigma):
    x, y = clustered(n_per_class=7, seed=3)
    mask = fixed_mask(y, seed=3)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    partial = np.where(mask, y, -1)
    lp = LabelPropagation(kernel="rbf", gamma=1.0 / (2 * sigma**2), max_iter=200000, tol=1e-13)
    lp.fit(xn, partial)
    ours = F.propagate_labels(torch.tensor(x), torch.tensor(y), torch.tensor(mask), sigma, num_classes=3)
    np.testing.assert_allclose(ours.numpy(), lp.label_distributions_[~mask], atol=1e-6)


def test_symmetric_normalisation_matches_the_authors_recipe():
    x, _ = clustered(seed=4)
    logits = F.gaussian_logits(torch.tensor(x), 0.5)
    ours = F.transition_matrix(logits, "symmetric").numpy()
    np.testing.assert_allclose(ours, numpy_symmetric_transition(x, 0.5), atol=1e-12)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, atol=1e-12)


def test_affinity_has_zero_diagonal_and_gaussian_weights():
    x, _ = clustered(n_per_class=3, seed=5)
    w = F.gaussian_affinity(torch.tensor(x), 0.7).numpy()
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    expected = np.exp(-((xn[:, None] - xn[None]) ** 2).sum(-1) / (2 * 0.7**2))
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(w, expected, atol=1e-12)
    assert np.all(np.diag(w) == 0.0)


def test_hidden_labels_never_leak_into_the_propagation():
    x, y = clustered(seed=6)
    mask = torch.tensor(fixed_mask(y, seed=6))
    y_t = torch.tensor(y)
    scrambled = y_t.clone()
    scrambled[~mask] = (scrambled[~mask] + 1) % 3  # change only what is hidden
    a = F.propagate_labels(torch.tensor(x), y_t, mask, 0.5, 3)
    b = F.propagate_labels(torch.tensor(x), scrambled, mask, 0.5, 3)
    torch.testing.assert_close(a, b)


def test_graph_loss_scores_only_hidden_nodes():
    x, y = clustered(seed=7)
    mask = fixed_mask(y, seed=7)
    probs = numpy_harmonic(x, y, mask, 0.5, 3)
    expected = -np.log(probs[np.arange(len(probs)), y[~mask]]).mean()
    ours = F.graph_loss(torch.tensor(x), torch.tensor(y), torch.tensor(mask), 0.5, 3)
    assert float(ours) == pytest.approx(expected, abs=1e-8)


def test_class_weights_give_the_weighted_mean():
    probs = torch.tensor([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    targets = torch.tensor([0, 1, 1])
    nll = -torch.log(torch.tensor([0.8, 0.7, 0.4]))
    w = torch.tensor([1.0, 3.0])
    expected = (w[targets] * nll).sum() / w[targets].sum()
    torch.testing.assert_close(F.propagation_nll(probs, targets, w), expected)
    torch.testing.assert_close(F.balanced_class_weights(torch.tensor([0, 0, 0, 1]), 2), torch.tensor([4 / 6, 2.0]))


@pytest.mark.parametrize("normalization", ["row", "symmetric"])
def test_gradcheck_in_float64(normalization):
    x, y = clustered(n_per_class=3, dim=4, seed=8)
    mask = torch.tensor(fixed_mask(y, seed=8))
    emb = torch.tensor(x, requires_grad=True)

    def loss(e):
        return F.graph_loss(e, torch.tensor(y), mask, 0.6, 3, normalization=normalization)

    assert torch.autograd.gradcheck(loss, (emb,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_low_precision_embeddings_give_finite_loss_and_gradients(dtype):
    x, y = clustered(seed=9)
    emb = torch.tensor(x, dtype=dtype, requires_grad=True)
    mask = torch.tensor(fixed_mask(y, seed=9))
    loss = F.graph_loss(emb, torch.tensor(y), mask, 0.5, 3)
    loss.backward()
    reference = F.graph_loss(torch.tensor(x), torch.tensor(y), mask, 0.5, 3)
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss) and torch.isfinite(emb.grad).all()
    assert float(loss.detach()) == pytest.approx(float(reference), rel=0.05, abs=0.02)


@pytest.mark.parametrize("sigma", [1e-3, 0.02, 50.0])
def test_extreme_sigma_never_gives_nan(sigma):
    x, y = clustered(seed=10)
    emb = torch.tensor(x, requires_grad=True)
    mask = torch.tensor(fixed_mask(y, seed=10))
    loss = F.graph_loss(emb, torch.tensor(y), mask, sigma, 3)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(emb.grad).all()


def test_hidden_group_cut_off_from_every_labelled_node_stays_finite():
    # Two hidden points on top of each other, far from the labelled ones: I - P_uu is singular
    # in exact arithmetic once the labelled weights underflow.
    emb = torch.tensor([[1.0, 0.0], [0.999, 0.001], [0.0, 1.0], [-1.0, 0.0], [-1.0, 0.001]], requires_grad=True)
    labels = torch.tensor([0, 1, 1, 0, 1])
    mask = torch.tensor([True, True, True, False, False])
    loss = F.graph_loss(emb, labels, mask, 0.01, 2)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(emb.grad).all()
    probs = F.propagate_labels(emb, labels, mask, 0.01, 2)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2, dtype=probs.dtype))


def test_loss_falls_when_hidden_nodes_move_towards_their_class():
    x, y = clustered(spread=0.8, seed=11)
    mask = torch.tensor(fixed_mask(y, seed=11))
    centres = np.stack([x[y == c].mean(0) for c in range(3)])
    losses = []
    for step in [0.0, 0.3, 0.6, 0.9]:
        moved = x.copy()
        hidden = ~mask.numpy()
        moved[hidden] = (1 - step) * x[hidden] + step * centres[y[hidden]]
        losses.append(float(F.graph_loss(torch.tensor(moved), torch.tensor(y), mask, 0.5, 3)))
    assert all(a > b for a, b in zip(losses, losses[1:])), losses


def test_gradient_step_lowers_the_loss():
    x, y = clustered(spread=0.8, seed=12)
    mask = torch.tensor(fixed_mask(y, seed=12))
    emb = torch.tensor(x, requires_grad=True)
    before = F.graph_loss(emb, torch.tensor(y), mask, 0.5, 3)
    before.backward()
    after = F.graph_loss(emb.detach() - 0.05 * emb.grad, torch.tensor(y), mask, 0.5, 3)
    assert float(after) < float(before)


def test_no_hidden_or_no_labelled_node_gives_a_connected_zero():
    emb = torch.randn(4, 3, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    for mask in (torch.ones(4, dtype=torch.bool), torch.zeros(4, dtype=torch.bool)):
        loss = F.graph_loss(emb, labels, mask, 0.5)
        loss.backward()
        assert float(loss) == 0.0 and emb.grad is not None


def test_bad_shapes_and_dtypes_are_refused():
    emb = torch.randn(4, 3)
    mask = torch.tensor([True, False, True, False])
    with pytest.raises(ValueError, match="integer class ids"):
        F.graph_loss(emb, torch.tensor([0.0, 1.0, 0.0, 1.0]), mask, 0.5)
    with pytest.raises(ValueError, match="one entry per embedding"):
        F.graph_loss(emb, torch.tensor([0, 1, 0]), mask, 0.5)
    with pytest.raises(ValueError, match="positive"):
        F.graph_loss(emb, torch.tensor([0, 1, 0, 1]), mask, -1.0)
    with pytest.raises(ValueError, match="normalization"):
        F.transition_matrix(torch.zeros(2, 2), "columns")


# ----------------------------------------------------------------------------- masking


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.7, 0.95])
def test_mask_keeps_a_seed_and_a_hidden_node_in_every_class(fraction):
    labels = torch.tensor([0] * 2 + [1] * 5 + [2] * 11 + [3])
    mask = stratified_labelled_mask(labels, fraction, torch.Generator().manual_seed(0))
    for c in range(3):
        members = mask[labels == c]
        assert members.any() and not members.all()
    assert mask[labels == 3].all()  # a singleton keeps its label
    counts = [int(mask[labels == c].sum()) for c in range(3)]
    sizes = [2, 5, 11]
    assert counts == [min(max(round(fraction * n), 1), n - 1) for n in sizes]


def test_mask_is_reproducible_and_random():
    labels = torch.arange(40) % 4
    a = stratified_labelled_mask(labels, 0.5, torch.Generator().manual_seed(1))
    b = stratified_labelled_mask(labels, 0.5, torch.Generator().manual_seed(1))
    c = stratified_labelled_mask(labels, 0.5, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


# ----------------------------------------------------------------------------- sigma rules


def test_sqrt_median_and_dicm_against_numpy():
    x, y = clustered(seed=13)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    d = np.sqrt(((xn[:, None] - xn[None]) ** 2).sum(-1))
    iu = np.triu_indices(len(x), 1)
    assert float(sqrt_median_sigma(torch.tensor(x))) == pytest.approx(np.sqrt(np.median(d[iu]) / 3), rel=1e-5)
    different = y[:, None] != y[None, :]
    assert float(dicm_sigma(torch.tensor(x), torch.tensor(y))) == pytest.approx(d[different].min() / 3, rel=1e-5)
    assert float(compute_sigma(0.25, torch.tensor(x))) == 0.25


def test_dicm_needs_two_classes():
    with pytest.raises(ValueError, match="two classes"):
        dicm_sigma(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), "fp16-overflow"])
def test_non_finite_embeddings_are_refused_not_turned_uniform(bad):
    x, y = clustered(seed=14)
    emb = torch.tensor(x)
    if bad == "fp16-overflow":
        emb = (emb * 1e5).half()  # 1e5 overflows float16: the realistic trigger
    else:
        emb[[2, 5], 0] = bad
    mask = torch.tensor(fixed_mask(y, seed=14))
    for fn in (F.graph_loss, F.propagate_labels):
        with pytest.raises(ValueError, match=r"of 18 embedding rows contain NaN or inf") as info:
            fn(emb, torch.tensor(y), mask, 0.5, 3)
        assert fn.__name__ in str(info.value) and "bf16" in str(info.value)
    if bad != "fp16-overflow":
        assert "2 of 18" in str(info.value)


def numpy_log_symmetric_transition(x, sigma):
    """The authors' normalisation of :func:`numpy_symmetric_transition`, in the log domain (no underflow)."""
    from scipy.special import logsumexp

    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    logits = -((x[:, None, :] - x[None, :, :]) ** 2).sum(-1) / (2 * sigma**2)
    np.fill_diagonal(logits, -np.inf)
    log_degree = logsumexp(logits, axis=1)
    log_a = logits - 0.5 * log_degree[:, None] - 0.5 * log_degree[None, :]
    log_a = log_a - logsumexp(log_a, axis=0, keepdims=True)
    return np.exp(log_a - logsumexp(log_a, axis=1, keepdims=True))


def test_symmetric_normalisation_at_small_sigma_matches_a_log_domain_reference():
    x = np.random.default_rng(15).normal(size=(32, 384))
    ours = F.transition_matrix(F.gaussian_logits(torch.tensor(x), 0.01), "symmetric").numpy()
    np.testing.assert_allclose(ours, numpy_log_symmetric_transition(x, 0.01), atol=1e-10)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("sigma", [0.01, 0.05])
def test_symmetric_normalisation_has_finite_gradients_at_small_sigma(sigma):
    # 32 x 384 random batches: at sigma 0.01 most rows' degrees underflow once exponentiated.
    silent = 0
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        emb = torch.randn(32, 384, generator=g, requires_grad=True)
        y = torch.arange(32) % 4
        mask = stratified_labelled_mask(y, 0.7, g)
        loss = F.graph_loss(emb, y, mask, sigma, 4, normalization="symmetric")
        loss.backward()
        assert torch.isfinite(loss)
        silent += not bool(torch.isfinite(emb.grad).all())
    assert silent == 0


def test_gradients_stay_finite_on_zero_and_duplicated_rows():
    emb = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [3.0, 2.0, 1.0],
                        [3.0, 2.0, 1.0]], requires_grad=True)
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    mask = torch.tensor([True, False, True, True, False, True])
    for normalization in ("row", "symmetric"):
        for sigma in (1e-6, 0.5):
            emb.grad = None
            loss = F.graph_loss(emb, y, mask, sigma, 2, normalization=normalization)
            loss.backward()
            assert torch.isfinite(loss) and torch.isfinite(emb.grad).all(), (normalization, sigma)


@pytest.mark.parametrize("sigma", [np.float32(0.5), np.float64(0.5), np.int64(1), torch.tensor(0.5), 0.5])
def test_sigma_accepts_any_real_number(sigma):
    x, y = clustered(seed=16)
    mask = torch.tensor(fixed_mask(y, seed=16))
    expected = F.graph_loss(torch.tensor(x), torch.tensor(y), mask, float(sigma), 3)
    torch.testing.assert_close(F.graph_loss(torch.tensor(x), torch.tensor(y), mask, sigma, 3), expected)


@pytest.mark.parametrize("bad", [True, "0.5", float("nan"), float("inf"), 0.0, -1.0, None])
def test_sigma_refuses_bools_strings_and_non_positive_values(bad):
    x, y = clustered(seed=16)
    with pytest.raises(ValueError, match="sigma must be a positive finite number"):
        F.graph_loss(torch.tensor(x), torch.tensor(y), torch.tensor(fixed_mask(y, seed=16)), bad, 3)


def test_integer_options_accept_numpy_integers_but_not_bools():
    x, y = clustered(seed=17)
    xt, yt, mask = torch.tensor(x), torch.tensor(y), torch.tensor(fixed_mask(y, seed=17))
    plain = F.graph_loss(xt, yt, mask, 0.5, 3, graph="knn", num_neighbors=4, propagation="iterative",
                         num_iterations=20, tol=1e-9)
    numpy_ints = F.graph_loss(xt, yt, mask, 0.5, np.int64(3), graph="knn", num_neighbors=np.int32(4),
                              propagation="iterative", num_iterations=np.int64(20), tol=np.float32(1e-9))
    torch.testing.assert_close(numpy_ints, plain)
    for kwargs in ({"num_neighbors": True, "graph": "knn"}, {"num_iterations": True}, {"num_iterations": 2.0}):
        with pytest.raises(ValueError, match="positive integer"):
            F.graph_loss(xt, yt, mask, 0.5, 3, **kwargs)


def test_huge_label_ids_without_num_classes_are_remapped_by_graph_loss():
    x, y = clustered(seed=18)
    mask = torch.tensor(fixed_mask(y, seed=18))
    ids = torch.tensor([0, 2**40, 5])[torch.tensor(y)]  # 2**40 classes would be terabytes of one-hot targets
    expected = F.graph_loss(torch.tensor(x), torch.tensor(y), mask, 0.5)
    torch.testing.assert_close(F.graph_loss(torch.tensor(x), ids, mask, 0.5), expected)


def test_propagate_labels_refuses_huge_label_ids_and_labels_beyond_num_classes():
    x, y = clustered(seed=18)
    xt, mask = torch.tensor(x), torch.tensor(fixed_mask(y, seed=18))
    with pytest.raises(ValueError, match="pass num_classes"):
        F.propagate_labels(xt, torch.tensor([0, 2**40, 5])[torch.tensor(y)], mask, 0.5)
    with pytest.raises(ValueError, match="label 2 is out of range for num_classes=2"):
        F.propagate_labels(xt, torch.tensor(y), mask, 0.5, num_classes=2)
    with pytest.raises(ValueError, match="out of range for num_classes=2"):
        F.graph_loss(xt, torch.tensor(y), mask, 0.5, num_classes=2)


def test_negative_label_ids_are_refused():
    """-1 marks a text without a label (tests/test_unlabelled.py); below it, and -1 in the mask, are errors."""
    x, y = clustered(seed=19)
    mask = fixed_mask(y, seed=19)
    y[3] = -2
    for fn in (F.graph_loss, F.propagate_labels):
        with pytest.raises(ValueError, match="label ids must be >= 0"):
            fn(torch.tensor(x), torch.tensor(y), torch.tensor(mask), 0.5, 3)
    y[3] = -1
    mask[3] = True
    for fn in (F.graph_loss, F.propagate_labels):
        with pytest.raises(ValueError, match="can only be hidden"):
            fn(torch.tensor(x), torch.tensor(y), torch.tensor(mask), 0.5, 3)


def test_mask_keeps_classes_apart_for_huge_label_ids():
    # 2**62 and 2**62 + 1 are one float64: the mask must not sort them into one class.
    labels = torch.tensor([2**62] * 4 + [2**62 + 1] * 4)
    mask = stratified_labelled_mask(labels, 0.5, torch.Generator().manual_seed(0))
    assert int(mask[:4].sum()) == 2 and int(mask[4:].sum()) == 2
    small = stratified_labelled_mask(torch.tensor([0] * 4 + [1] * 4), 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(mask, small)  # the same draw as for ids 0 and 1

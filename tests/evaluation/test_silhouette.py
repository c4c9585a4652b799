"""Silhouette against scikit-learn and a direct loop; the sampled estimate's tolerance."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import silhouette_samples, silhouette_score

from st_gloss.errors import InputError
from st_gloss.evaluation.silhouette import silhouette, silhouette_samples_against, stratified_sample


def _blobs(sizes=(40, 25, 10, 3), dim=8, spread=1.5, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim)) * 2
    labels = np.concatenate([[c] * n for c, n in enumerate(sizes)])
    points = centres[labels] + rng.normal(size=(len(labels), dim)) * spread
    return points, labels


def _direct_silhouette(points, labels, metric):
    """Textbook loop over points."""
    if metric == "cosine":
        unit = points / np.linalg.norm(points, axis=1, keepdims=True)
        dist = 1 - unit @ unit.T
    else:
        dist = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    scores = []
    for i in range(len(points)):
        own = labels == labels[i]
        if own.sum() == 1:
            scores.append(0.0)
            continue
        a = dist[i, own].sum() / (own.sum() - 1)
        b = min(dist[i, labels == c].mean() for c in np.unique(labels) if c != labels[i])
        scores.append((b - a) / max(a, b))
    return np.array(scores)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_micro_matches_sklearn_and_macro_matches_direct(metric):
    points, labels = _blobs()
    result = silhouette(points, labels, metric=metric)
    assert not result.sampled
    assert result.micro == pytest.approx(silhouette_score(points, labels, metric=metric), abs=1e-9)
    direct = _direct_silhouette(points, labels, metric)
    per_class = [direct[labels == c].mean() for c in np.unique(labels)]
    assert result.macro == pytest.approx(np.mean(per_class), abs=1e-9)
    assert result.per_class[3] == pytest.approx(per_class[3], abs=1e-9)


def test_samples_match_sklearn_with_singleton_class_and_chunks():
    points, labels = _blobs(sizes=(12, 7, 1))
    ours = silhouette_samples_against(points, labels, metric="cosine", chunk_size=5)
    np.testing.assert_allclose(ours, silhouette_samples(points, labels, metric="cosine"), atol=1e-9)
    assert ours[labels == 2] == 0.0


def test_float32_input_is_close_to_float64():
    points, labels = _blobs()
    exact = silhouette(points, labels).macro
    assert silhouette(points.astype(np.float32), labels).macro == pytest.approx(exact, abs=1e-5)


def test_sampled_estimate_within_tolerance_of_exact():
    # 3000 points in 6 overlapping classes; a 600-point sample is within 0.02 of the exact score
    # (the stated tolerance; the standard error here is about 0.005).
    points, labels = _blobs(sizes=(1200, 800, 500, 300, 150, 50), dim=16, spread=3.0, seed=2)
    exact = silhouette(points, labels, max_samples=None)
    for seed in range(3):
        sampled = silhouette(points, labels, max_samples=600, seed=seed)
        assert sampled.sampled and 600 <= sampled.n_sampled <= 606
        assert sampled.macro == pytest.approx(exact.macro, abs=0.02)
        assert sampled.micro == pytest.approx(exact.micro, abs=0.02)
        # The reported standard error is honest: the error is within 4 of them.
        assert 0 < sampled.macro_standard_error < 0.02
        assert abs(sampled.macro - exact.macro) < 4 * sampled.macro_standard_error
        assert abs(sampled.micro - exact.micro) < 4 * sampled.micro_standard_error
    assert exact.macro_standard_error == 0.0
    # Seeded: the same seed gives the same estimate.
    again = silhouette(points, labels, max_samples=600, seed=2)
    assert again.macro == sampled.macro


def test_stratified_sample_keeps_every_class():
    labels = np.array([0] * 990 + [1] * 9 + [2])
    rows = stratified_sample(labels, 100, seed=0)
    assert set(labels[rows]) == {0, 1, 2}
    assert len(rows) == len(set(rows.tolist()))


def test_bad_inputs():
    points, labels = _blobs()
    with pytest.raises(InputError, match="at least two classes"):
        silhouette(points, np.zeros(len(points), dtype=int))
    with pytest.raises(InputError, match="metric"):
        silhouette(points, labels, metric="manhattan")
    with pytest.raises(InputError, match="NaN"):
        bad = points.copy()
        bad[0, 0] = np.nan
        silhouette(bad, labels)

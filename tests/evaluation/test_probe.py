"""Linear probe against a direct scikit-learn fit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from st_gloss.errors import InputError
from st_gloss.evaluation.probe import cross_validated_probe, linear_probe


def _data(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 10)) * 2
    y = rng.integers(0, 3, 300)
    x = centres[y] + rng.normal(size=(300, 10)) * 1.5
    return x[:200], y[:200], x[200:], y[200:]


def test_matches_logistic_regression_on_normalised_embeddings():
    train, y_train, test, y_test = _data()
    result = linear_probe(train, y_train, test, y_test, seed=0)
    unit = lambda a: (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    expected = LogisticRegression(max_iter=1000, random_state=0).fit(unit(train), y_train).predict(unit(test))
    np.testing.assert_array_equal(result.predictions, expected)
    assert result.accuracy == pytest.approx(np.mean(expected == y_test))
    assert result.accuracy > 0.8 and result.to_dict()["protocol"] == "train/test"


def test_cross_validated_probe_scores_every_row_once():
    train, y_train, _, _ = _data(1)
    result = cross_validated_probe(train, y_train, folds=4)
    assert result.predictions.shape == y_train.shape and result.protocol == "4-fold cross-validation"
    assert result.accuracy > 0.8


def test_single_class_is_refused():
    train, y_train, test, y_test = _data()
    with pytest.raises(InputError, match="at least two classes"):
        linear_probe(train, np.zeros_like(y_train), test, y_test)
    with pytest.raises(InputError, match="at least 2 examples of every class"):
        cross_validated_probe(train[:3], np.array([0, 1, 1]))

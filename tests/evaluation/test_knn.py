"""kNN classification against scikit-learn and against a naive loop."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from st_gloss.errors import InputError
from st_gloss.evaluation.knn import knn_classify, knn_search, normalize_embeddings, vote


def _random(n_index=300, n_query=120, dim=16, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n_index, dim)), rng.integers(0, classes, n_index),
            rng.normal(size=(n_query, dim)), rng.integers(0, classes, n_query))


def _clustered(n_per_class=60, classes=5, dim=12, seed=1):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)) * 3
    labels = np.repeat(np.arange(classes), n_per_class)
    points = centres[labels] + rng.normal(size=(len(labels), dim))
    order = rng.permutation(len(labels))
    return points[order], labels[order]


def _sklearn(index, index_labels, queries, k):
    model = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute")
    model.fit(index, index_labels)
    return model


def _naive_vote(labels_row, sims_row, weighting):
    """Loop-based vote: highest total, ties to the class seen first (nearest)."""
    totals: dict[int, float] = {}
    for label, sim in zip(labels_row, sims_row):
        totals[int(label)] = totals.get(int(label), 0.0) + (1.0 if weighting == "majority" else float(sim))
    best = max(totals.values())
    for label in labels_row:  # nearest first
        if totals[int(label)] == best:
            return int(label)


@pytest.mark.parametrize("k", [1, 5, 9])
def test_matches_sklearn_on_random_binary_data(k):
    # Two classes and odd k: no vote can tie, so every prediction must agree with sklearn.
    index, index_labels, queries, query_labels = _random(classes=2)
    ours = knn_classify(index, index_labels, queries, query_labels, k=k)
    theirs = _sklearn(index, index_labels, queries, k).predict(queries)
    np.testing.assert_array_equal(ours.predictions, theirs)
    assert ours.accuracy == pytest.approx(np.mean(theirs == query_labels))


def test_matches_sklearn_on_clustered_data_with_chunks():
    points, labels = _clustered()
    index, index_labels, queries, query_labels = points[:200], labels[:200], points[200:], labels[200:]
    ours = knn_classify(index, index_labels, queries, query_labels, k=10, chunk_size=7)
    model = _sklearn(index, index_labels, queries, 10)
    np.testing.assert_array_equal(ours.predictions, model.predict(queries))
    # Same neighbours in the same order.
    np.testing.assert_array_equal(ours.neighbor_indices, model.kneighbors(queries, return_distance=False))
    assert ours.accuracy > 0.9


def test_multiclass_random_agrees_with_sklearn_except_ties():
    index, index_labels, queries, query_labels = _random(classes=4, n_query=300, seed=3)
    k = 10
    ours = knn_classify(index, index_labels, queries, query_labels, k=k)
    model = _sklearn(index, index_labels, queries, k)
    theirs = model.predict(queries)
    neighbours = model.kneighbors(queries, return_distance=False)
    np.testing.assert_array_equal(ours.neighbor_indices, neighbours)
    counts = np.stack([np.bincount(row, minlength=4) for row in index_labels[neighbours]])
    tie = (counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1
    assert tie.any() and (~tie).any()
    np.testing.assert_array_equal(ours.predictions[~tie], theirs[~tie])
    # On ties, the class of the nearest tied neighbour wins (sklearn picks the lowest id).
    for row in np.flatnonzero(tie):
        expected = _naive_vote(index_labels[neighbours[row]], ours.neighbor_similarities[row], "majority")
        assert ours.predictions[row] == expected


def test_similarity_weighting_matches_naive_loop():
    index, index_labels, queries, query_labels = _random(classes=3, seed=5)
    ours = knn_classify(index, index_labels, queries, query_labels, k=7, weighting="similarity")
    a, b = normalize_embeddings(queries), normalize_embeddings(index)
    sims = a @ b.T
    for row in range(len(queries)):
        nearest = np.argsort(-sims[row], kind="stable")[:7]
        expected = _naive_vote(index_labels[nearest], sims[row, nearest], "similarity")
        assert ours.predictions[row] == expected


def test_leave_one_out_matches_sklearn_on_train_without_self():
    points, labels = _clustered(n_per_class=30, classes=3)
    ours = knn_classify(points, labels, points, labels, k=5, leave_one_out=True, chunk_size=16)
    assert not np.any(ours.neighbor_indices == np.arange(len(points))[:, None])
    model = _sklearn(points, labels, points, 6)
    neighbours = model.kneighbors(points, return_distance=False)
    expected = np.stack([row[row != i][:5] for i, row in enumerate(neighbours)])
    np.testing.assert_array_equal(ours.neighbor_indices, expected)


def test_leave_one_out_with_exact_duplicates_never_returns_self():
    points = np.array([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 4)
    labels = np.array([0] * 4 + [1] * 4)
    result = knn_classify(points, labels, points, labels, k=3, leave_one_out=True)
    assert not np.any(result.neighbor_indices == np.arange(8)[:, None])
    assert result.accuracy == 1.0


def test_vote_tie_break_is_nearest_class_not_lowest_id():
    labels = np.array([[2, 0, 0, 2]])
    sims = np.array([[0.9, 0.8, 0.7, 0.6]])
    assert vote(labels, sims, 3, "majority")[0] == 2
    assert vote(labels[:, ::-1], sims, 3, "majority")[0] == 2  # 2 is still nearest


def test_per_class_table_and_macro_f1():
    from sklearn.metrics import f1_score

    index, index_labels, queries, query_labels = _random(classes=3, seed=7)
    result = knn_classify(index, index_labels, queries, query_labels, k=5, label_names=["a", "b", "c"])
    assert [c.name for c in result.per_class] == ["a", "b", "c"]
    assert sum(c.support for c in result.per_class) == len(queries)
    assert result.macro_f1 == pytest.approx(f1_score(query_labels, result.predictions, average="macro"))
    assert result.to_dict()["per_class"][0]["name"] == "a"


def test_torch_inputs_and_no_query_labels():
    torch = pytest.importorskip("torch")
    index, index_labels, queries, _ = _random()
    result = knn_classify(torch.tensor(index), torch.tensor(index_labels), torch.tensor(queries), k=3)
    assert result.accuracy is None and result.per_class == []
    assert result.predictions.shape == (len(queries),)


def test_bad_inputs():
    index, index_labels, queries, query_labels = _random(n_index=5)
    with pytest.raises(InputError, match="choose 1 <= k <= 5"):
        knn_classify(index, index_labels, queries, k=6)
    with pytest.raises(InputError, match="leave_one_out"):
        knn_search(index, queries, 2, leave_one_out=True)
    with pytest.raises(InputError, match="dimension"):
        knn_search(index, queries[:, :3], 2)
    with pytest.raises(InputError, match="weighting"):
        knn_classify(index, index_labels, queries, weighting="distance")
    with pytest.raises(InputError, match="integer label ids"):
        knn_classify(index, index_labels + 0.5, queries)

"""TextClassifier and its heads, against independent computations (numpy, scikit-learn, functional)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from tiny_model import simple_corpus

from st_gloss import functional
from st_gloss.classifier import TextClassifier
from st_gloss.classifier.heads import KNNHead, LinearHead, LogisticHead, PropagationHead
from st_gloss.classifier.propagation import (
    class_mass_normalization,
    reference_propagation,
    reference_sigma,
    transductive_propagation,
)
from st_gloss.errors import InputError


def _blobs(n_per_class=20, classes=3, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)) * 3
    labels = np.repeat(np.arange(classes), n_per_class)
    return (centres[labels] + rng.normal(size=(len(labels), dim))).astype(np.float32), labels


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ----------------------------------------------------------------------------------- heads on arrays
@pytest.mark.parametrize("classes", [2, 4])
def test_logistic_head_equals_scikit_learn(classes):
    from sklearn.linear_model import LogisticRegression

    x, y = _blobs(classes=classes)
    queries = _blobs(n_per_class=5, classes=classes, seed=1)[0]
    head = LogisticHead(c=0.5).fit(x, y, classes)
    reference = LogisticRegression(C=0.5, max_iter=1000, random_state=0).fit(_unit(x), y)
    np.testing.assert_allclose(head.predict_proba(queries), reference.predict_proba(_unit(queries)), atol=1e-6)
    np.testing.assert_array_equal(head.predict(queries), reference.predict(_unit(queries)))


def test_logistic_head_with_a_class_absent_from_fit_gives_it_zero():
    x, y = _blobs(classes=2)
    proba = LogisticHead().fit(x, y, num_classes=3).predict_proba(x[:4])
    assert proba.shape == (4, 3) and np.all(proba[:, 2] == 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def _numpy_kernel_average(ref, ref_labels, queries, sigma, classes, k=None):
    ref, queries = _unit(ref.astype(np.float64)), _unit(queries.astype(np.float64))
    out = np.zeros((len(queries), classes))
    for i, q in enumerate(queries):
        d2 = ((ref - q) ** 2).sum(axis=1)
        keep = np.argsort(d2)[:k] if k else np.arange(len(ref))
        w = np.exp(-d2[keep] / (2 * sigma**2))
        for j, weight in zip(keep, w):
            out[i, ref_labels[j]] += weight
        out[i] /= w.sum()
    return out


def test_reference_propagation_is_the_harmonic_solution_of_one_hidden_node():
    x, y = _blobs(n_per_class=6)
    query = _blobs(n_per_class=1, seed=3)[0][:1]
    sigma = 0.7
    mine = reference_propagation(x, y, query, sigma, 3)
    graph = torch.as_tensor(np.concatenate([x, query]), dtype=torch.float64)
    mask = torch.tensor([True] * len(x) + [False])
    transition = functional.transition_matrix(functional.gaussian_logits(graph, sigma))
    targets = torch.nn.functional.one_hot(torch.as_tensor(y), 3).double()
    expected = functional.harmonic_solution(transition, mask, targets).numpy()
    np.testing.assert_allclose(mine, expected, atol=1e-10)
    np.testing.assert_allclose(mine, _numpy_kernel_average(x, y, query, sigma, 3), atol=1e-10)


@pytest.mark.parametrize("num_neighbors", ["dense", 5])
def test_propagation_head_equals_numpy_kernel_average(num_neighbors):
    x, y = _blobs()
    queries = _blobs(n_per_class=4, seed=2)[0]
    head = PropagationHead(num_neighbors=num_neighbors).fit(x, y, 3)
    # sigma by the paper's rule on the (normalised) reference set, recomputed in numpy
    d = np.sqrt(((_unit(x.astype(np.float64))[:, None] - _unit(x.astype(np.float64))[None]) ** 2).sum(-1))
    sigma = np.sqrt(np.median(d[np.triu_indices(len(x), 1)]) / 3)
    assert head.sigma_value == pytest.approx(sigma, rel=1e-5)
    k = None if num_neighbors == "dense" else num_neighbors
    np.testing.assert_allclose(head.predict_proba(queries),
                               _numpy_kernel_average(x, y, queries, head.sigma_value, 3, k), atol=1e-8)


def test_transductive_propagation_and_class_mass_normalisation():
    x, y = _blobs(n_per_class=5)
    queries = _blobs(n_per_class=3, seed=4)[0]
    f = transductive_propagation(x, y, queries, 0.5, 3)
    graph = torch.as_tensor(np.concatenate([x, queries]), dtype=torch.float64)
    mask = torch.tensor([True] * len(x) + [False] * len(queries))
    labels = torch.cat([torch.as_tensor(y), torch.zeros(len(queries), dtype=torch.long)])
    np.testing.assert_allclose(f, functional.propagate_labels(graph, labels, mask, 0.5, 3).numpy(), atol=1e-12)
    prior = np.array([0.2, 0.3, 0.5])
    normalised = class_mass_normalization(f, prior)
    expected = f * prior / f.sum(axis=0)
    np.testing.assert_allclose(normalised, expected / expected.sum(axis=1, keepdims=True))
    assert reference_sigma(x, 0.25) == 0.25


def test_knn_head_matches_knn_classify():
    from st_gloss.evaluation.knn import knn_classify

    x, y = _blobs()
    queries = _blobs(n_per_class=4, seed=5)[0]
    head = KNNHead(k=5).fit(x, y, 3)
    np.testing.assert_array_equal(head.predict(queries), knn_classify(x, y, queries, k=5).predictions)
    proba = head.predict_proba(queries)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(np.unique(proba * 5).round(6)) <= {0, 1, 2, 3, 4, 5}


def test_linear_head_fit_is_seeded_and_learns():
    x, y = _blobs()
    first = LinearHead(seed=1).fit(x, y, 3)
    again = LinearHead(seed=1).fit(x, y, 3)
    np.testing.assert_array_equal(first.weight, again.weight)
    assert (first.predict(x) == y).mean() > 0.95


def test_nan_embeddings_are_refused():
    x, y = _blobs()
    x[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN or infinite"):
        LogisticHead().fit(x, y, 3)
    fitted = LogisticHead().fit(_blobs()[0], y, 3)
    with pytest.raises(InputError, match="row 3"):
        fitted.predict_proba(x)


# ----------------------------------------------------------------------------------- TextClassifier
@pytest.fixture(scope="module")
def corpus():
    return simple_corpus(n_per_class=6)


@pytest.fixture(scope="module")
def model(tiny_model_path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_model_path), device="cpu")


def test_logistic_classifier_equals_scikit_learn_on_the_same_embeddings(model, corpus):
    from sklearn.linear_model import LogisticRegression

    texts, ids = corpus
    names = [["film", "finance", "sport"][i] for i in ids]
    classifier = TextClassifier(model, head="logistic").fit(texts, names)
    assert classifier.labels == ["film", "finance", "sport"]
    embeddings = model.encode(texts, normalize_embeddings=True)
    reference = LogisticRegression(max_iter=1000, random_state=0).fit(embeddings, ids)
    proba = classifier.predict_proba(texts)
    np.testing.assert_allclose(proba, reference.predict_proba(embeddings), atol=1e-5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert classifier.predict(texts[:3]) == [classifier.labels[i] for i in reference.predict(embeddings[:3])]


def test_integer_labels_come_back_as_integers(model, corpus):
    texts, ids = corpus
    labels = [10 * i + 5 for i in ids]  # 5, 15, 25: sorted numerically
    classifier = TextClassifier(model, head="knn", k=3).fit(texts, labels)
    assert classifier.labels == [5, 15, 25]
    predictions = classifier.predict(texts)
    assert all(isinstance(p, int) for p in predictions) and set(predictions) <= {5, 15, 25}


@pytest.mark.parametrize("kind", ["logistic", "linear", "propagation", "knn"])
def test_save_and_load_round_trip(model, corpus, tmp_path, kind):
    from sentence_transformers import SentenceTransformer

    texts, ids = corpus
    classifier = TextClassifier(model, head=kind).fit(texts, [f"c{i}" for i in ids])
    before = classifier.predict_proba(texts)
    np.testing.assert_allclose(before.sum(axis=1), 1.0)
    classifier.save_pretrained(tmp_path / "clf")
    loaded = TextClassifier.from_pretrained(tmp_path / "clf")
    np.testing.assert_array_equal(loaded.predict_proba(texts), before)
    assert loaded.labels == classifier.labels and loaded.head.kind == kind
    assert not list((tmp_path / "clf").rglob("*.pkl"))
    plain = SentenceTransformer(str(tmp_path / "clf"), device="cpu")
    np.testing.assert_allclose(plain.encode(texts[:2]), model.encode(texts[:2]), atol=1e-6)
    config = json.loads((tmp_path / "clf" / "st_gloss_head.json").read_text())
    assert config["heads"][kind]["kind"] == kind and config["versions"]["torch"]


def test_several_heads_in_one_folder(model, corpus, tmp_path):
    texts, ids = corpus
    classifier = TextClassifier(model, head="linear")
    classifier.add_head("propagation", default=False)
    classifier.add_head("logistic", default=False)
    classifier.fit(texts, ids)
    classifier.fit(texts, ids, head="propagation")
    classifier.fit(texts, ids, head="logistic")
    classifier.save_pretrained(tmp_path / "multi")
    config = json.loads((tmp_path / "multi" / "st_gloss_head.json").read_text())
    assert set(config["heads"]) == {"linear", "propagation", "logistic"} and config["default_head"] == "linear"
    chosen = TextClassifier.from_pretrained(tmp_path / "multi", head="propagation")
    assert chosen.head.kind == "propagation"
    np.testing.assert_array_equal(chosen.predict_proba(texts), classifier.predict_proba(texts, head="propagation"))
    with pytest.raises(InputError, match="has no head 'svm'; it has: linear, propagation, logistic"):
        TextClassifier.from_pretrained(tmp_path / "multi", head="svm")


def test_from_loss_uses_the_trained_linear_head(model, corpus):
    from st_gloss.losses import GraphGuidedLoss

    texts, _ = corpus
    loss = GraphGuidedLoss(model, num_labels=3)
    classifier = TextClassifier.from_loss(model, loss, labels=["a", "b", "c"])
    with torch.no_grad():
        expected = torch.softmax(loss.classifier(model.encode(texts, convert_to_tensor=True)), dim=1).numpy()
    np.testing.assert_allclose(classifier.predict_proba(texts), expected, atol=1e-5)
    with pytest.raises(InputError, match="has no linear head"):
        TextClassifier.from_loss(model, GraphGuidedLoss(model), labels=["a", "b"])
    with pytest.raises(InputError, match="3 classes but 2 labels"):
        TextClassifier.from_loss(model, loss, labels=["a", "b"])


def test_bad_inputs_get_clear_messages(model, corpus, tmp_path):
    texts, ids = corpus
    with pytest.raises(InputError, match="texts is empty"):
        TextClassifier(model).fit([], [])
    with pytest.raises(InputError, match="at least two classes"):
        TextClassifier(model).fit(texts[:3], ["x", "x", "x"])
    with pytest.raises(InputError, match="got 18 texts but 17 labels"):
        TextClassifier(model).fit(texts, ids[:-1])
    with pytest.raises(InputError, match="not fitted; call fit"):
        TextClassifier(model).predict(texts)
    with pytest.raises(InputError, match="unknown head 'svm'"):
        TextClassifier(model, head="svm")
    classifier = TextClassifier(model).fit(texts, ids)
    with pytest.raises(InputError, match="texts is empty"):
        classifier.predict([])
    with pytest.raises(InputError, match="not among the classifier's labels"):
        classifier.fit(texts, [i + 1 for i in ids])
    model.save(str(tmp_path / "plain"))
    with pytest.raises(InputError, match=r"plain.* holds no st-gloss classifier head .*save_pretrained"):
        TextClassifier.from_pretrained(tmp_path / "plain")


def test_nan_embeddings_from_the_model_are_refused(model, corpus, monkeypatch):
    texts, ids = corpus
    classifier = TextClassifier(model).fit(texts, ids)
    real = model.encode

    def broken(*args, **kwargs):
        out = real(*args, **kwargs)
        out[0, 0] = np.nan
        return out

    monkeypatch.setattr(model, "encode", broken)
    with pytest.raises(InputError, match="NaN or infinite"):
        classifier.predict(texts)


def test_importing_the_classifier_does_not_import_click_mteb_or_matplotlib():
    code = ("import sys, st_gloss.classifier as c; c.TextClassifier; import st_gloss.classifier.serialization; "
            "print([m for m in ('click', 'mteb', 'matplotlib', 'faiss') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_propagation_head_balances_class_mass_against_a_skewed_reference_set():
    """90 references of class 0 spread wide, 10 of class 1 in a tight cluster: the plain kernel
    average gives class 0 most of the mass everywhere; dividing by the class shares recovers class 1."""
    from st_gloss.classifier.heads import PropagationHead

    rng = np.random.default_rng(0)
    major = rng.normal(size=(90, 8))
    minor = np.array([3.0] + [0.0] * 7) + 0.3 * rng.normal(size=(10, 8))
    reference = np.vstack([major, minor])
    labels = np.array([0] * 90 + [1] * 10)
    queries = np.array([3.0] + [0.0] * 7) + 0.3 * rng.normal(size=(20, 8))  # all class 1
    plain = PropagationHead(num_neighbors="dense", class_balance=False, sigma=1.0).fit(reference, labels, 2)
    balanced = PropagationHead(num_neighbors="dense", sigma=1.0).fit(reference, labels, 2)
    mass = plain.predict_proba(queries)
    expected = mass / np.array([0.9, 0.1])
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(balanced.predict_proba(queries), expected, atol=1e-12)
    assert (balanced.predict(queries) == 1).mean() > (plain.predict(queries) == 1).mean()
    assert PropagationHead().options()["class_balance"] is True

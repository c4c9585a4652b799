"""SetFit interop on the tiny model: folders SetFit loads, heads moved both ways, G-Loss in SetFit's Trainer."""

from __future__ import annotations

import numpy as np
import pytest

setfit = pytest.importorskip("setfit")

from tiny_model import simple_corpus  # noqa: E402

from st_gloss.classifier import TextClassifier  # noqa: E402

CLASSES = ["film", "finance", "sport"]


@pytest.fixture()
def corpus():
    texts, ids = simple_corpus(n_per_class=8)
    return texts, [CLASSES[i] for i in ids]


def test_a_saved_classifier_loads_as_a_setfit_model(tiny_model, corpus, tmp_path):
    texts, names = corpus
    classifier = TextClassifier(tiny_model, head="logistic").fit(texts, names)
    classifier.save_pretrained(tmp_path / "clf")
    loaded = setfit.SetFitModel.from_pretrained(str(tmp_path / "clf"))
    assert loaded.labels == CLASSES and loaded.normalize_embeddings is True
    np.testing.assert_allclose(loaded.encode(texts[:3]), tiny_model.encode(texts[:3], normalize_embeddings=True),
                               atol=1e-6)
    # SetFit's head file is a pickle: never written, so SetFit starts from a fresh head.
    assert not list((tmp_path / "clf").rglob("*.pkl"))
    assert not hasattr(loaded.model_head, "coef_")


def test_heads_move_between_setfit_and_st_gloss(tiny_model, corpus, tmp_path):
    from st_gloss.integrations.setfit import from_setfit_model, to_setfit_model

    texts, names = corpus
    classifier = TextClassifier(tiny_model, head="logistic").fit(texts, names)
    setfit_model = to_setfit_model(classifier)
    np.testing.assert_allclose(setfit_model.predict_proba(texts, as_numpy=True), classifier.predict_proba(texts),
                               atol=1e-6)
    assert list(setfit_model.predict(texts)) == classifier.predict(texts)
    back = from_setfit_model(setfit_model)
    assert back.labels == CLASSES
    np.testing.assert_allclose(back.predict_proba(texts), classifier.predict_proba(texts), atol=1e-6)


def test_setfit_trainer_trains_the_body_with_graph_guided_loss(tiny_model, corpus, monkeypatch, tmp_path):
    from datasets import Dataset

    from st_gloss.integrations.setfit import GraphGuidedTrainer, from_setfit_model
    from st_gloss.losses import GraphGuidedLoss
    from st_gloss.samplers import ClassBalancedBatchSampler

    texts, names = corpus
    batches = []
    original = ClassBalancedBatchSampler.__iter__

    def spy(self):
        for batch in original(self):
            batches.append(batch)
            yield batch

    monkeypatch.setattr(ClassBalancedBatchSampler, "__iter__", spy)
    model = setfit.SetFitModel(model_body=tiny_model, model_head=None, labels=None)
    from sklearn.linear_model import LogisticRegression

    model.model_head = LogisticRegression()
    before = [p.detach().clone() for p in tiny_model.parameters()]
    # SetFit's output_dir defaults to ./checkpoints: keep the repository clean
    args = setfit.TrainingArguments(output_dir=str(tmp_path), batch_size=12, num_epochs=1, report_to="none", seed=0)

    def accuracy(predicted, true):  # SetFit's default metric is fetched from the hub
        return {"accuracy": float(np.mean(np.asarray(predicted) == np.asarray(true)))}

    trainer = GraphGuidedTrainer(model=model, args=args, metric=accuracy,
                                 train_dataset=Dataset.from_dict({"text": texts, "label": names}))
    trainer.train()
    assert isinstance(trainer.body_loss, GraphGuidedLoss) and trainer.class_names == CLASSES
    assert batches and all(len(set(np.array(trainer_ids(texts, names, trainer))[b])) >= 2 for b in batches)
    assert any(not np.allclose(a, b.detach()) for a, b in zip(before, tiny_model.parameters()))
    predictions = model.predict(texts)
    assert set(predictions) <= set(CLASSES) and len(predictions) == len(texts)
    score = trainer.evaluate(Dataset.from_dict({"text": texts, "label": names}))["accuracy"]
    assert score == pytest.approx(np.mean(np.asarray(predictions) == np.asarray(names)))
    classifier = from_setfit_model(model)
    assert classifier.predict(texts) == list(predictions)


def trainer_ids(texts, names, trainer):
    return [trainer.class_names.index(name) for name in names]


def test_multilabel_data_is_refused(tiny_model, corpus, tmp_path):
    from datasets import Dataset

    from st_gloss.errors import InputError
    from st_gloss.integrations.setfit import GraphGuidedTrainer

    texts, _ = corpus
    model = setfit.SetFitModel(model_body=tiny_model, model_head=None)
    trainer = GraphGuidedTrainer(model=model, args=setfit.TrainingArguments(output_dir=str(tmp_path), report_to="none"),
                                 train_dataset=Dataset.from_dict({"text": texts, "label": [[1, 0]] * len(texts)}))
    with pytest.raises(InputError, match="multi-label"):
        trainer.train_embeddings(texts, [[1, 0]] * len(texts))

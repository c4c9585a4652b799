"""The evaluators against the metric functions, inside model.fit and the trainer."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score
from tiny_model import simple_corpus

from st_gloss.errors import InputError
from st_gloss.evaluation.evaluators import KNNEvaluator, SilhouetteEvaluator
from st_gloss.evaluation.knn import knn_classify
from st_gloss.evaluation.silhouette import silhouette


def reference_knn(index, index_labels, queries, query_labels, k, leave_one_out=False):
    """Loop-based kNN on cosine similarity, written independently of st_gloss: (predictions, accuracy).

    Majority vote of the ``k`` most similar index rows (the query itself left out in leave-one-out);
    a tie goes to the tied class whose member ranks nearest.
    """
    index = np.asarray(index, dtype=np.float64)
    index /= np.linalg.norm(index, axis=1, keepdims=True)
    queries = np.asarray(queries, dtype=np.float64)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    predictions = []
    for i, query in enumerate(queries):
        candidates = [j for j in range(len(index)) if not (leave_one_out and j == i)]
        nearest = sorted(candidates, key=lambda j: -float(index[j] @ query))[:k]
        ranked = [index_labels[j] for j in nearest]
        counts = {label: ranked.count(label) for label in ranked}
        top = max(counts.values())
        predictions.append(next(label for label in ranked if counts[label] == top))
    predictions = np.array(predictions)
    return predictions, float(np.mean(predictions == np.asarray(query_labels)))


def _split():
    texts, labels = simple_corpus(n_per_class=10, seed=0)
    val_texts, val_labels = simple_corpus(n_per_class=4, seed=1)
    return texts, labels, val_texts, val_labels


def test_knn_evaluator_equals_knn_classify_on_the_embeddings(tiny_model, tmp_path):
    texts, labels, val_texts, val_labels = _split()
    names = ["film", "finance", "sport"]
    evaluator = KNNEvaluator(texts, [names[y] for y in labels], val_texts,
                             [names[y] for y in val_labels], k=5, name="val_knn")
    metrics = evaluator(tiny_model, output_path=str(tmp_path), epoch=1, steps=3)
    assert set(metrics) == {"val_knn_accuracy", "val_knn_macro_f1"}
    assert evaluator.primary_metric == "val_knn_accuracy" and evaluator.greater_is_better
    index = tiny_model.encode(texts, normalize_embeddings=True)
    queries = tiny_model.encode(val_texts, normalize_embeddings=True)
    # String labels are sorted, so ids match the integer labels here.
    expected = knn_classify(index, labels, queries, val_labels, k=5)
    assert metrics["val_knn_accuracy"] == pytest.approx(expected.accuracy)
    predictions, accuracy = reference_knn(index, labels, queries, val_labels, k=5)
    assert metrics["val_knn_accuracy"] == pytest.approx(accuracy)
    assert metrics["val_knn_macro_f1"] == pytest.approx(f1_score(val_labels, predictions, average="macro"))
    assert (tmp_path / "val_knn_results.csv").read_text().startswith("epoch,steps,accuracy,macro_f1")


def test_knn_evaluator_leave_one_out_and_bad_labels(tiny_model):
    texts, labels, val_texts, _ = _split()
    # Labels drawn at random: the topics would give 1.0 whether or not each text votes for itself.
    noisy = np.random.default_rng(0).integers(0, 3, len(texts)).tolist()
    metrics = KNNEvaluator(texts, noisy, k=3)(tiny_model)
    embeddings = tiny_model.encode(texts, normalize_embeddings=True)
    _, accuracy = reference_knn(embeddings, noisy, embeddings, noisy, k=3, leave_one_out=True)
    assert metrics["knn_accuracy"] == pytest.approx(accuracy)
    # A text found as its own neighbour would raise the score: the check tells the two apart.
    _, with_itself = reference_knn(embeddings, noisy, embeddings, noisy, k=3)
    assert with_itself > accuracy + 0.1, (with_itself, accuracy)
    with pytest.raises(InputError, match="do not occur in the index labels"):
        KNNEvaluator(texts, labels, val_texts, [7] * len(val_texts))


def test_silhouette_evaluator_equals_silhouette(tiny_model):
    _, _, val_texts, val_labels = _split()
    metrics = SilhouetteEvaluator(val_texts, val_labels)(tiny_model)
    expected = silhouette(tiny_model.encode(val_texts, normalize_embeddings=True), np.array(val_labels))
    assert metrics["silhouette_macro"] == pytest.approx(expected.macro, abs=1e-6)
    assert metrics["silhouette_micro"] == pytest.approx(expected.micro, abs=1e-6)


def _triplet_loss(model):
    try:
        from sentence_transformers.sentence_transformer.losses import BatchAllTripletLoss
    except ImportError:  # sentence-transformers < 5.4
        from sentence_transformers.losses import BatchAllTripletLoss
    return BatchAllTripletLoss(model)


def test_evaluator_inside_model_fit(tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # model.fit writes ./checkpoints/model: keep the repository clean
    import torch
    from sentence_transformers import InputExample
    from torch.utils.data import DataLoader

    texts, labels, val_texts, val_labels = _split()
    calls = []

    class Recording(KNNEvaluator):
        def __call__(self, model, output_path=None, epoch=-1, steps=-1):
            metrics = super().__call__(model, output_path, epoch, steps)
            calls.append(metrics)
            return metrics

    evaluator = Recording(texts, labels, val_texts, val_labels, k=5)
    examples = [InputExample(texts=[t], label=y) for t, y in zip(texts, labels)]
    loader = DataLoader(examples, batch_size=15, shuffle=True, generator=torch.Generator().manual_seed(0))
    tiny_model.fit(train_objectives=[(loader, _triplet_loss(tiny_model))], evaluator=evaluator,
                   epochs=2, optimizer_params={"lr": 3e-3}, show_progress_bar=False,
                   output_path=str(tmp_path / "fit"))
    # The trainer behind fit() prefixes the keys with "eval_" in place.
    assert calls and all(any(key.endswith("knn_accuracy") for key in m) for m in calls)


def test_the_trainer_logs_the_knn_accuracy_of_each_epochs_model(tiny_model, tmp_path):
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    texts, labels, val_texts, val_labels = _split()
    knn = KNNEvaluator(texts, labels, val_texts, val_labels, k=5)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "checkpoints"), num_train_epochs=2, per_device_train_batch_size=15,
        learning_rate=3e-3, eval_strategy="epoch", save_strategy="epoch", report_to=[], seed=0,
        use_cpu=True,
    )
    trainer = SentenceTransformerTrainer(
        model=tiny_model, args=args, loss=_triplet_loss(tiny_model), evaluator=knn,
        train_dataset=Dataset.from_dict({"text": texts, "label": labels}),
    )
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "eval_knn_accuracy" in entry]
    assert [entry["epoch"] for entry in logged] == [1.0, 2.0]
    # Each logged figure is the kNN accuracy of the model saved at that step, recomputed here.
    for entry in logged:
        saved = SentenceTransformer(str(tmp_path / "checkpoints" / f"checkpoint-{entry['step']}"), device="cpu")
        saved.max_seq_length = tiny_model.max_seq_length
        _, accuracy = reference_knn(saved.encode(texts, normalize_embeddings=True), labels,
                                    saved.encode(val_texts, normalize_embeddings=True), val_labels, k=5)
        assert entry["eval_knn_accuracy"] == pytest.approx(accuracy), entry

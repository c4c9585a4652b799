"""End to end: GraphGuidedLoss through model.fit and SentenceTransformerTrainer."""

from __future__ import annotations

import torch
from datasets import Dataset
from sentence_transformers import InputExample, SentenceTransformer
from tiny_model import simple_corpus
from torch.utils.data import DataLoader

from st_gloss import ClassBalancedBatchSampler, GraphGuidedLoss
from st_gloss import functional as F
from st_gloss.masking import stratified_labelled_mask


def mean_graph_loss(model, texts, labels, seeds=range(5)):
    """The G-Loss of the whole set, averaged over a few fixed masks: a training-free yardstick."""
    with torch.no_grad():
        emb = model.encode(texts, convert_to_tensor=True)
    y = torch.tensor(labels)
    values = [
        F.graph_loss(emb, y, stratified_labelled_mask(y, 0.5, torch.Generator().manual_seed(s)), 0.3, 3) for s in seeds
    ]
    return float(torch.stack(values).mean())


def test_model_fit_with_input_examples_lowers_the_graph_loss(tiny_model):
    texts, labels = simple_corpus(n_per_class=10)
    before = mean_graph_loss(tiny_model, texts, labels)
    examples = [InputExample(texts=[t], label=y) for t, y in zip(texts, labels)]
    loader = DataLoader(examples, batch_size=10, shuffle=True, generator=torch.Generator().manual_seed(0))
    loss = GraphGuidedLoss(tiny_model, labelled_fraction=0.5, sigma=0.3, seed=0)
    tiny_model.fit(
        train_objectives=[(loader, loss)],
        epochs=6,
        warmup_steps=0,
        optimizer_params={"lr": 1e-3},
        show_progress_bar=False,
    )
    after = mean_graph_loss(tiny_model, texts, labels)
    assert after < 0.8 * before, (before, after)


def test_trainer_with_sampler_logs_both_parts_and_writes_the_model_card(tiny_model, tmp_path):
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    texts, labels = simple_corpus(n_per_class=12)
    dataset = Dataset.from_dict({"text": texts, "label": labels})
    before = mean_graph_loss(tiny_model, texts, labels)
    loss = GraphGuidedLoss(tiny_model, sigma=0.3, num_labels=3, graph_weight=0.8)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "checkpoints"),
        num_train_epochs=6,
        per_device_train_batch_size=12,
        learning_rate=1e-3,
        warmup_steps=0,
        batch_sampler=ClassBalancedBatchSampler,
        logging_steps=3,
        save_strategy="no",
        report_to=[],
        seed=1,
        use_cpu=True,
    )
    trainer = SentenceTransformerTrainer(model=tiny_model, args=args, train_dataset=dataset, loss=loss)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "graph" in entry]
    assert logged and all("ce" in entry for entry in logged)
    assert logged[-1]["graph"] < logged[0]["graph"]
    assert mean_graph_loss(tiny_model, texts, labels) < before

    out = tmp_path / "model"
    tiny_model.save(str(out))
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "GraphGuidedLoss" in card and "2604.25853" in card and "labelled_fraction" in card
    assert list(out.glob("**/*.safetensors")) and not list(out.glob("**/*.bin"))
    reloaded = SentenceTransformer(str(out), device="cpu")
    torch.testing.assert_close(
        reloaded.encode(texts[:3], convert_to_tensor=True), tiny_model.encode(texts[:3], convert_to_tensor=True)
    )

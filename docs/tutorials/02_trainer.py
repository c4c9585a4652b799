"""Tutorial 2: SentenceTransformerTrainer, ClassBalancedBatchSampler and a kNN evaluator.

Run from the repository root: ``python docs/tutorials/02_trainer.py``.
"""

import csv

from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

from st_gloss.evaluation.evaluators import KNNEvaluator
from st_gloss.evaluation.models import load_model
from st_gloss import ClassBalancedBatchSampler, GraphGuidedLoss
from st_gloss.evaluation.samples import sample_path

N_TRAIN, N_VAL = 300, 200


def read_split(split: str, n: int) -> tuple[list[str], list[str]]:
    """The first ``n`` rows of a split of the bundled R8 sample (Reuters news, 8 classes)."""
    with open(sample_path("r8") / f"{split}.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:n]
    return [r["text"] for r in rows], [r["label"] for r in rows]


train_texts, train_labels = read_split("train", N_TRAIN)
val_texts, val_labels = read_split("test", N_VAL)
names = sorted(set(train_labels))
train = Dataset.from_dict({"text": train_texts, "label": [names.index(y) for y in train_labels]})

model = load_model(device="cpu", max_seq_length=128)
loss = GraphGuidedLoss(model, labelled_fraction=0.7, sigma="sqrt_median")
loss.calibrate_sigma(train["text"])  # fix sigma once on the training set, as the paper does

# Validation texts that the index lacks classes for would be refused: keep the known classes.
known = [(t, y) for t, y in zip(val_texts, val_labels) if y in names]
evaluator = KNNEvaluator(train_texts, train_labels, [t for t, _ in known], [y for _, y in known],
                         k=5, write_csv=False)  # metrics named knn_*

args = SentenceTransformerTrainingArguments(
    output_dir="tutorial-output/trainer",
    num_train_epochs=2,
    per_device_train_batch_size=16,
    learning_rate=5e-5,
    warmup_ratio=0.1,
    batch_sampler=ClassBalancedBatchSampler.with_options(balanced=True),  # skewed classes: balance them
    eval_strategy="epoch",
    save_strategy="epoch",
    save_total_limit=1,
    load_best_model_at_end=True,
    metric_for_best_model="eval_knn_accuracy",
    report_to="none",
    use_cpu=True,
    disable_tqdm=True,
    seed=0,
)
trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss, evaluator=evaluator)
print(f"before: {evaluator(model)}")
trainer.train()
print(f"after (best epoch): {evaluator(model)}")
model.save("tutorial-output/trainer/final")
print("saved to tutorial-output/trainer/final")

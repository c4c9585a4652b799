"""Tutorial 1: fine-tune a SentenceTransformer with ``model.fit`` and GraphGuidedLoss.

Run from the repository root: ``python docs/tutorials/01_model_fit.py``.
"""

import csv

from sentence_transformers import InputExample
from torch.utils.data import DataLoader

from st_gloss.evaluation.evaluators import KNNEvaluator
from st_gloss.evaluation.models import load_model
from st_gloss import GraphGuidedLoss
from st_gloss.evaluation.samples import sample_path

N_TRAIN, N_TEST = 300, 200


def read_split(split: str, n: int) -> tuple[list[str], list[str]]:
    """The first ``n`` rows of a split of the bundled MR sample (movie reviews, 2 classes)."""
    with open(sample_path("mr") / f"{split}.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:n]
    return [r["text"] for r in rows], [r["label"] for r in rows]


train_texts, train_labels = read_split("train", N_TRAIN)
test_texts, test_labels = read_split("test", N_TEST)

# 1. A model: the bundled all-MiniLM-L6-v2 (or the tiny one).
model = load_model(device="cpu", max_seq_length=128)

# 2. Labels must be integers for the loss: one id per class.
names = sorted(set(train_labels))
label_id = {name: i for i, name in enumerate(names)}
examples = [InputExample(texts=[t], label=label_id[y]) for t, y in zip(train_texts, train_labels)]
loader = DataLoader(examples, batch_size=32, shuffle=True)

# 3. The loss: 70% of each class keeps its label in a batch, sigma from the batch's distances.
loss = GraphGuidedLoss(model, labelled_fraction=0.7, sigma="sqrt_median")

# 4. An evaluator: kNN accuracy of the test texts against the training texts.
knn = KNNEvaluator(train_texts, train_labels, test_texts, test_labels, k=5, write_csv=False)
before = knn(model)["knn_accuracy"]

model.fit(train_objectives=[(loader, loss)], epochs=1, warmup_steps=2, show_progress_bar=False)

after = knn(model)["knn_accuracy"]
print(f"trained on {len(examples)} texts, {len(names)} classes")
print(f"kNN accuracy before: {before:.3f}")
print(f"kNN accuracy after:  {after:.3f}")
model.save("tutorial-output/model-fit")
print("saved to tutorial-output/model-fit")

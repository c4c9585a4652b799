"""Tutorial 9: semi-supervised G-Loss, a few labelled texts plus a file of unlabelled ones.

Run from the repository root: ``python docs/tutorials/09_semi_supervised.py``.
"""

import csv
from pathlib import Path

import numpy as np

from st_gloss import TextClassifier
from st_gloss.evaluation import load_data
from st_gloss.training import TrainConfig, train

# 1. The situation: 12 labelled texts per class and a file of texts nobody has labelled yet.
#    Here both come from the bundled MR sample; the labels of the unlabelled file are dropped.
data = load_data("sample:mr")
train_split, test_split = data["train"], data["test"]
rng = np.random.default_rng(0)
labelled = np.concatenate([rng.permutation(np.flatnonzero(train_split.labels == c))[:12]
                           for c in range(data.num_classes)])
rest = np.setdiff1d(np.arange(len(train_split)), labelled)
folder = Path("tutorial-output/few-labels")
folder.mkdir(parents=True, exist_ok=True)
for name, rows, texts, labels in (("train", labelled, train_split.texts, train_split.labels),
                                   ("test", range(len(test_split)), test_split.texts, test_split.labels)):
    with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows([texts[i], data.label_names[labels[i]]] for i in rows)
with open(folder / "unlabelled.csv", "w", newline="", encoding="utf-8") as handle:
    writer = csv.writer(handle)
    writer.writerow(["text"])
    writer.writerows([train_split.texts[i]] for i in rest)
print(f"{len(labelled)} labelled texts, {len(rest)} unlabelled texts, {len(test_split)} test texts")

# 2. Train G-Loss twice on the same labelled texts: alone, then with the unlabelled file as
#    graph nodes (half of every batch). A quarter of each class is held out to pick the epoch.
runs = {}
for name, unlabelled in (("labelled only", None), ("with unlabelled texts", str(folder / "unlabelled.csv"))):
    config = TrainConfig(data=str(folder), loss="gloss", output=f"tutorial-output/semi-{len(runs)}",
                         epochs=6, batch_size=16, val_fraction=0.25, unlabelled=unlabelled,
                         unlabelled_fraction=0.5, overwrite=True, show_progress_bar=False)
    runs[name] = metrics = train(config, echo=lambda line: None)
    used = metrics.get("unlabelled", {}).get("texts", 0)
    print(f"{name:<22} unlabelled texts used: {used:>3}; best epoch {metrics['best_epoch']}; "
          f"test accuracy (logistic head): {metrics['test']['head_logistic_accuracy']:.3f}")

# 3. The classifier of the semi-supervised run classifies new texts like any other.
classifier = TextClassifier.from_pretrained("tutorial-output/semi-1")
texts = ["a tender, funny and wonderfully acted film", "two hours of clichés and wooden dialogue"]
for text, label in zip(texts, classifier.predict(texts)):
    print(f"{label:<9} {text}")

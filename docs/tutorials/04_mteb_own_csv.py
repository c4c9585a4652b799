"""Tutorial 4: MTEB classification on your own CSV, offline.

Run from the repository root: ``python docs/tutorials/04_mteb_own_csv.py``.
"""

import csv
from pathlib import Path

from st_gloss.evaluation.data import load_labelled_data
from st_gloss.evaluation.models import load_model
from st_gloss.evaluation.mteb_tasks import make_classification_task, run_mteb
from st_gloss.evaluation.samples import sample_path


# 1. Your data: a folder with train.csv and test.csv, columns "text" and "label" (other names:
#    load_labelled_data(..., text_column=..., label_column=...)). Here we write one from the R8 sample.
folder = Path("tutorial-output/my-news")
folder.mkdir(parents=True, exist_ok=True)
for split in ("train", "test"):
    with open(sample_path("r8") / f"{split}.csv", newline="", encoding="utf-8") as source:
        rows = list(csv.DictReader(source))
    with open(folder / f"{split}.csv", "w", newline="", encoding="utf-8") as target:
        writer = csv.DictWriter(target, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows({"text": r["text"], "label": r["label"]} for r in rows)

data = load_labelled_data(folder)

# 2. The MTEB task: a few-shot logistic probe, samples_per_label training texts per class,
#    averaged over n_experiments draws (MTEB's defaults are 8 and 10).
task = make_classification_task(data, samples_per_label=8, n_experiments=10)

# 3. Run it. Nothing is downloaded and nothing is cached.
model = load_model(device="cpu", max_seq_length=128)
scores = run_mteb(model, [task], show_progress_bar=False)[task.metadata.name]
print(f"task {task.metadata.name}")
print(f"accuracy {scores['accuracy']:.3f}  macro-F1 {scores['f1']:.3f}  "
      f"({scores['samples_per_label']} texts per class, {scores['n_experiments']} experiments)")

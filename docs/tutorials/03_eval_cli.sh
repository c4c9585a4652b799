#!/usr/bin/env bash
# Tutorial 3: evaluate any model with `st-gloss eval` and read its output.
# Run from the repository root: bash docs/tutorials/03_eval_cli.sh
set -euo pipefail

MODEL=default   # the bundled all-MiniLM-L6-v2; or the folder of your own model
DATA=sample:r8   # the bundled R8 sample (Reuters news, 8 classes)
mkdir -p tutorial-output

# kNN (index: the train split), silhouette and a logistic probe on the test split of the R8 sample.
st-gloss eval "$MODEL" --data "$DATA" --metrics knn,silhouette,probe --k 10 \
    --no-progress --output tutorial-output/eval.json --overwrite

# Everything printed is also in the JSON file, per model, with per-class figures.
python - <<'PY'
import json

report = json.load(open("tutorial-output/eval.json", encoding="utf-8"))
print(f"data: {report['data']['name']}, {report['data']['n_texts']} texts, {report['data']['classes']} classes")
for model in report["models"]:
    knn = model["results"]["knn"]
    worst = min(knn["per_class"], key=lambda row: row["f1"])
    print(f"{model['model']}: kNN accuracy {knn['accuracy']:.3f}, hardest class {worst['name']} (F1 {worst['f1']:.2f})")
PY

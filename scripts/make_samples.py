"""Draw the small labelled samples that ship with st-gloss from the paper's datasets.

The full datasets are not part of the repository (see ``../shared/data/README.md`` for
their provenance). This script draws seeded, class-stratified samples from them and writes
them under ``st_gloss/data/``. Run from the repository root::

    python scripts/make_samples.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import defaultdict
from pathlib import Path

# name -> {split: rows per class}
SAMPLES = {
    "mr": {"train": 150, "test": 100},
    "r8": {"train": 30, "test": 15},
}


def draw(rows: list[dict], per_class: int, seed: int) -> list[dict]:
    by_label: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    rng = random.Random(seed)
    picked: list[dict] = []
    for label in sorted(by_label):
        group = by_label[label]
        picked.extend(rng.sample(group, min(per_class, len(group))))
    rng.shuffle(picked)
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("st_gloss/data"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name, splits in SAMPLES.items():
        for split, per_class in splits.items():
            with open(args.data_root / name / f"{split}.csv", newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            sample = draw(rows, per_class, args.seed)
            out = args.out / f"{name}_sample" / f"{split}.csv"
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=["text", "label"])
                writer.writeheader()
                writer.writerows({"text": r["text"], "label": r["label"]} for r in sample)
            print(f"{out}: {len(sample)} rows")


if __name__ == "__main__":
    main()

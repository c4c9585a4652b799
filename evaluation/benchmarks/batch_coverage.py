"""What the default class-balanced batches hold on few-label data: classes per batch and batch sizes.

Counts only (no model): for each case (texts per class, batch size) it draws 20 epochs of
`st_gloss.ClassBalancedBatchSampler` with its defaults and reports the mean share of the
dataset's classes found in a batch, the share of batches holding every class, the share of
classes that can be scored in a batch (at least two texts there) and the smallest batch.
Run it against another checkout to compare samplers::

    python -m evaluation.benchmarks.batch_coverage
    PYTHONPATH=/path/to/older/checkout python -m evaluation.benchmarks.batch_coverage
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from pathlib import Path

REPORT = Path(__file__).resolve().parents[1] / "results" / "batch_coverage.md"

CASES = (
    # (name, texts per class, batch size)
    ("MR, 8 per class", [8, 8], 16),
    ("6 classes, 8 per class", [8] * 6, 16),
    ("R8, 8 per class", [8] * 8, 16),
    ("R8, 16 per class", [16] * 8, 16),
    ("6 classes, 43 texts (st-gloss train after a 10% validation carve)", [8, 7, 7, 7, 7, 7], 32),
    ("R8, 64 per class (fewer in 2 classes)", [64] * 6 + [41, 15], 16),
    ("R52, 8 per class (fewer in 20 classes)", [8] * 32 + [3] * 20, 32),
)


def coverage(counts: list[int], batch_size: int, epochs: int = 20) -> dict[str, float]:
    """The batch statistics of one case over ``epochs`` epochs."""
    from datasets import Dataset

    from st_gloss.samplers import ClassBalancedBatchSampler

    labels = [c for c, n in enumerate(counts) for _ in range(n)]
    dataset = Dataset.from_dict({"text": [str(i) for i in range(len(labels))], "label": labels})
    sampler = ClassBalancedBatchSampler(dataset, batch_size=batch_size, drop_last=False, seed=0)
    present, complete, scored, sizes = [], [], [], []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in sampler:
            per_class = Counter(labels[i] for i in batch)
            present.append(len(per_class) / len(counts))
            complete.append(len(per_class) == len(counts))
            scored.append(sum(n >= 2 for n in per_class.values()) / len(counts))
            sizes.append(len(batch))
    return {"batches per epoch": len(sampler), "classes present": statistics.fmean(present),
            "batches with every class": statistics.fmean(complete), "classes scorable": statistics.fmean(scored),
            "smallest batch": min(sizes), "largest batch": max(sizes)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    lines = ["| case | batches per epoch | classes present per batch | batches with every class | "
             "classes scorable (>= 2 texts) | batch sizes |", "|---|---:|---:|---:|---:|---:|"]
    for name, counts, batch_size in CASES:
        c = coverage(counts, batch_size)
        lines.append(f"| {name}, batch {batch_size} | {c['batches per epoch']} | {c['classes present']:.2f} | "
                     f"{c['batches with every class']:.2f} | {c['classes scorable']:.2f} | "
                     f"{c['smallest batch']}-{c['largest batch']} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.report:
        args.report.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

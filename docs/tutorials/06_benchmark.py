"""Tutorial 6: the benchmark suite (runner, then aggregate) at a small scale.

Run from the repository root: ``python docs/tutorials/06_benchmark.py``. It benchmarks three rows
(zero-shot, G-Loss, SupCon) on the bundled MR sample with one seed, and writes a markdown page.
The full benchmark is the same two steps with ``--profile cpu`` or ``--profile paper`` (see the page).
"""

import dataclasses
import shutil
from pathlib import Path

from evaluation.benchmarks import aggregate, runner
from evaluation.benchmarks.profiles import PROFILES
from st_gloss.evaluation.samples import sample_path

out = Path("tutorial-output/benchmark")

# 1. A data root: one folder per dataset, each with train.csv and test.csv (val.csv optional).
shutil.copytree(sample_path("mr"), out / "data" / "mr", dirs_exist_ok=True)

# 2. A profile: the cpu profile, made smaller. Every loss gets the same budget.
profile = dataclasses.replace(
    PROFILES["cpu"],
    name="tutorial",
    max_seq_length=128,
    epochs=2,
    batch_size=16,
    max_train_examples=256,
    max_val_examples=64,
    max_test_examples=None,
)

# 3. The jobs: dataset x loss x seed. Finished jobs are skipped when this runs again.
jobs = runner.plan(profile, ["mr"], ["zero-shot", "gloss", "supcon"], [0])
runner.run(jobs, profile, out / "results", out / "runs", data_root=out / "data", echo=print)

# 4. The page: one table per metric, rows are losses, columns datasets.
page = aggregate.aggregate(out / "results", out / "benchmark_tutorial.md", title="Benchmark: tutorial")
print(page)

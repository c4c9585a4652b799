"""Which learning rate makes a ``+ce`` loss's linear head converge: ``--head-lr`` side by side.

The encoder keeps the profile's learning rate (5e-5 in ``cpu``); only the linear head's rate
(sentence-transformers' ``learning_rate_mapping``) changes. Each (dataset, loss, head rate, seed)
is a runner job of the profile (same data, budget and validation), so the rows differ in the
head's rate alone. The report gives, per row, the test accuracy of the jointly trained linear
head next to the logistic head fit afterwards on the same frozen embeddings (the head has
converged when it is about as good as a head fit to convergence), the kNN accuracy (is the
encoder affected?), and the cross-entropy part of the loss in the first and the last epoch.

Run from the repository root::

    python -m evaluation.benchmarks.head_learning_rate --data-root ../shared/data --datasets mr,r8
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from evaluation.benchmarks.profiles import PROFILES
from evaluation.benchmarks.runner import WORK, Job, job_state, run

RESULTS = Path(__file__).resolve().parents[1] / "results" / "head_learning_rate"
REPORT = Path(__file__).resolve().parents[1] / "results" / "head_learning_rate.md"
RATES = (5e-5, 1e-3, 1e-2)
"""Head learning rates tried: the encoder's own, the default, ten times more."""


def rate_jobs(datasets: list[str], losses: list[str], rates: tuple[float, ...], seeds: list[int]) -> list[Job]:
    """One job per (dataset, loss, rate, seed), tagged ``hlr<rate>``.

    Examples:
        >>> rate_jobs(["mr"], ["gloss+ce"], (1e-3,), [0])[0].key
        'mr__gloss+ce__hlr0.001__seed0'
    """
    return [
        Job(dataset, loss, seed, (("head_learning_rate", rate),), f"hlr{rate:g}")
        for dataset in datasets
        for loss in losses
        for rate in rates
        for seed in seeds
    ]


def _ce_part(result: dict[str, Any], index: int) -> float | None:
    curve = result.get("curve") or []
    if not curve:
        return None
    return curve[index].get("loss_parts", {}).get("ce")


def table(results: list[dict[str, Any]], command: str) -> str:
    """The Markdown report: one row per (dataset, loss, head rate), means over seeds."""
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = defaultdict(list)
    for result in results:
        job = result["job"]
        groups[(job["dataset"], job["loss"], float(job["options"]["head_learning_rate"]))].append(result)

    def mean(values):
        values = [v for v in values if v is not None]
        return statistics.fmean(values) if values else None

    def cell(value):
        return "-" if value is None else f"{value:.4f}"

    lines = [
        "# The linear head's learning rate",
        "",
        "`+ce` losses train a freshly initialised linear head jointly with the encoder. Only the head's rate "
        "changes between rows; the encoder keeps the `cpu` profile's 5e-5 (256 training texts, up to 3 epochs, "
        "best epoch on validation, 600 test texts). *Linear head* is the test accuracy of the jointly trained "
        "head at the best epoch; *logistic* is a logistic regression fit afterwards on the same frozen "
        "embeddings (a head trained to convergence); the gap between them is how far the joint head is from "
        "converged. *CE* is the cross-entropy part of the loss ((1 - lambda) x CE) in the first and the last "
        "epoch.",
        "",
        f"Command: `{command}`",
        "",
        "| dataset | loss | head lr | seeds | linear head acc. | logistic acc. | gap | kNN acc. | CE epoch 1 "
        "| CE last |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (dataset, loss, rate), rows in sorted(groups.items()):
        linear = mean(r["test"].get("head_linear_accuracy") for r in rows)
        logistic = mean(r["test"].get("head_logistic_accuracy") for r in rows)
        gap = None if linear is None or logistic is None else linear - logistic
        knn = mean(r["test"].get("knn_accuracy") for r in rows)
        lines.append(
            f"| {dataset} | {loss} | {rate:g} | {len(rows)} | {cell(linear)} | {cell(logistic)} | "
            f"{'-' if gap is None else f'{gap:+.4f}'} | {cell(knn)} | {cell(mean(_ce_part(r, 0) for r in rows))} | "
            f"{cell(mean(_ce_part(r, -1) for r in rows))} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--datasets", default="mr,r8", help="comma-separated [default: mr,r8]")
    parser.add_argument("--losses", default="gloss+ce", help="comma-separated +ce losses [default: gloss+ce]")
    parser.add_argument("--rates", default=",".join(f"{r:g}" for r in RATES), help="head learning rates")
    parser.add_argument("--seeds", default="0", help="comma-separated integers [default: 0]")
    parser.add_argument("--data-root", help="folder of the datasets (default: $ST_GLOSS_DATA)")
    parser.add_argument("--max-jobs", type=int, help="stop after this many jobs (rerun to continue)")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    split = lambda text: [part.strip() for part in text.split(",") if part.strip()]  # noqa: E731
    jobs = rate_jobs(split(args.datasets), split(args.losses), tuple(float(r) for r in split(args.rates)),
                     [int(s) for s in split(args.seeds)])
    results_folder = RESULTS / profile.name
    try:
        run(jobs, profile, results_folder, WORK / f"head-lr-{profile.name}", max_jobs=args.max_jobs,
            data_root=args.data_root)
    except KeyboardInterrupt:
        print("\ninterrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    import json

    finished = [json.loads((results_folder / f"{j.key}.json").read_text()) for j in jobs
                if job_state(results_folder / f"{j.key}.json") == "done"]
    if finished:
        command = "python -m evaluation.benchmarks.head_learning_rate " + " ".join(
            argv if argv is not None else sys.argv[1:])
        REPORT.write_text(table(finished, command), encoding="utf-8")
        print(f"wrote {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

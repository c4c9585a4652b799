"""Sensitivity of G-Loss on one dataset: labelled fraction, sigma (rule or value), graph weight.

One option is varied at a time around the profile's G-Loss settings (the others stay fixed):
labelled fraction and sigma with the standalone ``gloss``, graph weight with ``gloss+ce``. Each
point is a runner job (same profile budget, resumable, one result file each, under
``evaluation/results/sensitivity/<profile>/``); the picture has one panel per option with the
validation and test kNN accuracy.

Run from the repository root::

    python -m evaluation.benchmarks.sensitivity --profile cpu --dataset r8 --data-root ../shared/data
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

RESULTS = Path(__file__).resolve().parents[1] / "results" / "sensitivity"

SWEEPS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "labelled_fraction": ("gloss", (0.3, 0.5, 0.6, 0.7, 0.9)),
    "sigma": ("gloss", ("sqrt_median", "dicm", 0.2, 0.4, 0.8)),
    "graph_weight": ("gloss+ce", (0.5, 0.7, 0.8, 0.9, 1.0)),
}
"""option -> (loss, values tried)."""


def sweep_jobs(dataset: str, seeds: list[int], sweeps: dict[str, tuple[str, tuple[Any, ...]]] = SWEEPS) -> list[Job]:
    """One job per (option, value, seed), tagged ``<option>=<value>``.

    Examples:
        >>> sweep_jobs("r8", [0], {"sigma": ("gloss", ("dicm",))})[0].key
        'r8__gloss__sigma=dicm__seed0'
    """
    return [
        Job(dataset, loss, seed, ((option, value),), f"{option}={value}")
        for option, (loss, values) in sweeps.items()
        for value in values
        for seed in seeds
    ]


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def plot(results: list[dict[str, Any]], path: Path) -> Path:
    """One panel per option: validation and test kNN accuracy against the value (mean over seeds).

    A numeric option (labelled fraction, graph weight) is drawn as lines over its real values; an
    option whose values include names (sigma: ``sqrt_median``, ``dicm`` and fixed numbers) as
    separate points, one per value, with no line joining them. Panels are stacked so that each
    is wide enough to read in the docs' column.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for result in results:
        ((option, value),) = result["job"]["options"].items()
        points[option][str(value)]["val"].append(result["best_val"])
        points[option][str(value)]["test"].append(result["test"]["knn_accuracy"])
    figure = Figure(figsize=(7.0, 2.9 * max(1, len(points))))
    FigureCanvasAgg(figure)
    styles = (("val", "o", "validation kNN accuracy", -0.08), ("test", "s", "test kNN accuracy", 0.08))
    options = sorted(points, key=lambda o: list(SWEEPS).index(o) if o in SWEEPS else len(SWEEPS))
    for i, option in enumerate(options, start=1):
        axes = figure.add_subplot(len(points), 1, i)
        swept = [str(v) for v in SWEEPS.get(option, ("", ()))[1]]
        labels = sorted(points[option], key=lambda v: swept.index(v) if v in swept else len(swept))
        numeric = all(_is_number(v) for v in labels)
        if numeric:
            labels = sorted(labels, key=float)
        for split, marker, name, offset in styles:
            means = [statistics.fmean(points[option][v][split]) for v in labels]
            if numeric:
                axes.plot([float(v) for v in labels], means, marker=marker, label=name)
            else:
                axes.plot([j + offset for j in range(len(labels))], means, marker=marker, linestyle="none",
                          markersize=8, label=name)
        if numeric:
            axes.set_xticks([float(v) for v in labels], labels)
        else:
            axes.set_xticks(range(len(labels)), labels)
            axes.set_xlim(-0.5, len(labels) - 0.5)
        axes.set_xlabel(option.replace("_", " ") + ("" if numeric else " (rule or fixed value)"), fontsize=10)
        axes.set_ylabel("kNN accuracy", fontsize=10)
        axes.tick_params(labelsize=9)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def table(results: list[dict[str, Any]], command: str) -> str:
    """A markdown table of the sweep: one row per (option, value), means over seeds, in sweep order.

    Examples:
        >>> r = [{"job": {"options": {"sigma": "dicm"}, "seed": 0}, "best_val": 0.7,
        ...       "test": {"knn_accuracy": 0.8, "knn_macro_f1": 0.75, "silhouette_macro": 0.1}}]
        >>> print(table(r, "cmd").splitlines()[-1])
        | sigma | dicm | 1 | 0.7000 | 0.8000 | 0.7500 | 0.1000 |
    """
    rows: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for result in results:
        ((option, value),) = result["job"]["options"].items()
        rows[(option, str(value))].append(result)
    order: dict[tuple[str, str], int] = {}
    for option, (_, values) in SWEEPS.items():
        for value in values:
            order[(option, str(value))] = len(order)
    lines = [f"Command: `{command}`. Means over the seeds of each row; the other options stay at the profile's.", "",
             "| option | value | seeds | val kNN acc | test kNN acc | test macro-F1 | test macro silhouette |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for key in sorted(rows, key=lambda k: (order.get(k, len(order)), k)):
        group = rows[key]
        means = [
            statistics.fmean(r["best_val"] for r in group),
            *(statistics.fmean(r["test"][m] for r in group) for m in ("knn_accuracy", "knn_macro_f1",
                                                                     "silhouette_macro")),
        ]
        lines.append(f"| {key[0]} | {key[1]} | {len(group)} | " + " | ".join(f"{m:.4f}" for m in means) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--dataset", default="r8")
    parser.add_argument("--seeds", default="0", help="comma-separated integers")
    parser.add_argument("--data-root")
    parser.add_argument("--max-jobs", type=int)
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    seeds = [int(s) for s in args.seeds.split(",")]
    results_folder = RESULTS / profile.name
    jobs = sweep_jobs(args.dataset, seeds)
    try:
        run(
            jobs,
            profile,
            results_folder,
            WORK / f"sensitivity-{profile.name}",
            max_jobs=args.max_jobs,
            data_root=args.data_root,
            require_heads=False,
        )
    except KeyboardInterrupt:
        print("\ninterrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    import json

    finished = [
        json.loads((results_folder / f"{j.key}.json").read_text())
        for j in jobs
        if job_state(results_folder / f"{j.key}.json") != "pending"  # the sweep reads kNN and silhouette only
    ]
    if finished:
        print(f"wrote {plot(finished, results_folder / f'sensitivity_{args.dataset}.png')}")
        command = "python -m evaluation.benchmarks.sensitivity " + " ".join(
            argv if argv is not None else sys.argv[1:])
        report = table(finished, command)
        (results_folder / f"sensitivity_{args.dataset}.md").write_text(report + "\n", encoding="utf-8")
        print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Turn the runner's result files into markdown tables, convergence pictures and the paper comparison.

For every metric a table: rows are losses (zero-shot first, then the registry order), columns are
datasets, each cell the mean over seeds ``± the sample standard deviation`` (no spread with one
seed), the best cell of each column in bold. Then one PNG per dataset with the validation metric
per epoch, one line per loss (mean over seeds), and, when ``paper_tables.json`` exists, our rows
beside the paper's own tables (integrated and standalone mode).

Run from the repository root::

    python -m evaluation.benchmarks.aggregate --profile cpu
    # -> evaluation/results/benchmark_cpu.md and evaluation/results/figures/convergence_cpu_<dataset>.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.benchmarks.profiles import ALL_LOSSES, PROFILES, ZERO_SHOT
from st_gloss.evaluation.data import BENCHMARK_DATASETS

RESULTS = Path(__file__).resolve().parents[1] / "results"


@dataclass(frozen=True)
class Metric:
    """A column of the result files to tabulate.

    Attributes:
        key: ``test.knn_accuracy`` (a dotted path into a result file) or a top-level key.
        title: the table's heading.
        higher_is_better: which end is marked best.
        digits: decimals shown.
        proportion: a share of test texts (an accuracy), whose sampling error the test size gives.
    """

    key: str
    title: str
    higher_is_better: bool = True
    digits: int = 4
    proportion: bool = False

    def value(self, result: dict[str, Any]) -> float | None:
        node: Any = result
        for part in self.key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return None if node is None else float(node)


METRICS = (
    Metric("test.knn_accuracy", "Test kNN accuracy (k = 10)", proportion=True),
    Metric("test.knn_macro_f1", "Test kNN macro-F1"),
    Metric("test.probe_accuracy", "Test linear-probe accuracy", proportion=True),
    Metric("test.probe_macro_f1", "Test linear-probe macro-F1"),
    Metric("test.silhouette_macro", "Test macro silhouette (cosine)"),
    Metric("best_epoch", "Epochs to the best validation score", higher_is_better=False, digits=1),
    Metric("seconds_per_epoch", "Seconds per training epoch", higher_is_better=False, digits=1),
)


def load_results(folder: str | Path) -> list[dict[str, Any]]:
    """The finished result files (``*.json``) of ``folder``, sorted by file name."""
    results = []
    for path in sorted(Path(folder).glob("*.json")):
        payload = json.loads(path.read_text(encoding="utf-8"))
        if payload.get("status") == "finished" and "job" in payload:
            results.append(payload)
    return results


def _order(values: Iterable[str], preferred: Iterable[str]) -> list[str]:
    present = set(values)
    first = [v for v in preferred if v in present]
    return first + sorted(present - set(first))


def _row_name(result: dict[str, Any]) -> str:
    job = result["job"]
    return job["loss"] + (f" ({job['tag']})" if job.get("tag") else "")


def cell_values(results: list[dict[str, Any]], metric: Metric) -> dict[tuple[str, str], list[float]]:
    """``(row, dataset) -> values over seeds`` of one metric."""
    cells: dict[tuple[str, str], list[float]] = defaultdict(list)
    for result in results:
        value = metric.value(result)
        if value is not None:
            cells[(_row_name(result), result["job"]["dataset"])].append(value)
    return cells


def _format(values: list[float], digits: int) -> str:
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def metric_table(results: list[dict[str, Any]], metric: Metric) -> str:
    """One markdown table: rows losses, columns datasets, ``mean ± sd`` over seeds, best in bold.

    Examples:
        >>> r = [{"job": {"dataset": "mr", "loss": "ce", "seed": 0}, "test": {"knn_accuracy": 0.5}}]
        >>> print(metric_table(r, METRICS[0]))
        | loss | mr |
        |---|---:|
        | ce | **0.5000** |
    """
    cells = cell_values(results, metric)
    rows = _order({row for row, _ in cells}, ALL_LOSSES)
    columns = _order({column for _, column in cells}, BENCHMARK_DATASETS)
    best: dict[str, float] = {}
    for column in columns:
        # The untrained model is a reference, not a contender (its "epochs to best" is 0).
        present = [row for row in rows if (row, column) in cells]
        contenders = [row for row in present if row != ZERO_SHOT] or present
        means = [statistics.fmean(cells[(row, column)]) for row in contenders]
        best[column] = max(means) if metric.higher_is_better else min(means)
    lines = ["| loss | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for row in rows:
        shown = []
        for column in columns:
            values = cells.get((row, column))
            if not values:
                shown.append("–")
                continue
            text = _format(values, metric.digits)
            is_best = round(statistics.fmean(values), 12) == round(best[column], 12)
            shown.append(f"**{text}**" if is_best and (row != ZERO_SHOT or len(rows) == 1) else text)
        lines.append(f"| {row} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


GLOSS_ROWS = ("gloss", "gloss+ce")
"""The rows that are G-Loss; every other trained row is a baseline."""

STANDALONE_ROWS = ("supcon", "batch-all-triplet", "batch-hard-triplet", "cosine")
"""The baselines of the paper's standalone mode (a loss alone, no linear head)."""


def _test_sizes(results: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """``(row, dataset) -> test texts summed over seeds``; 0 when any of its result files does not say."""
    sizes: dict[tuple[str, str], int] = defaultdict(int)
    unknown = set()
    for result in results:
        cell = (_row_name(result), result["job"]["dataset"])
        size = result.get("data", {}).get("sizes", {}).get("test")
        if size:
            sizes[cell] += int(size)
        else:
            unknown.add(cell)
    return {cell: 0 if cell in unknown else total for cell, total in sizes.items()}


def _standard_error(values: list[float], texts: int) -> float | None:
    """Binomial standard error of a mean accuracy over ``texts`` test texts (``None`` if unknown)."""
    if texts <= 0:
        return None
    p = statistics.fmean(values)
    return (p * (1.0 - p) / texts) ** 0.5


def head_to_head(
    results: list[dict[str, Any]],
    metric: Metric,
    contenders: Iterable[str] = GLOSS_ROWS,
    baseline: str | None = None,
    among: Iterable[str] | None = None,
) -> str:
    """Each G-Loss row against the best baseline of each dataset, with the spread over seeds.

    The baseline is ``baseline`` (a row name such as ``ce``) or, by default, the best trained row
    that is not G-Loss (only of the rows ``among``, when given). The seed spread is the larger of
    the two cells' sample standard deviations over seeds (unknown with one seed). For an
    accuracy, the test SE is the binomial standard error of the difference,
    ``sqrt(p1 q1 / n1 + p2 q2 / n2)`` with ``n`` the test texts over all seeds:
    how much the difference would move on another test sample (unpaired, so cautious: both rows
    were measured on the same texts). A difference no larger than the larger of the two is
    ``within noise``; with one seed and no test size the verdict says ``one seed``.

    Examples:
        >>> r = [{"job": {"dataset": "mr", "loss": l, "seed": s}, "test": {"knn_accuracy": v}}
        ...      for l, s, v in [("gloss", 0, .8), ("gloss", 1, .9), ("ce", 0, .7), ("ce", 1, .8)]]
        >>> print(head_to_head(r, METRICS[0], ["gloss"]))
        | dataset | G-Loss row | verdict | difference | seed spread | test SE | value | best baseline | value |
        |---|---|---|---:|---:|---:|---:|---|---:|
        | mr | gloss | win | +0.1000 | 0.0707 | – | 0.8500 | ce | 0.7500 |
        >>> for x in r: x["data"] = {"sizes": {"test": 100}}
        >>> print(head_to_head(r, METRICS[0], ["gloss"]).splitlines()[-1])
        | mr | gloss | win | +0.1000 | 0.0707 | 0.0397 | 0.8500 | ce | 0.7500 |
    """
    cells = cell_values(results, metric)
    sizes = _test_sizes(results) if metric.proportion else {}
    sign = 1.0 if metric.higher_is_better else -1.0
    columns = _order({column for _, column in cells}, BENCHMARK_DATASETS)
    # The deciding columns (verdict, difference and the noise it is judged against) come first,
    # so that they stay on screen when the table scrolls in a narrow column.
    lines = [
        "| dataset | G-Loss row | verdict | difference | seed spread | test SE | value "
        f"| {baseline or 'best baseline'} | value |",
        "|---|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for column in columns:
        baselines = [
            row for (row, c) in cells if c == column and row != ZERO_SHOT and row.split(" ")[0] not in GLOSS_ROWS
        ]
        if baseline is not None:
            baselines = [row for row in baselines if row == baseline]
        if among is not None:
            baselines = [row for row in baselines if row in set(among)]
        if not baselines:
            continue
        best = max(baselines, key=lambda row: sign * statistics.fmean(cells[(row, column)]))
        theirs = cells[(best, column)]
        for contender in contenders:
            ours = cells.get((contender, column))
            if not ours:
                continue
            difference = statistics.fmean(ours) - statistics.fmean(theirs)
            spreads = [statistics.stdev(v) for v in (ours, theirs) if len(v) > 1]
            spread = max(spreads) if len(spreads) == 2 else None
            errors = [_standard_error(v, sizes.get((row, column), 0)) for v, row in ((ours, contender), (theirs, best))]
            error = (errors[0] ** 2 + errors[1] ** 2) ** 0.5 if None not in errors else None
            outcome = "win" if sign * difference > 0 else "loss" if sign * difference < 0 else "tie"
            noise = [x for x in (spread, error) if x is not None]
            if not noise:
                verdict = f"{outcome} (one seed)"
            else:
                verdict = outcome if abs(difference) > max(noise) else "within noise"
            shown = [f"{x:.{metric.digits}f}" if x is not None else "–" for x in (spread, error)]
            lines.append(
                f"| {column} | {contender} | {verdict} | {difference:+.{metric.digits}f} | {shown[0]} | {shown[1]} | "
                f"{statistics.fmean(ours):.{metric.digits}f} | {best} | {statistics.fmean(theirs):.{metric.digits}f} |"
            )
    return "\n".join(lines)


HEAD_COLUMNS = (
    ("kNN", "test.knn_accuracy"),
    ("logistic head", "test.head_logistic_accuracy"),
    ("linear head", "test.head_linear_accuracy"),
    ("propagation head", "test.head_propagation_accuracy"),
)
"""The columns of :func:`heads_table`: the kNN vote and the heads a training job keeps."""

HEAD_METRICS = (
    Metric("test.head_linear_accuracy", "Test accuracy of the jointly trained linear head", proportion=True),
    Metric("test.head_logistic_accuracy", "Test accuracy of the logistic head", proportion=True),
    Metric("test.head_propagation_accuracy", "Test accuracy of the propagation head", proportion=True),
)


def heads_table(results: list[dict[str, Any]], digits: int = 4) -> str:
    """Test accuracy of every classifier a job has, side by side: one row per (dataset, loss).

    Only the rows whose result files hold head figures are listed (files written before the
    heads existed have none); a head a loss does not have (the linear head of ``gloss``) is ``–``.
    The best cell of each row is in bold.

    Examples:
        >>> r = [{"job": {"dataset": "mr", "loss": "ce", "seed": 0},
        ...       "test": {"knn_accuracy": .7, "head_logistic_accuracy": .75, "head_linear_accuracy": .72}}]
        >>> print(heads_table(r, digits=2))
        | dataset | loss | kNN | logistic head | linear head | propagation head |
        |---|---|---:|---:|---:|---:|
        | mr | ce | 0.70 | **0.75** | 0.72 | – |
    """
    columns = {title: cell_values(results, Metric(key, title)) for title, key in HEAD_COLUMNS}
    have_heads = {cell for title, cells in columns.items() if title != "kNN" for cell in cells}
    datasets = _order({dataset for _, dataset in have_heads}, BENCHMARK_DATASETS)
    lines = ["| dataset | loss | " + " | ".join(title for title, _ in HEAD_COLUMNS) + " |",
             "|---|---|" + "---:|" * len(HEAD_COLUMNS)]
    for dataset in datasets:
        for row in _order({r for r, d in have_heads if d == dataset}, ALL_LOSSES):
            values = {title: columns[title].get((row, dataset)) for title, _ in HEAD_COLUMNS}
            means = [statistics.fmean(v) for v in values.values() if v]
            best = max(means) if means else None
            shown = []
            for title, _ in HEAD_COLUMNS:
                v = values[title]
                if not v:
                    shown.append("–")
                    continue
                text = _format(v, digits)
                shown.append(f"**{text}**" if round(statistics.fmean(v), 12) == round(best, 12) else text)
            lines.append(f"| {dataset} | {row} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def seeds_table(results: list[dict[str, Any]]) -> str:
    """Which seeds each (loss, dataset) cell averages."""
    seeds: dict[tuple[str, str], set[int]] = defaultdict(set)
    for result in results:
        seeds[(_row_name(result), result["job"]["dataset"])].add(int(result["job"]["seed"]))
    rows = _order({row for row, _ in seeds}, ALL_LOSSES)
    columns = _order({column for _, column in seeds}, BENCHMARK_DATASETS)
    lines = ["| loss | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for row in rows:
        lines.append(
            f"| {row} | "
            + " | ".join(",".join(map(str, sorted(seeds.get((row, c), set())))) or "–" for c in columns)
            + " |"
        )
    return "\n".join(lines)


CONVERGENCE_METRICS = ("knn_accuracy", "silhouette_macro")
"""What the convergence plots show per epoch: every row's validation has both, whatever metric
picked its epoch (in the `full` profile the linear head's macro-F1 or the silhouette)."""


def convergence_plot(results: list[dict[str, Any]], dataset: str, path: Path,
                     metrics: tuple[str, ...] = CONVERGENCE_METRICS) -> Path | None:
    """PNG of validation metrics per epoch for one dataset, a panel per metric, a line per loss (mean over seeds).

    The zero-shot score is a dashed horizontal line; a hollow marker is the epoch a row kept (its
    best validation epoch, by the metric that picked it; the most common one over seeds). Returns
    the path, or ``None`` without data.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    per_metric: dict[str, dict[str, dict[int, list[float]]]] = {
        m: defaultdict(lambda: defaultdict(list)) for m in metrics}
    kept: dict[str, list[int]] = defaultdict(list)
    for result in results:
        if result["job"]["dataset"] != dataset:
            continue
        row = _row_name(result)
        if result.get("best_epoch") is not None:
            kept[row].append(int(result["best_epoch"]))
        for entry in result.get("curve", []):
            for metric in metrics:
                if metric in entry.get("val", {}):
                    per_metric[metric][row][int(entry["epoch"])].append(entry["val"][metric])
    shown = [m for m in metrics if per_metric[m]]
    if not shown:
        return None
    figure = Figure(figsize=(5.2 * len(shown), 4.0))
    FigureCanvasAgg(figure)
    for number, metric in enumerate(shown, start=1):
        axes = figure.add_subplot(1, len(shown), number)
        per_loss = per_metric[metric]
        for loss in _order(per_loss, ALL_LOSSES):
            points = sorted(per_loss[loss].items())
            ys = [statistics.fmean(v) for _, v in points]
            if loss == "zero-shot":
                axes.axhline(ys[0], color="grey", linestyle="--", label="zero-shot")
                continue
            (line,) = axes.plot(
                [e for e, _ in points],
                ys,
                marker="o",
                label=loss,
                linewidth=2.5 if loss.startswith("gloss") else 1.2,
                # A loss and its "+ce" variant often overlap: the variant is dotted so both show.
                linestyle=":" if loss.endswith("+ce") else "-",
            )
            if kept.get(loss):
                best = statistics.mode(kept[loss])
                if best in per_loss[loss]:
                    axes.plot([best], [statistics.fmean(per_loss[loss][best])], marker="o", markersize=11,
                              markerfacecolor="none", color=line.get_color())
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.set_ylabel(f"validation {metric}")
        axes.set_title(f"{dataset}: validation {metric}")
        axes.grid(alpha=0.3)
        if number == 1:
            axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def _cell(values: list[float] | None, digits: int = 4) -> str:
    return _format(values, digits) if values else "–"


def paper_table(results: list[dict[str, Any]], mode: dict[str, Any], *, silhouette: bool = False) -> str:
    """Our rows beside the paper's for one mode (``integrated`` or ``standalone`` of the paper file).

    One line per (dataset, loss): our mean ± sd over seeds of ``mode["our_metric"]`` and its
    macro-F1 beside the paper's accuracy and macro-F1 (mean ± spread over its 3 seeds); with
    ``silhouette``, the macro silhouette of both too. Paper rows without a st-gloss counterpart
    (``extra_rows``) are listed with ``–`` on our side.

    Examples:
        >>> mode = {"our_metric": "test.head_linear_accuracy", "our_f1_metric": "test.head_linear_macro_f1",
        ...         "rows": {"ce": "CE"}, "values": {"CE": {"mr": {"accuracy": 0.8564, "accuracy_sd": 0.0081,
        ...         "macro_f1": 0.8564, "macro_f1_sd": 0.0081}}}}
        >>> r = [{"job": {"dataset": "mr", "loss": "ce", "seed": 0},
        ...       "test": {"head_linear_accuracy": 0.7, "head_linear_macro_f1": 0.69}}]
        >>> print(paper_table(r, mode))
        | dataset | loss (paper's name) | accuracy: ours | accuracy: paper | macro-F1: ours | macro-F1: paper |
        |---|---|---:|---:|---:|---:|
        | mr | ce (CE) | 0.7000 | 0.8564 ± 0.0081 | 0.6900 | 0.8564 ± 0.0081 |
    """
    ours = cell_values(results, Metric(mode["our_metric"], ""))
    ours_f1 = cell_values(results, Metric(mode["our_f1_metric"], ""))
    ours_sil = cell_values(results, Metric("test.silhouette_macro", "")) if silhouette else {}
    values = mode["values"]
    pairs = list(mode["rows"].items()) + [(None, name) for name in mode.get("extra_rows", {})]
    datasets = _order({d for v in values.values() for d in v} | {d for _, d in ours}, BENCHMARK_DATASETS)
    header = "| dataset | loss (paper's name) | accuracy: ours | accuracy: paper | macro-F1: ours | macro-F1: paper |"
    rule = "|---|---|---:|---:|---:|---:|"
    if silhouette:
        header += " silhouette: ours | silhouette: paper |"
        rule += "---:|---:|"
    lines = [header, rule]
    for dataset in datasets:
        for row, paper_name in pairs:
            theirs = values.get(paper_name, {}).get(dataset)
            mine = ours.get((row, dataset)) if row else None
            if theirs is None and not mine:
                continue
            paper_acc = f"{theirs['accuracy']:.4f} ± {theirs['accuracy_sd']:.4f}" if theirs else "–"
            paper_f1 = (f"{theirs['macro_f1']:.4f} ± {theirs['macro_f1_sd']:.4f}"
                        if theirs and theirs.get("macro_f1") is not None else "–")
            name = f"{row} ({paper_name})" if row else f"– ({paper_name})"
            line = (f"| {dataset} | {name} | {_cell(mine)} | {paper_acc} | "
                    f"{_cell(ours_f1.get((row, dataset)) if row else None)} | {paper_f1} |")
            if silhouette:
                paper_sil = f"{theirs['silhouette_macro']:.4f}" if theirs and "silhouette_macro" in theirs else "–"
                line += f" {_cell(ours_sil.get((row, dataset)) if row else None)} | {paper_sil} |"
            lines.append(line)
    return "\n".join(lines)


_PICKED_BY = {"knn_accuracy": "validation kNN accuracy", "silhouette_macro": "validation macro silhouette",
              "head_macro_f1": "the linear head's validation macro-F1", "probe_accuracy": "validation probe accuracy"}


def _picked_by(results: list[dict[str, Any]], rows: dict[str, str]) -> str:
    """How the epochs of ``rows`` were chosen in ``results``, in words.

    Examples:
        >>> _picked_by([{"job": {"loss": "ce"}, "eval_metric": "head_macro_f1"}], {"ce": "CE"})
        "the linear head's validation macro-F1"
    """
    metrics = sorted({r.get("eval_metric", "knn_accuracy") for r in results if r["job"]["loss"] in rows})
    return " / ".join(_PICKED_BY.get(m, m) for m in metrics) or "validation kNN accuracy"


def paper_section(results: list[dict[str, Any]], paper: dict[str, Any]) -> list[str]:
    """The "Comparison with the paper" section: both modes, each marked with backbone and budget."""
    profiles = sorted({r.get("profile", "?") for r in results})
    ours = "; ".join(f"`{name}` profile: {PROFILES[name].description}" for name in profiles if name in PROFILES)
    parts = [
        "## Comparison with the paper",
        "",
        f"The paper: {paper['backbone']}, {paper['budget']} ({paper['source']}). Ours: the bundled "
        f"all-MiniLM-L6-v2 (22M parameters), {ours or 'the budget of these result files'}. A model five "
        "times smaller on a fraction of the budget: compare the order of the losses within each side, "
        "not the values across.",
        "",
    ]
    notes = paper.get("integrated", {}).get("extra_rows", {})
    if "integrated" in paper:
        mode = paper["integrated"]
        parts += ["### Integrated mode (the paper's Table 2)", "", f"Protocol: {mode['protocol']}. Ours: the same "
                  "head, trained jointly with the encoder by the `+ce` losses (`test.head_linear_accuracy`); our epoch "
                  f"is chosen on {_picked_by(results, mode['rows'])}.", ""]
        parts += [f"- {name}: {what}." for name, what in notes.items()]
        parts += ["", paper_table(results, mode), ""]
    if "standalone" in paper:
        mode = paper["standalone"]
        picked = _picked_by(results, mode["rows"])
        parts += ["### Standalone mode", "", f"Protocol: {mode['protocol']}. Ours: a logistic-regression head on the "
                  "frozen embeddings of the training texts (`test.head_logistic_accuracy`), and the macro silhouette "
                  f"of the test embeddings; our epoch is chosen on {picked}.", ""]
        parts += [f"- `{row}`: {what}." for row, what in mode.get("row_notes", {}).items()]
        parts += ["", paper_table(results, mode, silhouette=True), ""]
    return parts


def render(
    results: list[dict[str, Any]],
    *,
    title: str,
    figures: dict[str, Path] | None = None,
    relative_to: Path | None = None,
    paper: dict[str, Any] | None = None,
    metrics: Iterable[Metric] = METRICS,
) -> str:
    """The whole markdown page: how it was made, one table per metric, pictures, paper comparison."""
    profiles = sorted({r.get("profile", "?") for r in results})
    parts = [f"# {title}", ""]
    for name in profiles:
        if name in PROFILES:
            parts.append(f"Profile `{name}`: {PROFILES[name].description}.")
    notes = sorted({note for r in results for note in r.get("data", {}).get("notes", []) if "subset" not in note})
    parts += [
        "",
        "Each cell: mean over seeds ± sample standard deviation (no spread with one seed); best of each "
        "column in bold. The learning rate and the epoch were chosen on the validation split; the test split "
        "was measured once per job, on the best epoch. `zero-shot` is the untrained model on the same splits.",
        "",
    ]
    if notes:
        parts += ["Data notes: " + "; ".join(notes) + ".", ""]
    for metric in metrics:
        parts += [f"## {metric.title}", "", metric_table(results, metric), ""]
    if any(HEAD_METRICS[1].value(r) is not None for r in results):
        parts += [
            "## Classifier heads",
            "",
            "Test accuracy of each classifier a job keeps (mean ± sd over seeds; the best of each row in bold): "
            "the kNN vote; a logistic head fit on the frozen training embeddings (the paper's standalone "
            "protocol); the linear head trained jointly with the encoder by the `+ce` losses (the paper's "
            "integrated mode, Table 2); the propagation head (the training texts as the labelled reference set). "
            "Rows without head figures (result files from before the heads) are left out.",
            "",
            heads_table(results),
            "",
        ]
    head = [m for m in metrics if m.key in ("test.knn_accuracy", "test.silhouette_macro")]
    if head:
        parts += [
            "## G-Loss against the best baseline",
            "",
            "Each G-Loss row against the best trained row that is not G-Loss, per dataset. The seed "
            "spread is the larger sample standard deviation of the two cells (unknown with one seed); "
            "for an accuracy, the test SE is the binomial standard error of the difference given the "
            "number of test texts. A difference no larger than the larger of the two is `within noise`.",
            "",
        ]
        for metric in head:
            parts += [f"### {metric.title}", "", head_to_head(results, metric), ""]
        linear = HEAD_METRICS[0]
        if any(r["job"]["loss"] == "gloss+ce" and linear.value(r) is not None for r in results):
            parts += [
                "### Linear-head accuracy (integrated mode)",
                "",
                "`gloss+ce` against the best other loss with a jointly trained linear head (`ce`, `supcon+ce`): "
                "the comparison of the paper's Table 2.",
                "",
                head_to_head(results, linear, ["gloss+ce"]),
                "",
            ]
        logistic = HEAD_METRICS[1]
        scored = {r["job"]["loss"] for r in results if logistic.value(r) is not None}
        if "gloss" in scored and scored & set(STANDALONE_ROWS):
            parts += [
                "### Logistic-head accuracy (standalone mode)",
                "",
                "`gloss` against the best other loss trained alone (`supcon`, the triplet losses, `cosine`), "
                "each scored by a logistic head on its frozen embeddings: the comparison of the paper's "
                "standalone table.",
                "",
                head_to_head(results, logistic, ["gloss"], among=STANDALONE_ROWS),
                "",
            ]
        knn = next((m for m in head if m.key == "test.knn_accuracy"), None)
        if knn is not None:
            parts += [
                "### Test kNN accuracy against cross-entropy",
                "",
                "The paper's main baseline: the same encoder with a linear head trained by cross-entropy.",
                "",
                head_to_head(results, knn, baseline="ce"),
                "",
            ]
    parts += ["## Seeds per cell", "", seeds_table(results), ""]
    if figures:
        parts += ["## Convergence", ""]
        for dataset, path in figures.items():
            shown = path.relative_to(relative_to) if relative_to else path
            parts += [f"![{dataset}: validation metric per epoch]({shown.as_posix()})", ""]
    if paper:
        parts += paper_section(results, paper)
    return "\n".join(parts).rstrip() + "\n"


def aggregate(results_folder: Path, output: Path, *, title: str, paper_path: Path | None = None) -> str:
    """Read ``results_folder``, write the markdown to ``output`` and the PNGs beside it; return the markdown."""
    results = load_results(results_folder)
    if not results:
        raise SystemExit(f"no finished result files in {results_folder}; run the runner first")
    stem = output.stem
    figures = {}
    for dataset in _order({r["job"]["dataset"] for r in results}, BENCHMARK_DATASETS):
        path = convergence_plot(results, dataset, output.parent / "figures" / f"convergence_{stem}_{dataset}.png")
        if path is not None:
            figures[dataset] = path
    paper = None
    if paper_path is not None and paper_path.exists():
        paper = json.loads(paper_path.read_text(encoding="utf-8"))
    text = render(results, title=title, figures=figures, relative_to=output.parent, paper=paper)
    output.write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", help="names the default folders (default: cpu)")
    parser.add_argument("--results", type=Path, help="result files (default: evaluation/results/benchmark/<profile>)")
    parser.add_argument(
        "--output", type=Path, help="markdown file (default: evaluation/results/benchmark_<profile>.md)"
    )
    parser.add_argument(
        "--paper", type=Path, default=RESULTS / "paper_tables.json", help="the paper's tables, when present"
    )
    args = parser.parse_args(argv)
    results = args.results or RESULTS / "benchmark" / args.profile
    output = args.output or RESULTS / f"benchmark_{args.profile}.md"
    aggregate(results, output, title=f"Benchmark: profile `{args.profile}`", paper_path=args.paper)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

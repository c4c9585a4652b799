"""Few labels, many texts: G-Loss (with and without an unlabelled pool) against SetFit and the other losses.

A job is one (dataset, labelled texts per class, seed, row). The seed draws the labelled subset
(``shots`` texts of each class from train, all of a class that has fewer); the rest of train,
labels removed, is the unlabelled pool (a seeded sample of at most ``pool_size``); the test
split is a stratified subset of ``test_size`` texts, the same for every seed and row. So the rows
of one (dataset, shots, seed) see the same labelled texts: the comparison across seeds is paired.

Rows, all from the bundled MiniLM:

- ``zero-shot``: the untrained body;
- ``label-spreading``: scikit-learn's ``LabelSpreading`` (kNN kernel) on the frozen embeddings of the
  labelled texts and the pool (propagation without training);
- ``setfit``: SetFit 1.2 itself with its defaults (CosineSimilarityLoss on generated pairs, a logistic head);
- ``ce``, ``supcon``, ``batch-all-triplet``, ``gloss``: the registry's losses with class-balanced batches;
- ``gloss+pool``: G-Loss with the pool as unlabelled nodes (``SemiSupervisedBatchSampler``; every batch
  holds ``batch_size`` labelled texts plus as many unlabelled ones);
- ``gloss+pool@knn``: the same on a 10-nearest-neighbour graph, the best of the pool variants
  measured in ``evaluation/results/few_shot_variants.md`` (MR and R8, 8 per class, 3 seeds: the dense
  graph with the pool lost 1-4 points to labelled-only G-Loss; the kNN graph tied it);
- ``gloss-setfit``: G-Loss through the SetFit adapter (``GraphGuidedTrainer``).

Variant rows (``VARIANT_ROWS``, run with ``--rows``) try what the semi-supervised literature does
with the pool: more unlabelled nodes per batch, an entropy term, a labelled warm-up, pseudo-labels.

Every trained row gets ``steps`` optimizer steps of ``batch_size`` labelled texts (an epoch of 16
texts is one step, so the budget is in steps, not epochs) and no epoch selection. Every row is
scored by the same logistic head on its frozen embeddings of the labelled texts, and by its own
native head where it has one (SetFit's head; the propagation head for the G-Loss rows; the
predictions of ``LabelSpreading``).

Run from the repository root (resumable: finished jobs are skipped)::

    python -m evaluation.benchmarks.few_shot --data-root ../shared/data
    python -m evaluation.benchmarks.few_shot --report-only   # tables and plot from the finished jobs
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parents[1] / "results" / "few_shot"
REPORT = Path(__file__).resolve().parents[1] / "results" / "few_shot.md"

ROWS = ("zero-shot", "label-spreading", "setfit", "ce", "supcon", "batch-all-triplet", "gloss", "gloss+pool",
        "gloss+pool@knn", "gloss-setfit")


@dataclass(frozen=True)
class Variant:
    """How a G-Loss row trains: issue 13's candidates for making the unlabelled pool count.

    Attributes:
        pool: the pool joins the graph as unlabelled nodes (``SemiSupervisedBatchSampler``).
        unlabelled_fraction: share of a batch given to the pool (``None``: the profile's).
        loss_options: keyword arguments of `GraphGuidedLoss` on top of the registry's defaults.
        warmup: share of the steps trained on the labelled texts alone before the pool (or the
            pseudo-labels) joins; the two phases have a learning-rate schedule each.
        pseudo_per_class: after the warm-up, this many pool texts per class (``0``: as many as
            ``shots``) whose propagated label is the most confident (the propagation head on
            the warmed-up embeddings of the labelled texts; Iscen et al. 2019) join the labelled
            texts with that label for the rest of the steps; ``None``: no pseudo-labels.
    """

    pool: bool = False
    unlabelled_fraction: float | None = None
    loss_options: tuple[tuple[str, Any], ...] = ()
    warmup: float = 0.0
    pseudo_per_class: int | None = None

    @property
    def reads_pool(self) -> bool:
        """The row sees the pool: as graph nodes, or to draw pseudo-labels from."""
        return self.pool or self.pseudo_per_class is not None


GLOSS_ROWS = {
    "gloss": Variant(),
    "gloss+pool": Variant(pool=True),
    "gloss+pool@knn": Variant(pool=True, loss_options=(("graph", "knn"), ("num_neighbors", 10))),
    "gloss+pool@u75": Variant(pool=True, unlabelled_fraction=0.75),
    "gloss+pool@entropy": Variant(pool=True, loss_options=(("unlabelled_weight", 0.1),)),
    "gloss+pool@warmup": Variant(pool=True, warmup=0.5),
    "gloss+pseudo": Variant(warmup=0.5, pseudo_per_class=0),
    "gloss+pool+pseudo": Variant(pool=True, warmup=0.5, pseudo_per_class=0),
}
"""The G-Loss rows trained with SentenceTransformerTrainer, by name; those not in `ROWS` are
variants (``--rows`` runs them; their results go to their own folder with ``--results``)."""

VARIANT_ROWS = tuple(row for row in GLOSS_ROWS if row not in ROWS)
ALL_ROWS = (*ROWS, *VARIANT_ROWS)

TRAINED_WITH_ST = {"ce": "ce", "supcon": "supcon", "batch-all-triplet": "batch-all-triplet",
                   **{row: "gloss" for row in GLOSS_ROWS}}
"""Rows trained with SentenceTransformerTrainer -> their registry loss."""


@dataclass(frozen=True)
class FewShotProfile:
    """The budget of the few-shot benchmark, the same for every row.

    Attributes:
        datasets: benchmark datasets (names under ``--data-root``, or ``sample:mr``).
        shots: labelled texts per class.
        seeds: seeds (each draws a labelled subset and a pool).
        steps: optimizer steps of every trained row.
        batch_size: labelled texts per batch.
        learning_rate: encoder learning rate of the st-gloss rows (SetFit keeps its own default).
        max_seq_length: tokens per text.
        pool_size: unlabelled texts at most (``gloss+pool``, ``label-spreading``).
        test_size: stratified test subset, the same for every seed.
        unlabelled_fraction: share of a ``gloss+pool`` batch given to unlabelled texts.
    """

    datasets: tuple[str, ...] = ("mr", "r8", "r52")
    shots: tuple[int, ...] = (8, 16, 64)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    steps: int = 40
    batch_size: int = 16
    learning_rate: float = 5e-5
    max_seq_length: int = 64
    pool_size: int = 1000
    test_size: int = 500
    unlabelled_fraction: float = 0.5


PROFILE = FewShotProfile()
"""The default budget: 3 datasets x 3 budgets x 5 seeds x 10 rows = 450 jobs: 40 steps of 16 texts at
64 tokens, a 500-text stratified test subset, a 1,000-text pool, the untrained body's embeddings
encoded once per dataset. Timed on the first run (MR and R8, 8 per class, 2 cores, 1,000 test texts):
about 4-5 minutes per (dataset, budget, seed) for 9 rows, 3.5 hours in all; halving the test subset
and the pool and caching the untrained rows aimed at about 3 hours. Measured: the 450 runs took 5.7
hours (R52 at 64 per class and the 10th row cost more than the timing run saw); the report gives the
seconds per run. Fewer seeds or a smaller R52 budget would fit 3 hours, at the price of the spread."""


@dataclass(frozen=True)
class FewShotJob:
    dataset: str
    shots: int
    seed: int
    row: str

    @property
    def key(self) -> str:
        """The result file's stem.

        Examples:
            >>> FewShotJob("mr", 8, 0, "gloss+pool").key
            'mr__k8__seed0__gloss+pool'
        """
        return f"{self.dataset.replace(':', '-')}__k{self.shots}__seed{self.seed}__{self.row}"


def plan(profile: FewShotProfile, rows: tuple[str, ...] = ROWS) -> list[FewShotJob]:
    """Every job, a whole (dataset, shots, seed) at a time, so a partial run gives complete pairings;
    the smallest budget of every dataset first (8 and 16 per class are where the goal is measured)."""
    return [FewShotJob(d, k, s, r) for k in profile.shots for d in profile.datasets for s in profile.seeds
            for r in rows]


def draw(labels: np.ndarray, shots: int, seed: int, pool_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(labelled rows, pool rows)`` of a training split: ``shots`` per class, then a sample of the rest.

    Examples:
        >>> labelled, pool = draw(np.array([0] * 5 + [1] * 3), 2, 0, 10)
        >>> len(labelled), len(pool), sorted(set(labelled) & set(pool))
        (4, 4, [])
    """
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        chosen.append(rng.permutation(rows)[:shots])
    labelled = np.sort(np.concatenate(chosen))
    rest = np.setdiff1d(np.arange(len(labels)), labelled)
    pool = np.sort(rng.permutation(rest)[:pool_size])
    return labelled, pool


@functools.lru_cache(maxsize=4)
def _read(dataset: str, data_root):
    """A dataset's splits, read once per process (every job of it draws from the same splits)."""
    from st_gloss.evaluation.pipeline import load_data

    return load_data(dataset, data_root=data_root)


def _load(job: FewShotJob, profile: FewShotProfile, data_root):
    from st_gloss.evaluation.splits import stratified_subset

    data = _read(job.dataset, data_root)
    train, test = data["train"], data["test"]
    labelled, pool = draw(train.labels, job.shots, job.seed, profile.pool_size)
    rows = stratified_subset(test.labels, profile.test_size, seed=0)
    return data, ([train.texts[i] for i in labelled], train.labels[labelled]), [train.texts[i] for i in pool], (
        [test.texts[i] for i in rows], test.labels[rows])


def _scores(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> dict[str, float]:
    from st_gloss.evaluation.knn import class_scores

    accuracy, macro_f1, _ = class_scores(np.asarray(truth), np.asarray(predicted), num_classes)
    return {"accuracy": accuracy, "macro_f1": macro_f1}


def _encode(model, texts, batch_size=64):
    from st_gloss.evaluation.encode import encode_texts

    return encode_texts(model, list(texts), batch_size=batch_size, show_progress_bar=False)


UNTRAINED_ROWS = ("zero-shot", "label-spreading")
"""Rows of the untrained body: one model and one cache of its embeddings per process serve every
seed and budget (the same text always has the same untrained embedding)."""

_UNTRAINED_EMBEDDINGS: dict[tuple, dict[str, np.ndarray]] = {}


@functools.lru_cache(maxsize=2)
def _untrained(model_name, max_seq_length: int):
    from st_gloss.evaluation.models import load_model

    return load_model(model_name, max_seq_length=max_seq_length)


def _untrained_encode(key: tuple, body, texts) -> np.ndarray:
    """`_encode` through the cache of the untrained body's embeddings: only new texts are encoded."""
    cache = _UNTRAINED_EMBEDDINGS.setdefault(key, {})
    missing = [t for t in dict.fromkeys(texts) if t not in cache]
    if missing:
        cache.update(zip(missing, _encode(body, missing)))
    return np.stack([cache[t] for t in texts]) if len(texts) else np.zeros((0, 0), dtype=np.float32)


def _st_train(row: str, model, texts, labels, pool, num_classes, profile: FewShotProfile, seed: int, shots: int):
    from st_gloss.registry import build_loss

    variant = GLOSS_ROWS.get(row, Variant())  # the other losses: one plain run
    if variant.loss_options:
        from st_gloss import GraphGuidedLoss
        from st_gloss.registry import DEFAULT_OPTIONS

        loss = GraphGuidedLoss(model, labelled_fraction=DEFAULT_OPTIONS["labelled_fraction"],
                               sigma=DEFAULT_OPTIONS["sigma"], **dict(variant.loss_options))
    else:
        loss = build_loss(TRAINED_WITH_ST[row], model, num_classes)
    if hasattr(loss, "calibrate_sigma"):
        loss.calibrate_sigma(list(texts), seed=seed, show_progress_bar=False)
    texts, labels = list(texts), [int(y) for y in labels]
    warm = round(variant.warmup * profile.steps)
    info: dict[str, Any] = {}
    if warm:
        _trainer_run(model, loss, texts, labels, [], profile, seed, warm)
    if variant.pseudo_per_class is not None:
        extra_texts, extra_labels = pseudo_labels(model, texts, labels, pool, num_classes,
                                                  variant.pseudo_per_class or shots, seed)
        info["pseudo_labels"] = len(extra_texts)
        texts, labels = texts + extra_texts, labels + extra_labels
    _trainer_run(model, loss, texts, labels, list(pool) if variant.pool else [], profile, seed,
                 profile.steps - warm, variant.unlabelled_fraction)
    return model, info


def _trainer_run(model, loss, texts, labels, pool, profile: FewShotProfile, seed: int, steps: int,
                 unlabelled_fraction: float | None = None):
    """``steps`` optimizer steps of ``profile.batch_size`` labelled texts (plus the pool's share)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer

    from st_gloss.functional import UNLABELLED
    from st_gloss.samplers import SemiSupervisedBatchSampler
    from st_gloss.training import training_arguments

    batch_size, extra = profile.batch_size, {}
    if pool:
        fraction = profile.unlabelled_fraction if unlabelled_fraction is None else unlabelled_fraction
        batch_size = round(profile.batch_size / (1.0 - fraction))
        extra["batch_sampler"] = SemiSupervisedBatchSampler.with_options(unlabelled_fraction=fraction)
    dataset = Dataset.from_dict({"text": texts + list(pool), "label": labels + [UNLABELLED] * len(pool)})
    with tempfile.TemporaryDirectory(prefix="st-gloss-few-shot-") as scratch:
        args = training_arguments(scratch, epochs=1, batch_size=batch_size, learning_rate=profile.learning_rate,
                                  warmup_ratio=0.1, seed=seed, show_progress_bar=False, save_strategy="no",
                                  max_steps=steps, **extra)
        SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss).train()


def pseudo_labels(model, texts, labels, pool, num_classes: int, per_class: int, seed: int):
    """The ``per_class`` most confident pool texts of each class under the propagation head.

    The head propagates each pool text against the labelled texts (class mass normalised), so a
    class central in the pool does not take every pseudo-label; each class gets at most
    ``per_class`` texts, those predicted as it with the highest probability.
    """
    from st_gloss.classifier.heads import PropagationHead

    if not pool:
        return [], []
    head = PropagationHead(seed=seed).fit(_encode(model, texts), np.asarray(labels), num_classes)
    proba = head.predict_proba(_encode(model, pool))
    predicted, confidence = proba.argmax(axis=1), proba.max(axis=1)
    chosen_texts, chosen_labels = [], []
    for c in range(num_classes):
        rows = np.flatnonzero(predicted == c)
        for i in rows[np.argsort(-confidence[rows], kind="stable")][:per_class]:
            chosen_texts.append(pool[i])
            chosen_labels.append(c)
    return chosen_texts, chosen_labels


def _setfit_train(row: str, texts, labels, profile: FewShotProfile, seed: int, model_name):
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from st_gloss.evaluation.models import resolve_model_name

    model = SetFitModel.from_pretrained(resolve_model_name(model_name))
    model.model_body.max_seq_length = profile.max_seq_length
    train = Dataset.from_dict({"text": list(texts), "label": [int(y) for y in labels]})
    with tempfile.TemporaryDirectory(prefix="st-gloss-setfit-") as scratch:  # SetFit's default is ./checkpoints
        args = TrainingArguments(output_dir=scratch, batch_size=profile.batch_size, max_steps=profile.steps,
                                 seed=seed, max_length=profile.max_seq_length, show_progress_bar=False,
                                 report_to="none", save_strategy="no")
        if row == "gloss-setfit":
            from st_gloss.integrations.setfit import GraphGuidedTrainer

            trainer = GraphGuidedTrainer(model=model, args=args, train_dataset=train)
        else:
            trainer = Trainer(model=model, args=args, train_dataset=train)
        trainer.train()
    return model


def run_job(job: FewShotJob, profile: FewShotProfile, *, data_root=None, model_name: str | None = None):
    """Train (or not) the row of one job and score it; the result as a JSON-safe dict."""
    import transformers

    from st_gloss.classifier.heads import LogisticHead, PropagationHead
    from st_gloss.evaluation.models import load_model
    from st_gloss.evaluation.report import environment_info

    started = time.perf_counter()
    transformers.set_seed(job.seed)
    data, (texts, labels), pool, (test_texts, test_labels) = _load(job, profile, data_root)
    num_classes = data.num_classes
    native, info = None, {}
    if job.row in ("setfit", "gloss-setfit"):
        setfit_model = _setfit_train(job.row, texts, labels, profile, job.seed, model_name)
        body = setfit_model.model_body
        native = _scores(test_labels, np.asarray(setfit_model.predict(list(test_texts))).astype(int), num_classes)
    else:
        body = (_untrained(model_name, profile.max_seq_length) if job.row in UNTRAINED_ROWS
                else load_model(model_name, max_seq_length=profile.max_seq_length))
        if job.row in TRAINED_WITH_ST:
            body, info = _st_train(job.row, body, texts, labels, pool, num_classes, profile, job.seed, job.shots)
    train_seconds = time.perf_counter() - started
    encode = functools.partial(_untrained_encode, (model_name, profile.max_seq_length)) \
        if job.row in UNTRAINED_ROWS else _encode
    x, test_x = encode(body, texts), encode(body, test_texts)
    logistic = LogisticHead(seed=job.seed).fit(x, labels, num_classes)
    result_scores = {"logistic": _scores(test_labels, logistic.predict(test_x), num_classes)}
    if job.row.startswith("gloss"):
        propagation = PropagationHead(seed=job.seed).fit(x, labels, num_classes)
        native = _scores(test_labels, propagation.predict(test_x), num_classes)
    if job.row == "label-spreading":
        from sklearn.semi_supervised import LabelSpreading

        pool_x = encode(body, pool) if pool else np.zeros((0, x.shape[1]), dtype=np.float32)
        spreading = LabelSpreading(kernel="knn", n_neighbors=min(10, len(x) + len(pool_x) - 1), max_iter=100)
        spreading.fit(np.vstack([x, pool_x]), np.concatenate([labels, -np.ones(len(pool_x), dtype=np.int64)]))
        native = _scores(test_labels, spreading.predict(test_x), num_classes)
    result_scores["native"] = native
    return {
        "status": "finished",
        "job": asdict(job),
        "scores": result_scores,
        "n_labelled": len(texts),
        "n_pool": len(pool) if job.row == "label-spreading" or GLOSS_ROWS.get(job.row, Variant()).reads_pool else 0,
        **info,
        "n_test": len(test_texts),
        "train_seconds": train_seconds,
        "seconds": time.perf_counter() - started,
        "profile": asdict(profile),
        "environment": environment_info(),
    }


def run(jobs: list[FewShotJob], profile: FewShotProfile, results: Path, *, data_root=None,
        model_name: str | None = None, max_jobs: int | None = None, echo=print) -> int:
    """Run the jobs whose result file is missing (at most ``max_jobs``); the number run."""
    from st_gloss.evaluation.report import write_json

    budget = _budget(asdict(profile))
    for job in jobs:
        path = results / f"{job.key}.json"
        if not path.exists():
            continue
        old = _budget(json.loads(path.read_text(encoding="utf-8")).get("profile", {}))
        if old != budget:
            changed = ", ".join(f"{k} {old.get(k)!r} here, {v!r} now" for k, v in budget.items() if old.get(k) != v)
            raise ValueError(
                f"{path} was made with another budget ({changed}); resuming would mix "
                "budgets in one table: pass another --results folder, or move the old results away")
    pending = [job for job in jobs if not (results / f"{job.key}.json").exists()]
    echo(f"{len(jobs) - len(pending)} of {len(jobs)} jobs finished already; {len(pending)} to run")
    done = 0
    for job in pending[:max_jobs] if max_jobs is not None else pending:
        result = run_job(job, profile, data_root=data_root, model_name=model_name)
        results.mkdir(parents=True, exist_ok=True)
        write_json(result, results / f"{job.key}.json")
        done += 1
        native = result["scores"]["native"]
        echo(f"[{done}/{len(pending)}] {job.key}: logistic {result['scores']['logistic']['accuracy']:.4f}"
             + (f", native {native['accuracy']:.4f}" if native else "") + f" in {result['seconds']:.0f}s")
    return done


def _budget(profile: dict[str, Any]) -> dict[str, Any]:
    """The parts of a profile that change a job's result (not which jobs run)."""
    return {k: v for k, v in profile.items() if k not in ("datasets", "shots", "seeds")}


def load_results(results: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(results.glob("*.json"))]


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def report(results: list[dict[str, Any]], command: str, reference: str = "setfit") -> str:
    """Markdown: per dataset and budget, every row's accuracy and macro-F1 (mean ± sd over seeds),
    its native head, the paired difference to ``reference`` over the shared seeds, and time per run."""
    cells: dict[tuple[str, int, str], dict[int, dict]] = defaultdict(dict)
    for r in results:
        job = r["job"]
        cells[(job["dataset"], job["shots"], job["row"])][job["seed"]] = r
    total = sum(r["seconds"] for r in results)
    lines = ["# Few labels: G-Loss against SetFit", "", f"Command: `{command}`", "",
             f"{len(results)} runs, {total / 3600:.1f} hours of run time in all (the sum of the runs' seconds).", ""]
    for dataset in sorted({d for d, _, _ in cells}):
        for shots in sorted({k for d, k, _ in cells if d == dataset}):
            lines += [f"### {dataset}, {shots} labelled texts per class", "",
                      f"| row | accuracy (logistic head) | macro-F1 | native head accuracy | vs {reference}: "
                      "paired difference (wins) | seconds per run |",
                      "|---|---:|---:|---:|---:|---:|"]
            ref = cells.get((dataset, shots, reference), {})
            for row in ALL_ROWS:
                runs = cells.get((dataset, shots, row))
                if not runs:
                    continue
                acc = [r["scores"]["logistic"]["accuracy"] for r in runs.values()]
                f1 = [r["scores"]["logistic"]["macro_f1"] for r in runs.values()]
                native = [r["scores"]["native"]["accuracy"] for r in runs.values() if r["scores"]["native"]]
                shared = sorted(set(runs) & set(ref))
                paired = "–"
                if row != reference and shared:
                    diffs = [runs[s]["scores"]["logistic"]["accuracy"] - ref[s]["scores"]["logistic"]["accuracy"]
                             for s in shared]
                    spread = f" ± {statistics.stdev(diffs):.3f}" if len(diffs) > 1 else ""
                    paired = f"{statistics.fmean(diffs):+.3f}{spread} ({sum(d > 0 for d in diffs)}/{len(diffs)})"
                seconds = statistics.fmean(r["seconds"] for r in runs.values())
                lines.append(f"| {row} | {_mean_sd(acc)} | {_mean_sd(f1)} | {_mean_sd(native)} | {paired} | "
                             f"{seconds:.0f} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def plot(results: list[dict[str, Any]], path: Path) -> Path | None:
    """Accuracy (logistic head, mean over seeds) against labelled texts per class: a panel per dataset."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in results:
        job = r["job"]
        series[job["dataset"]][job["row"]][job["shots"]].append(r["scores"]["logistic"]["accuracy"])
    if not series:
        return None
    datasets = sorted(series)
    figure = Figure(figsize=(4.2 * len(datasets), 3.8))
    FigureCanvasAgg(figure)
    for number, dataset in enumerate(datasets, start=1):
        axes = figure.add_subplot(1, len(datasets), number)
        for row in ALL_ROWS:
            points = sorted(series[dataset].get(row, {}).items())
            if not points:
                continue
            axes.plot([k for k, _ in points], [statistics.fmean(v) for _, v in points], marker="o", label=row,
                      linewidth=2.4 if row.startswith("gloss") else 1.2,
                      linestyle="-" if row.startswith(("gloss", "setfit")) else ":")
        axes.set_xscale("log", base=2)
        axes.set_xlabel("labelled texts per class")
        axes.set_ylabel("test accuracy (logistic head)")
        axes.set_title(dataset)
        axes.grid(alpha=0.3)
    figure.axes[0].legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", help="folder of the datasets (default: $ST_GLOSS_DATA)")
    parser.add_argument("--datasets", help="comma-separated [default: mr,r8,r52]")
    parser.add_argument("--shots", help="comma-separated labelled texts per class [default: 8,16,64]")
    parser.add_argument("--seeds", help="comma-separated [default: 0,1,2,3,4]")
    parser.add_argument("--rows", help=f"comma-separated rows [default: {','.join(ROWS)}; variants: "
                        f"{','.join(VARIANT_ROWS)}]")
    parser.add_argument("--steps", type=int, help=f"optimizer steps [default: {PROFILE.steps}]")
    parser.add_argument("--test-size", type=int, help=f"test texts [default: {PROFILE.test_size}]")
    parser.add_argument("--pool-size", type=int, help=f"unlabelled texts at most [default: {PROFILE.pool_size}]")
    parser.add_argument("--model", help="model folder (default: the bundled MiniLM)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the result files")
    parser.add_argument("--report", type=Path, default=REPORT, help="the Markdown report")
    parser.add_argument("--max-jobs", type=int, help="stop after this many jobs (rerun to continue)")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report and the plot")
    parser.add_argument("--reference", default="setfit", help="the row of the paired differences [default: setfit]")
    args = parser.parse_args(argv)

    def csv(text, kind=str):
        return None if text is None else tuple(kind(p.strip()) for p in text.split(",") if p.strip())

    changes = {"datasets": csv(args.datasets), "shots": csv(args.shots, int), "seeds": csv(args.seeds, int),
               "steps": args.steps, "test_size": args.test_size, "pool_size": args.pool_size}
    profile = replace(PROFILE, **{k: v for k, v in changes.items() if v is not None})
    rows = csv(args.rows) or ROWS
    unknown = sorted(set(rows) - set(ALL_ROWS))
    if unknown:
        print(f"error: unknown row(s) {', '.join(unknown)}; choose from {', '.join(ALL_ROWS)}",
              file=sys.stderr)
        return 2
    if not args.report_only:
        try:
            run(plan(profile, rows), profile, args.results, data_root=args.data_root, model_name=args.model,
                max_jobs=args.max_jobs)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("\ninterrupted; rerun the same command to resume", file=sys.stderr)
            return 130
    results = load_results(args.results)
    if results:
        given = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--report-only"]
        command = shlex.join(["python", "-m", "evaluation.benchmarks.few_shot", *given])  # the run, not the rewrite
        args.report.write_text(report(results, command, reference=args.reference), encoding="utf-8")
        figure = plot(results, args.report.parent / "figures" / f"{args.report.stem}.png")
        print(f"wrote {args.report}" + (f" and {figure}" if figure else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The benchmark runner: datasets x losses x seeds under a named profile, one result file per job.

A job is one (dataset, loss, seed). It trains one ``st-gloss train`` run per learning rate of the
profile (each in its own work folder, validation only), keeps the learning rate with the best
validation score, measures the test split of that run once, and writes
``<results>/<dataset>__<loss>__seed<k>.json``.

Resumable: a job whose result file exists is skipped; a run whose ``metrics.json`` says
``finished`` is reused; a run that was interrupted (no ``metrics.json``, or one that says
``running``/``interrupted``) is deleted and run again. So a long benchmark can be run in pieces
(``--max-jobs``, ``--datasets``, Ctrl-C) by repeating the same command.

Run from the repository root::

    PYTHONPATH=. python -m evaluation.benchmarks.runner --profile cpu --data-root ../shared/data \\
        --datasets mr,r8 --seeds 0 --max-jobs 5
    PYTHONPATH=. python -m evaluation.benchmarks.runner --profile cpu --list   # what is done, what is left
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.benchmarks.profiles import PROFILES, ZERO_SHOT, Profile
from st_gloss.evaluation.report import environment_info, write_json

REPOSITORY = Path(__file__).resolve().parents[2]
RESULTS = REPOSITORY / "evaluation" / "results" / "benchmark"
WORK = REPOSITORY / "runs" / "benchmark"
MODEL_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class Job:
    """One (dataset, loss, seed) of a benchmark, with optional loss options on top of the profile's.

    Examples:
        >>> Job("r8", "gloss+ce", 0).key
        'r8__gloss+ce__seed0'
        >>> Job("r8", "gloss", 1, (("labelled_fraction", 0.5),), "lf0.5").key
        'r8__gloss__lf0.5__seed1'
    """

    dataset: str
    loss: str
    seed: int
    options: tuple[tuple[str, Any], ...] = ()
    tag: str = ""

    @property
    def key(self) -> str:
        middle = f"__{self.tag}" if self.tag else ""
        return f"{self.dataset}__{self.loss}{middle}__seed{self.seed}"


def plan(
    profile: Profile,
    datasets: Iterable[str] | None = None,
    losses: Iterable[str] | None = None,
    seeds: Iterable[int] | None = None,
) -> list[Job]:
    """The jobs of a benchmark, dataset by dataset (so a partial run finishes whole datasets first).

    Examples:
        >>> [j.key for j in plan(PROFILES["cpu"], ["mr"], ["gloss", "ce"], [0])]
        ['mr__gloss__seed0', 'mr__ce__seed0']
    """
    return [
        Job(dataset, loss, seed)
        for dataset in (datasets or profile.datasets)
        for seed in (seeds if seeds is not None else profile.seeds)
        for loss in (losses or profile.losses)
    ]


HEAD_FIGURE = "head_logistic_accuracy"
"""A test key every current result has: files written before the classifier heads lack it."""


def job_state(path: Path) -> str:
    """``"done"``, ``"stale"`` (finished, but written before the head figures) or ``"pending"``.

    Works for a job's result file and for a run's ``metrics.json``: a run finished before
    ``st-gloss train`` kept its classifier has neither the head figures nor a ``classifier`` entry.
    A stale file is run again, so reused results never hide missing head figures.
    """
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "pending"
    if not isinstance(payload, dict) or payload.get("status") != "finished":
        return "pending"
    if HEAD_FIGURE in (payload.get("test") or {}) or "classifier" in payload:
        return "done"
    return "stale"


_REUSED = {True: ("done",), False: ("done", "stale")}


def is_finished(path: Path) -> bool:
    """Whether ``path`` is a finished, current result (:func:`job_state` ``"done"``)."""
    return job_state(path) == "done"


def _config(
    profile: Profile,
    job: Job,
    output: Path,
    learning_rate: float,
    data_root,
    evaluate_test: bool,
    model: str | None,
    show_progress_bar: bool,
):
    from st_gloss.training import TrainConfig

    options = profile.options_for(job.loss) if job.loss != ZERO_SHOT else {}
    options.update(dict(job.options))
    return TrainConfig(
        data=job.dataset,
        loss=job.loss,
        output=str(output),
        model=model if model is not None else profile.model,
        data_root=None if data_root is None else str(data_root),
        epochs=profile.epochs,
        batch_size=profile.batch_size,
        learning_rate=learning_rate,
        warmup_ratio=profile.warmup_ratio,
        seed=job.seed,
        max_seq_length=profile.max_seq_length,
        eval_metric=profile.eval_metric_for(job.loss),
        knn_index_examples=profile.knn_index_examples,
        patience=profile.patience,
        max_train_examples=profile.max_train_examples,
        max_val_examples=profile.max_val_examples,
        max_test_examples=profile.max_test_examples,
        evaluate_test=evaluate_test,
        overwrite=True,
        show_progress_bar=show_progress_bar,
        **options,
    )


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    curve = metrics.get("curve", [])
    trained = [e["train_seconds"] for e in curve if e.get("epoch", 0) > 0]
    return {
        "best_epoch": metrics.get("best_epoch"),
        "best_val": metrics.get("best_val"),
        "epochs_run": metrics.get("epochs_run"),
        "stopped_early": metrics.get("stopped_early"),
        "seconds_per_epoch": sum(trained) / len(trained) if trained else None,
        "val_seconds_per_epoch": (sum(e["eval_seconds"] for e in curve) / len(curve)) if curve else None,
    }


def run_job(
    job: Job,
    profile: Profile,
    results: Path,
    work: Path,
    *,
    data_root=None,
    model: str | None = None,
    keep_models: bool = False,
    show_progress_bar: bool = False,
    require_heads: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run (or resume) one job and write its result file; return the result.

    With ``require_heads`` (the default) a result file written before the head figures existed
    is run again; without, it is reused (the sensitivity sweep reads kNN and silhouette only).

    Raises:
        st_gloss.training.TrainingInterrupted: after Ctrl-C (rerun to resume).
    """
    from st_gloss.training import METRICS_FILE, evaluate_untrained, measure_test, prepare_data, train

    target = results / f"{job.key}.json"
    if job_state(target) in _REUSED[require_heads]:
        return json.loads(target.read_text(encoding="utf-8"))
    started = time.perf_counter()
    job_work = work / job.key
    rates = profile.learning_rates if job.loss != ZERO_SHOT else (profile.learning_rates[0],)
    single = len(rates) == 1
    trials = []
    for rate in rates:
        folder = job_work / f"lr{rate:g}"
        if not is_finished(folder / METRICS_FILE):
            if folder.exists():
                why = ("predates the classifier heads" if job_state(folder / METRICS_FILE) == "stale"
                       else "was interrupted")
                echo(f"  {job.key}: lr {rate:g} {why}; running it again from the start")
                shutil.rmtree(folder)
            config = _config(profile, job, folder, rate, data_root, single, model, show_progress_bar)
            (evaluate_untrained if job.loss == ZERO_SHOT else train)(config, echo=lambda line: echo("  " + line))
        metrics = json.loads((folder / METRICS_FILE).read_text(encoding="utf-8"))
        trials.append((rate, folder, metrics))
    rate, folder, chosen = max(trials, key=lambda t: (t[2]["best_val"], -t[0]))  # ties: the smaller rate
    if "test" not in chosen and not any((folder / name).exists() for name in MODEL_FILES):
        # Its weights were dropped (a finished job whose result file was deleted): train it again.
        echo(f"  {job.key}: the weights of lr {rate:g} are gone; training it again to measure the test split")
        shutil.rmtree(folder)
        config = _config(profile, job, folder, rate, data_root, True, model, show_progress_bar)
        chosen = train(config, echo=lambda line: echo("  " + line))
    if "test" not in chosen:
        import dataclasses

        from sentence_transformers import SentenceTransformer

        from st_gloss.classifier.serialization import has_heads, load_heads
        from st_gloss.training import TrainConfig

        config = TrainConfig(**chosen["config"])
        data = prepare_data(config, echo=lambda line: None)
        best = SentenceTransformer(str(folder))
        linear = None
        if has_heads(folder):  # the trained linear head of a +ce loss, as train() kept it
            _, heads, _ = load_heads(folder)
            linear = heads["linear"].tensors() if "linear" in heads else None
        chosen["test"], chosen["test_per_class"], _ = measure_test(best, data, config, linear=linear)
        chosen["config"] = dataclasses.asdict(dataclasses.replace(config, evaluate_test=True))
    result = {
        "status": "finished",
        "job": {
            "dataset": job.dataset,
            "loss": job.loss,
            "seed": job.seed,
            "options": dict(job.options),
            "tag": job.tag,
            "key": job.key,
        },
        "profile": profile.name,
        "learning_rate": rate,
        "trials": [{"learning_rate": r, **_summary(m)} for r, _, m in trials],
        **_summary(chosen),
        "eval_metric": chosen["eval_metric"],
        "loss_config": chosen.get("loss", {}).get("config", {}),
        "data": chosen["data"],
        "curve": chosen["curve"],
        "test": chosen["test"],
        "test_per_class": chosen.get("test_per_class"),
        "head_learning_rate": chosen.get("head_learning_rate"),
        "job_seconds": time.perf_counter() - started,
        "config": chosen["config"],
        "environment": environment_info(),
    }
    results.mkdir(parents=True, exist_ok=True)
    write_json(result, target)
    if not keep_models:
        for _, trial_folder, _ in trials:
            for name in MODEL_FILES:
                (trial_folder / name).unlink(missing_ok=True)
    return result


def run(
    jobs: list[Job],
    profile: Profile,
    results: Path,
    work: Path,
    *,
    max_jobs: int | None = None,
    stop_after_seconds: float | None = None,
    require_heads: bool = True,
    echo: Callable[[str], None] = print,
    **kwargs,
) -> list[dict[str, Any]]:
    """Run the unfinished jobs in order (at most ``max_jobs``); return their results.

    ``stop_after_seconds``: start no job once this much time has passed (a job under way runs to
    its end), so a run fits a machine held for a fixed time; rerun to continue.
    ``require_heads``: see :func:`run_job`.
    """
    started = time.perf_counter()
    states = {job.key: job_state(results / f"{job.key}.json") for job in jobs}
    pending = [job for job in jobs if states[job.key] not in _REUSED[require_heads]]
    stale = sum(state == "stale" for state in states.values()) if require_heads else 0
    echo(f"{len(jobs) - len(pending)} of {len(jobs)} jobs finished already; {len(pending)} to run"
         + (f" ({stale} of them finished before the head figures existed: run again)" if stale else ""))
    done = []
    for number, job in enumerate(pending[:max_jobs] if max_jobs is not None else pending, start=1):
        if stop_after_seconds is not None and time.perf_counter() - started >= stop_after_seconds:
            echo(f"time is up ({stop_after_seconds:.0f} s): {len(pending) - number + 1} jobs left; "
                 "rerun to continue")
            break
        echo(f"[{number}/{len(pending)}] {job.key}")
        result = run_job(job, profile, results, work, require_heads=require_heads, echo=echo, **kwargs)
        _report(result, echo)
        done.append(result)
    return done


def _report(result: dict[str, Any], echo: Callable[[str], None]) -> None:
    test = result["test"]
    echo(
        f"  done in {result['job_seconds']:.0f}s: best epoch {result['best_epoch']}, test kNN accuracy "
        f"{test['knn_accuracy']:.4f}, macro-F1 {test['knn_macro_f1']:.4f}, "
        f"silhouette {test['silhouette_macro']:.4f}; heads: "
        + ", ".join(f"{key[5:-9]} {value:.4f}" for key, value in test.items()
                    if key.startswith("head_") and key.endswith("_accuracy"))
    )


def _csv(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--datasets", help="comma-separated (default: the profile's)")
    parser.add_argument("--losses", help="comma-separated (default: the profile's, zero-shot included)")
    parser.add_argument("--seeds", help="comma-separated integers (default: the profile's)")
    parser.add_argument("--data-root", help="folder of the datasets (default: $ST_GLOSS_DATA)")
    parser.add_argument("--model", help="model folder or name (default: the profile's)")
    parser.add_argument(
        "--results", type=Path, help="result files folder (default: evaluation/results/benchmark/<profile>)"
    )
    parser.add_argument("--work", type=Path, help="folder of the runs (default: runs/benchmark/<profile>)")
    parser.add_argument("--max-jobs", type=int, help="stop after this many jobs (rerun to continue)")
    parser.add_argument("--stop-after-minutes", type=float,
                        help="start no job after this many minutes (rerun to continue)")
    parser.add_argument("--keep-models", action="store_true", help="keep the trained weights of every run")
    parser.add_argument("--progress", action="store_true", help="show the trainer's progress bars")
    parser.add_argument("--list", action="store_true", help="list the jobs and whether they are finished")
    args = parser.parse_args(argv)

    from st_gloss.errors import InputError
    from st_gloss.registry import LOSSES
    from st_gloss.training import TrainingInterrupted

    profile = PROFILES[args.profile]
    losses = _csv(args.losses)
    unknown = [loss for loss in losses or [] if loss != ZERO_SHOT and loss not in LOSSES]
    if unknown:
        print(
            f"error: unknown loss(es) {', '.join(unknown)}; choose from {ZERO_SHOT}, {', '.join(LOSSES)}",
            file=sys.stderr,
        )
        return 2
    seeds = None if args.seeds is None else [int(s) for s in _csv(args.seeds)]
    jobs = plan(profile, _csv(args.datasets), losses, seeds)
    results = args.results or RESULTS / profile.name
    work = args.work or WORK / profile.name
    if args.list:
        for job in jobs:
            print(f"{job_state(results / f'{job.key}.json'):<8}{job.key}")
        return 0
    try:
        run(
            jobs,
            profile,
            results,
            work,
            max_jobs=args.max_jobs,
            stop_after_seconds=None if args.stop_after_minutes is None else 60 * args.stop_after_minutes,
            data_root=args.data_root,
            model=args.model,
            keep_models=args.keep_models,
            show_progress_bar=args.progress,
        )
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (TrainingInterrupted, KeyboardInterrupt):
        print("\ninterrupted; rerun the same command to resume (finished jobs are skipped)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

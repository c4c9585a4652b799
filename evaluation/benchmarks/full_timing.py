"""Time the `full` profile before running it: seconds per training step and per encoded text, projected.

Trains ``--steps`` optimizer steps of the real pipeline (``st-gloss train``: the profile's batch
size, learning rate and a ``gloss+ce`` loss, one epoch on a stratified subset of train) for each
(dataset, sequence length), times the encoding of ``--encode`` training texts, and projects the
seconds of one job of the profile on the full splits:

    epochs * (steps per epoch * seconds per step + validation) + test,

where the validation encodes the validation split (kNN queries, silhouette, linear head) and
the kNN index (all of train, or ``knn_index_examples`` of it) and the test encodes train and
test once. Run it with the cores free of other work, from the repository root::

    python -m evaluation.benchmarks.full_timing --data-root ../shared/data \\
        --output evaluation/results/full_timing.md
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from evaluation.benchmarks.profiles import PROFILES

CASES = (("mr", 128), ("r8", 64), ("r8", 128))
"""MR's texts are short (27 tokens on average), so its sequence length changes little."""


def time_case(dataset: str, max_seq_length: int, steps: int, encode: int, data_root: str, echo=print) -> dict:
    """Seconds per step and per encoded text for one (dataset, sequence length), and the split sizes."""
    import torch

    from st_gloss.evaluation.data import load_labelled_data
    from st_gloss.evaluation.models import load_model
    from st_gloss.training import TrainConfig, train

    profile = PROFILES["full"]
    with tempfile.TemporaryDirectory(prefix="st-gloss-timing-") as scratch:
        config = TrainConfig(
            data=dataset, loss="gloss+ce", output=str(Path(scratch) / "run"), data_root=data_root, epochs=1,
            batch_size=profile.batch_size, learning_rate=profile.learning_rates[0], max_seq_length=max_seq_length,
            max_train_examples=steps * profile.batch_size, max_val_examples=64, evaluate_test=False,
            show_progress_bar=False, eval_metric="silhouette", **profile.options_for("gloss+ce"),
        )
        metrics = train(config, echo=lambda line: None)
    epoch = next(e for e in metrics["curve"] if e["epoch"] == 1)
    data = load_labelled_data(dataset, data_root=data_root)
    sizes = {split: len(data[split]) for split in ("train", "val", "test")}
    model = load_model(None, max_seq_length=max_seq_length)
    texts = data["train"].texts[:encode]
    model.encode(texts[:64], batch_size=64)  # warm-up
    started = time.perf_counter()
    model.encode(texts, batch_size=64, convert_to_numpy=True)
    per_text = (time.perf_counter() - started) / len(texts)
    result = {"dataset": dataset, "max_seq_length": max_seq_length, "steps": steps,
              "seconds_per_step": epoch["train_seconds"] / steps, "seconds_per_encoded_text": per_text,
              "sizes": sizes, "torch_threads": torch.get_num_threads()}
    echo(f"{dataset} at {max_seq_length} tokens: {result['seconds_per_step']:.2f} s per step of "
         f"{profile.batch_size}, {1 / per_text:.0f} texts/s encoded")
    return result


def project(case: dict, *, epochs: int, batch_size: int, knn_index_examples: int | None) -> float:
    """Projected seconds of one trained job of the profile on the full splits (``case`` from `time_case`).

    Examples:
        >>> case = {"seconds_per_step": 1.0, "seconds_per_encoded_text": 0.01,
        ...         "sizes": {"train": 3200, "val": 100, "test": 1000}}
        >>> project(case, epochs=3, batch_size=32, knn_index_examples=None)  # 3 * (100 + 35) + 42
        447.0
    """
    sizes = case["sizes"]
    steps = math.ceil(sizes["train"] / batch_size)
    index = sizes["train"] if knn_index_examples is None else min(knn_index_examples, sizes["train"])
    validation = (3 * sizes["val"] + index) * case["seconds_per_encoded_text"]
    test = (sizes["train"] + sizes["test"]) * case["seconds_per_encoded_text"]
    return epochs * (steps * case["seconds_per_step"] + validation) + test


def report(cases: list[dict], command: str) -> str:
    profile = PROFILES["full"]
    trained_rows = len([loss for loss in profile.losses if loss != "zero-shot"])
    lines = [
        "# Timing the `full` profile",
        "",
        f"Command: `{command}`. {cases[0]['torch_threads']} torch threads. Each line trained "
        f"{cases[0]['steps']} steps of the real pipeline (batch {profile.batch_size}, gloss+ce) and encoded "
        "training texts; the projection is one job of the profile on the full splits, "
        f"and a seed of its {trained_rows} trained rows (the zero-shot row adds one test encoding).",
        "",
        "| dataset | tokens | s / step | texts / s encoded | steps / epoch | job, kNN index all of train (min) "
        "| job, index 1,000 (min) | one seed, 6 rows, index 1,000 (h) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        steps = math.ceil(case["sizes"]["train"] / profile.batch_size)
        full = project(case, epochs=profile.epochs, batch_size=profile.batch_size, knn_index_examples=None)
        capped = project(case, epochs=profile.epochs, batch_size=profile.batch_size,
                         knn_index_examples=profile.knn_index_examples)
        lines.append(
            f"| {case['dataset']} | {case['max_seq_length']} | {case['seconds_per_step']:.2f} | "
            f"{1 / case['seconds_per_encoded_text']:.0f} | {steps} | {full / 60:.0f} | {capped / 60:.0f} | "
            f"{trained_rows * capped / 3600:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="folder of the datasets (../shared/data)")
    parser.add_argument("--steps", type=int, default=64, help="training steps timed per case (default 64)")
    parser.add_argument("--encode", type=int, default=512, help="training texts encoded per case (default 512)")
    parser.add_argument("--output", type=Path, help="write the markdown report here")
    args = parser.parse_args(argv)
    cases = [time_case(dataset, length, args.steps, args.encode, args.data_root) for dataset, length in CASES]
    command = "python -m evaluation.benchmarks.full_timing --data-root ../shared/data" + (
        f" --output {args.output}" if args.output else "")
    text = report(cases, command)
    print(text)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

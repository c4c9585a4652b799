"""Zero-shot baselines: a model without fine-tuning on the test splits of the paper's datasets.

For each dataset, one call of :func:`st_gloss.evaluation.evaluate`: encode train and test once,
then kNN (train as index, k=10, majority and similarity-weighted votes), the macro/micro cosine
silhouette of the test embeddings, and the linear probe (logistic regression on train, scored on
test), timing every step. Writes
``evaluation/results/zero_shot.json`` and ``zero_shot.md``, after each dataset, so an
interrupted run keeps what it finished.

Run from the repository root::

    PYTHONPATH=. python evaluation/benchmarks/zero_shot.py --data-root ../shared/data \
        --max-seq-length 128
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from st_gloss.evaluation.data import BENCHMARK_DATASETS, load_labelled_data
from st_gloss.evaluation.models import load_model
from st_gloss.evaluation.pipeline import evaluate
from st_gloss.evaluation.report import environment_info, write_json

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def run_dataset(model, name: str, data_root: str, *, k: int, batch_size: int) -> dict:
    """Every zero-shot measurement of one dataset, with wall times in seconds."""
    data, load_s = _timed(load_labelled_data, name, data_root=data_root)
    train, test = data["train"], data["test"]
    report = evaluate(model, data, ("knn", "silhouette", "probe"), split="test", k=k,
                      weighting=("majority", "similarity"), batch_size=batch_size, progress=True)
    knn, knn_sim = report.knn, report.knn_by_weighting["similarity"]
    sil, probe, seconds = report.silhouette, report.probe, report.seconds
    return {
        "dataset": name,
        "n_train": len(train),
        "n_test": len(test),
        "classes": data.num_classes,
        "knn": {"k": k, "accuracy": knn.accuracy, "macro_f1": knn.macro_f1,
                "similarity_weighted_accuracy": knn_sim.accuracy,
                "similarity_weighted_macro_f1": knn_sim.macro_f1},
        "silhouette": sil.to_dict(),
        "probe": {"accuracy": probe.accuracy, "macro_f1": probe.macro_f1},
        "seconds": {"load": load_s, "encode_train": seconds["encode_train"],
                    "encode_test": seconds["encode_test"], "knn": seconds["knn"],
                    "knn_similarity": seconds["knn_similarity"], "silhouette": seconds["silhouette"],
                    "probe": seconds["probe"]},
    }


def markdown(payload: dict) -> str:
    """The results as a markdown table, with the command that made them."""
    lines = [
        "# Zero-shot baselines",
        "",
        f"Model: `{payload['model']}` without fine-tuning, max_seq_length "
        f"{payload['max_seq_length']}, batch size {payload['batch_size']}; test splits, train "
        f"split as kNN index and probe training set; k = {payload['k']}.",
        f"Machine: {payload['environment']['cpu_count']} CPU cores "
        f"(torch threads {payload['environment']['torch_threads']}), no GPU, shared with other "
        f"work; times are wall-clock seconds. Made on {payload['environment']['timestamp']} with:",
        "",
        "```",
        payload["command"],
        "```",
        "",
    ]
    for resumed in payload.get("resumed", []):
        lines += [f"Resumed on {resumed['environment']['timestamp']} (the datasets not yet "
                  "measured) with:", "", "```", resumed["command"], "```", ""]
    lines += [
        "| dataset | test docs | classes | kNN acc | kNN macro-F1 | kNN acc (sim.) | silhouette "
        "macro | silhouette micro | probe acc | probe macro-F1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in payload["datasets"].values():
        sil = row["silhouette"]
        lines.append(
            f"| {row['dataset']} | {row['n_test']} | {row['classes']} | {row['knn']['accuracy']:.4f} "
            f"| {row['knn']['macro_f1']:.4f} | {row['knn']['similarity_weighted_accuracy']:.4f} "
            f"| {sil['macro']:.4f}{'*' if sil['sampled'] else ''} | {sil['micro']:.4f} "
            f"| {row['probe']['accuracy']:.4f} | {row['probe']['macro_f1']:.4f} |"
        )
    sampled = [row for row in payload["datasets"].values() if row["silhouette"]["sampled"]]
    lines += [""]
    if sampled:
        notes = ", ".join(
            f"{row['dataset']}: {row['silhouette']['n_sampled']} of {row['n_test']} points, "
            f"standard error of the macro estimate "
            f"{row['silhouette'].get('macro_standard_error', float('nan')):.4f}"
            for row in sampled
        )
        lines += ["\\* sampled estimate (stratified, seed 0, each sampled point scored against "
                  f"all points; {notes}).", ""]
    lines += [
        "Wall time in seconds:",
        "",
        "| dataset | load | encode train | encode test | kNN | kNN (sim.) | silhouette | probe |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in payload["datasets"].values():
        s = row["seconds"]
        lines.append(
            f"| {row['dataset']} | {s['load']:.1f} | {s['encode_train']:.1f} | "
            f"{s['encode_test']:.1f} | {s['knn']:.2f} | {s['knn_similarity']:.2f} | "
            f"{s['silhouette']:.2f} | {s['probe']:.2f} |"
        )
    versions = payload["environment"]["versions"]
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="folder with mr/, r8/, ...")
    parser.add_argument("--datasets", default=",".join(BENCHMARK_DATASETS))
    parser.add_argument("--model", default="default", help="model path or name (default: MiniLM)")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--output", default=str(RESULTS / "zero_shot"),
                        help="output path without suffix (.json and .md are written)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the datasets already in the output JSON and run the others")
    args = parser.parse_args(argv)
    model = load_model(args.model, device="cpu", max_seq_length=args.max_seq_length)
    command = "PYTHONPATH=. python evaluation/benchmarks/zero_shot.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    previous = Path(args.output + ".json")
    if args.resume and previous.exists():
        payload = json.loads(previous.read_text(encoding="utf-8"))
        for key in ("max_seq_length", "batch_size", "k"):
            if payload[key] != getattr(args, key):
                parser.error(f"--resume with a different {key} ({payload[key]} before)")
        payload.setdefault("resumed", []).append(
            {"command": command, "environment": environment_info()}
        )
        return _run(model, args, payload)
    payload = {
        "model": args.model if args.model != "default" else "sentence-transformers/all-MiniLM-L6-v2 (bundled)",
        "max_seq_length": args.max_seq_length,
        "batch_size": args.batch_size,
        "k": args.k,
        "command": command,
        "environment": environment_info(),
        "datasets": {},
    }
    return _run(model, args, payload)


def _run(model, args, payload: dict) -> int:
    for name in args.datasets.split(","):
        if name in payload["datasets"]:
            print(f"[zero-shot] {name}: already measured, kept", flush=True)
            continue
        print(f"[zero-shot] {name}", flush=True)
        payload["datasets"][name] = run_dataset(model, name, args.data_root, k=args.k,
                                                batch_size=args.batch_size)
        print(payload["datasets"][name], flush=True)
        write_json(payload, args.output + ".json")
        Path(args.output + ".md").write_text(markdown(payload), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

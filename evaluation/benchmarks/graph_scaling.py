"""How G-Loss scales with the graph: closed form vs iterative propagation, float32 vs float64, and the memory queue.

Part 1 times the loss alone (Gaussian graph, propagation, NLL; forward + backward) on clustered
384-dimensional embeddings of 8 classes, from 128 to 8192 nodes (labelled fraction 0.7, so
about 30% of the nodes are hidden), for each solver (``closed_form``: LU solve; ``iterative``:
100 propagation steps; ``knn-iterative``: the 16-nearest-neighbour graph, 100 steps) and each
solve dtype. Each configuration runs in a fresh process, so that its peak memory (resident set
on CPU, ``torch.cuda.max_memory_allocated`` on a GPU) is its own; the table also gives the
largest gap between the iterative and the closed-form distributions.

Part 2 times the loss at a training batch (32) with a cross-batch memory of 0 to 16 past batches.

Part 3 reads (and, unless they exist, runs) the benchmark runner's jobs of ``gloss`` and
``gloss+memory`` (memory of 4 batches) on one dataset under the ``cpu`` profile: the memory's
effect on test accuracy and on the training time per epoch, with the same budget.

Run from the repository root::

    python -m evaluation.benchmarks.graph_scaling --output evaluation/results/graph_scaling.md
    python -m evaluation.benchmarks.graph_scaling --parts memory-training --memory-seeds 0,1 \
        --output evaluation/results/memory_queue.md
    python -m evaluation.benchmarks.graph_scaling --device cuda --sizes 128,1024,4096,16384 --parts scaling,memory-time
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

SOLVERS = ("closed_form", "iterative", "knn-iterative")
MEMORY_RESULTS = Path(__file__).resolve().parents[1] / "results" / "memory_queue"
"""Result files of part 3 (runner jobs), apart from the benchmark's so that its tables keep one seed per cell."""
DEFAULT_SIZES = "128,256,512,1024,2048,4096,8192"
CLASSES = 8
DIM = 384
LABELLED_FRACTION = 0.7
SIGMA = 0.5


def _problem(n: int, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(CLASSES, DIM, generator=g)
    labels = torch.arange(n) % CLASSES
    x = centres[labels] + 1.5 * torch.randn(n, DIM, generator=g)
    return x.to(device), labels.to(device)


def _loss_fn(solver: str, dtype: torch.dtype, n: int, device: str):
    """A closure computing G-Loss forward + backward for ``solver``; and the propagated distributions."""
    from st_gloss import functional as F
    from st_gloss.masking import stratified_labelled_mask

    x, labels = _problem(n, device)
    mask = stratified_labelled_mask(labels, LABELLED_FRACTION, torch.Generator().manual_seed(0))
    options = {
        "closed_form": {"propagation": "closed_form"},
        "iterative": {"propagation": "iterative"},
        "knn-iterative": {"propagation": "iterative", "graph": "knn"},
    }[solver]

    def step():
        emb = x.clone().requires_grad_(True)
        loss = F.graph_loss(emb, labels, mask, SIGMA, CLASSES, solve_dtype=dtype, **options)
        loss.backward()
        return loss

    def distributions(opts):
        with torch.no_grad():
            return F.propagate_labels(x, labels, mask, SIGMA, CLASSES, solve_dtype=dtype, **opts)

    return step, lambda: distributions(options), lambda: distributions({"propagation": "closed_form"})


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def child(n: int, solver: str, dtype_name: str, device: str, repeats: int) -> dict:
    """One configuration, in this (fresh) process: median seconds, peak memory, gap to the closed form."""
    dtype = getattr(torch, dtype_name)
    step, ours, closed = _loss_fn(solver, dtype, n, device)
    # Same graph, two solvers: only the dense iterative solver has a closed form to compare with here.
    gap = float((ours() - closed()).abs().max()) if solver == "iterative" else None
    _sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    step()  # warm-up; also the peak
    _sync(device)
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        loss = step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return {"n": n, "solver": solver, "dtype": dtype_name, "seconds": statistics.median(times),
            "peak_bytes": max(peak, 0), "gap": gap, "finite": bool(torch.isfinite(loss))}


def run_child(n, solver, dtype, device, repeats, timeout) -> dict:
    command = [sys.executable, "-m", "evaluation.benchmarks.graph_scaling", "--child", str(n), solver, dtype,
               "--device", device, "--repeats", str(repeats)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"n": n, "solver": solver, "dtype": dtype, "error": f"over {timeout} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        return {"n": n, "solver": solver, "dtype": dtype, "error": last[:120]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_queue_times(device: str, repeats: int, steps=(0, 2, 4, 8, 16), batch: int = 32) -> list[tuple]:
    """The loss's forward + backward time at a training batch, with memories of ``steps`` batches."""
    from evaluation.benchmarks.loss_timing import median_seconds
    from st_gloss import GraphGuidedLoss

    class _NoModel(torch.nn.Module):
        def get_embedding_dimension(self):
            return DIM

    rows = []
    for m in steps:
        loss = GraphGuidedLoss(_NoModel(), sigma=SIGMA, seed=0, memory_steps=m)
        for seed in range(m):  # fill the memory with earlier batches
            x, y = _problem(batch, device, seed=seed + 1)
            loss.compute_loss_from_embeddings(x.requires_grad_(), y)
        x, y = _problem(batch, device)
        loss.model.eval()  # not a training step: time the full memory without pushing new batches

        def step():
            emb = x.clone().requires_grad_(True)
            loss.compute_loss_from_embeddings(emb, y).backward()
            _sync(device)

        rows.append((m, batch + loss.memory.num_nodes, median_seconds(step, repeats)))
    return rows


def memory_training(dataset: str, seeds: list[int], data_root: str, echo=print) -> list[dict]:
    """The runner's ``gloss`` and ``gloss+memory`` jobs on ``dataset`` (cpu profile), run if missing."""
    from evaluation.benchmarks.profiles import PROFILES
    from evaluation.benchmarks.runner import WORK, plan, run_job

    profile = PROFILES["cpu"]
    results = []
    for job in plan(profile, [dataset], ["gloss", "gloss+memory"], seeds):
        echo(f"  job {job.key}")
        results.append(run_job(job, profile, MEMORY_RESULTS / profile.name, WORK / "memory_queue" / profile.name,
                               data_root=data_root, require_heads=False, echo=lambda line: None))
    return results


def _mib(value: float) -> str:
    return f"{value / 2**20:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="graph sizes (nodes), comma-separated")
    parser.add_argument("--solvers", default=",".join(SOLVERS))
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (never chosen for you)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per configuration")
    parser.add_argument("--memory-dataset", default="r8", help="dataset of part 3")
    parser.add_argument("--memory-seeds", default="0", help="seeds of part 3, comma-separated")
    parser.add_argument("--data-root", default="../shared/data", help="folder of the benchmark datasets")
    parser.add_argument("--parts", default="scaling,memory-time,memory-training",
                        help="which parts to run: scaling (1), memory-time (2), memory-training (3)")
    parser.add_argument("--output", type=Path, default=None, help="also write the report (markdown) here")
    parser.add_argument("--child", nargs=3, metavar=("N", "SOLVER", "DTYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        n, solver, dtype = args.child
        print(json.dumps(child(int(n), solver, dtype, args.device, args.repeats)))
        return 0

    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else (
        platform.processor() or platform.machine())
    command = "python -m evaluation.benchmarks.graph_scaling " + " ".join(argv if argv is not None else sys.argv[1:])
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"scaling", "memory-time", "memory-training"}
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from scaling, memory-time, memory-training")
    lines = [
        "# G-Loss at scale: graph size, solver and dtype",
        "",
        f"Device: {args.device} ({device_name}), {torch.get_num_threads()} torch threads, torch {torch.__version__}. "
        f"Command: `{command.strip()}`.",
    ]
    print("\n".join(lines), flush=True)
    if "scaling" in parts:
        lines += scaling_table(args)
    if "memory-time" in parts:
        lines += memory_time_table(args)
    if "memory-training" in parts:
        lines += memory_training_table(args)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"written to {args.output}")
    return 0


def scaling_table(args) -> list[str]:
    """Part 1: one row per (size, dtype, solver), each measured in a fresh process."""
    memory_kind = "peak CUDA memory allocated" if args.device.startswith("cuda") else "peak resident memory added"
    lines = [
        "",
        f"### Loss forward + backward against graph size ({DIM}-d, {CLASSES} classes, labelled fraction "
        f"{LABELLED_FRACTION})",
        "",
        f"Median of {args.repeats} runs; memory: {memory_kind} by one step, MiB; gap: largest difference between the "
        "iterative and the closed-form class distributions (same graph, same dtype).",
        "",
        "| nodes | hidden | solver | dtype | ms | ratio to closed form | memory MiB | gap | finite |",
        "|---:|---:|---|---|---:|---:|---:|---:|---|",
    ]
    print("\n".join(lines), flush=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    solvers = [s for s in args.solvers.split(",") if s]
    dtypes = [d for d in args.dtypes.split(",") if d]
    for n in sizes:
        hidden = n - int(round(LABELLED_FRACTION * n / CLASSES)) * CLASSES  # each class keeps round(0.7 n_c)
        for dtype in dtypes:
            closed_seconds = None
            for solver in solvers:
                r = run_child(n, solver, dtype, args.device, args.repeats, args.timeout)
                if "error" in r:
                    row = f"| {n} | {hidden} | {solver} | {dtype} | {r['error']} | | | | |"
                else:
                    if solver == "closed_form":
                        closed_seconds = r["seconds"]
                    ratio = f"{r['seconds'] / closed_seconds:.2f}" if closed_seconds else ""
                    gap = "" if r["gap"] is None else f"{r['gap']:.1e}"
                    row = (f"| {n} | {hidden} | {solver} | {dtype} | {1e3 * r['seconds']:.1f} | {ratio} | "
                           f"{_mib(r['peak_bytes'])} | {gap} | {'yes' if r['finite'] else 'NO'} |")
                lines.append(row)
                print(row, flush=True)
    return lines


def memory_time_table(args) -> list[str]:
    """Part 2: the loss's time at a training batch with memories of 0 to 16 batches."""
    part2 = ["", "### Cross-batch memory: loss time at batch 32", "",
             "| memory (batches) | graph nodes | ms (fwd + bwd) | ratio to no memory |", "|---:|---:|---:|---:|"]
    print("\n".join(part2), flush=True)
    rows = memory_queue_times(args.device, max(args.repeats, 5))
    for m, nodes, seconds in rows:
        part2.append(f"| {m} | {nodes} | {1e3 * seconds:.2f} | {seconds / rows[0][2]:.2f} |")
        print(part2[-1], flush=True)
    return part2


def memory_training_table(args) -> list[str]:
    """Part 3: the runner's gloss and gloss+memory jobs on one dataset, side by side."""
    seeds = [int(s) for s in args.memory_seeds.split(",") if s]
    part3 = ["", f"### Cross-batch memory in training: {args.memory_dataset}, cpu profile, same budget", "",
             "`gloss+memory` is `gloss` with the last 4 batches (128 embeddings) added to each graph as labelled "
             "nodes. Jobs are run by the benchmark runner (results in `evaluation/results/memory_queue/cpu/`); a job "
             "whose result file exists is read, not run again, so its time per epoch is that of its own run.", "",
             "| loss | seed | test kNN acc | test macro-F1 | macro silhouette | best epoch | s/epoch |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(part3), flush=True)
    results = memory_training(args.memory_dataset, seeds, args.data_root)
    for r in results:
        test = r["test"]
        part3.append(
            f"| {r['job']['loss']} | {r['job']['seed']} | {test['knn_accuracy']:.4f} | {test['knn_macro_f1']:.4f} "
            f"| {test['silhouette_macro']:.4f} | {r.get('best_epoch', '')} | {r.get('seconds_per_epoch', 0):.1f} |"
        )
        print(part3[-1], flush=True)
    by_loss: dict[str, list[dict]] = {}
    for r in results:
        by_loss.setdefault(r["job"]["loss"], []).append(r)
    if {"gloss", "gloss+memory"} <= set(by_loss):
        def mean(loss, key, inner="test"):
            values = [(r[inner][key] if inner else r[key]) for r in by_loss[loss]]
            return statistics.fmean(v for v in values if v is not None)

        difference = {key: mean("gloss+memory", key) - mean("gloss", key)
                      for key in ("knn_accuracy", "knn_macro_f1", "silhouette_macro")}
        speed = mean("gloss+memory", "seconds_per_epoch", None) / mean("gloss", "seconds_per_epoch", None)
        part3 += ["", f"Mean over seeds {seeds}, memory minus no memory: test kNN accuracy "
                  f"{difference['knn_accuracy']:+.4f}, macro-F1 {difference['knn_macro_f1']:+.4f}, macro silhouette "
                  f"{difference['silhouette_macro']:+.4f}; time per epoch ratio {speed:.2f}."]
        print(part3[-1], flush=True)
    return part3

if __name__ == "__main__":
    raise SystemExit(main())

"""How much does G-Loss add to a training step? Side by side, in one run, on one machine.

Part 1 times a full training step (tokenised batch -> encoder forward -> loss -> backward ->
AdamW step) of the bundled all-MiniLM-L6-v2 with GraphGuidedLoss, sentence-transformers'
BatchAllTripletLoss and a linear-head cross-entropy, on the same batches, interleaved so that
machine drift hits all three alike.

Part 2 times the loss alone (Gaussian graph, harmonic propagation, NLL; forward and forward +
backward) on random clustered 384-dimensional embeddings at several batch sizes, and sets it
against the cross-entropy step time of part 1: the loss's share of a training step.

Run from the repository root::

    python -m evaluation.benchmarks.loss_timing --output evaluation/results/loss_timing.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch


def median_seconds(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def training_step_times(batch_sizes, max_seq_length, repeats, data):
    from sentence_transformers.sentence_transformer.losses import BatchAllTripletLoss

    from st_gloss import GraphGuidedLoss, LinearHeadCrossEntropyLoss
    from st_gloss.evaluation.data import load_labelled_data
    from st_gloss.evaluation.models import load_model

    dataset = load_labelled_data(data)["train"]
    model = load_model(max_seq_length=max_seq_length, device="cpu")
    model.train()
    num_labels = int(dataset.labels.max()) + 1
    losses = {
        "GraphGuidedLoss": GraphGuidedLoss(model, sigma="sqrt_median", seed=0),
        "BatchAllTripletLoss": BatchAllTripletLoss(model),
        "linear-head CE": LinearHeadCrossEntropyLoss(model, num_labels=num_labels),
    }
    results = {}
    for batch_size in batch_sizes:
        texts = (dataset.texts * (batch_size // len(dataset.texts) + 1))[:batch_size]
        labels = torch.tensor((dataset.labels.tolist() * (batch_size // len(dataset.texts) + 1))[:batch_size])
        features = model.preprocess(texts) if hasattr(model, "preprocess") else model.tokenize(texts)
        tokens = int(features["attention_mask"].sum())
        optimizers = {name: torch.optim.AdamW(loss.parameters(), lr=1e-8) for name, loss in losses.items()}

        def step(name):
            loss = losses[name]([features], labels)
            if isinstance(loss, dict):
                loss = sum(loss.values())
            loss.backward()
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)

        for name in losses:  # warm-up
            step(name)
        times = {name: [] for name in losses}
        for _ in range(repeats):  # interleaved
            for name in losses:
                start = time.perf_counter()
                step(name)
                times[name].append(time.perf_counter() - start)
        results[batch_size] = ({name: statistics.median(t) for name, t in times.items()}, tokens)
    return results


def clustered_embeddings(batch_size, dim=384, classes=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g)
    labels = torch.arange(batch_size) % classes
    x = centres[labels] + 2.0 * torch.randn(batch_size, dim, generator=g)
    return x, labels


def loss_only_times(batch_sizes, repeats, dtype):
    from st_gloss import GraphGuidedLoss

    class _NoModel(torch.nn.Module):
        def get_embedding_dimension(self):
            return 384

    rows = {}
    for batch_size in batch_sizes:
        x, labels = clustered_embeddings(batch_size)
        x = x.to(dtype)
        loss = GraphGuidedLoss(_NoModel(), sigma="sqrt_median", seed=0)

        def forward():
            with torch.no_grad():
                loss.compute_loss_from_embeddings(x, labels)

        def forward_backward():
            emb = x.clone().requires_grad_(True)
            loss.compute_loss_from_embeddings(emb, labels).backward()

        reps = max(3, repeats if batch_size <= 512 else 3)
        rows[batch_size] = (median_seconds(forward, reps), median_seconds(forward_backward, reps))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-batch-sizes", default="64,128", help="batch sizes of part 1")
    parser.add_argument("--loss-batch-sizes", default="32,128,512,2048", help="batch sizes of part 2")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", default=None, help="labelled data for part 1 (default: the bundled R8 sample)")
    parser.add_argument("--output", type=Path, default=None, help="also write the report (markdown) here")
    args = parser.parse_args()

    from st_gloss.evaluation.samples import sample_path

    torch.manual_seed(0)
    step_sizes = [int(b) for b in args.step_batch_sizes.split(",") if b]
    loss_sizes = [int(b) for b in args.loss_batch_sizes.split(",") if b]
    data = args.data or str(sample_path("r8"))
    lines = [
        "# Loss timing",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, CPU. Command: `python -m evaluation.benchmarks.loss_timing"
        + (f" --output {args.output}" if args.output else "")
        + "`.",
        "",
        f"### Training step, bundled all-MiniLM-L6-v2, max_seq_length {args.max_seq_length}, "
        f"data {Path(data).name}, median of {args.repeats} interleaved steps",
        "",
        "| batch | tokens | loss | step (s) | vs CE |",
        "|---|---|---|---|---|",
    ]
    steps = training_step_times(step_sizes, args.max_seq_length, args.repeats, data)
    ce_step = {}
    for batch_size, (times, tokens) in steps.items():
        ce_step[batch_size] = times["linear-head CE"]
        for name, seconds in times.items():
            lines.append(f"| {batch_size} | {tokens} | {name} | {seconds:.3f} | {seconds / ce_step[batch_size]:.3f} |")
        print("\n".join(lines[-len(times) :]), flush=True)
    lines += [
        "",
        "### GraphGuidedLoss alone (graph + propagation + NLL), 384 dims, 8 classes, labelled fraction 0.7",
        "",
        "dtype is that of the embeddings; the propagation solve always runs in float64. The share compares "
        "forward+backward of the loss with the cross-entropy training step of part 1 at the same batch size.",
        "",
        "| batch | dtype | forward (ms) | forward+backward (ms) | share of a CE step at this batch |",
        "|---|---|---|---|---|",
    ]
    for dtype in (torch.float32, torch.float64):
        for batch_size, (fwd, fwd_bwd) in loss_only_times(loss_sizes, args.repeats * 4, dtype).items():
            share = f"{100 * fwd_bwd / ce_step[batch_size]:.2f}%" if batch_size in ce_step else ""
            name = str(dtype).removeprefix("torch.")
            lines.append(f"| {batch_size} | {name} | {1e3 * fwd:.2f} | {1e3 * fwd_bwd:.2f} | {share} |")
            print(lines[-1], flush=True)
    report = "\n".join(lines) + "\n"
    print()
    print(report)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()

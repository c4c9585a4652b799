"""The bad-input sweep of the losses: thousands of random degenerate batches, each through forward and backward.

Every batch is drawn from a seeded generator: a size from 1 to 64, a dimension, a structure
(Gaussian, clustered, all rows identical, duplicated or near-identical rows, zero rows, antipodal
pairs, one-hot rows), a scale from 1e-30 to 1e30, a dtype (float64, float32, bfloat16, float16),
labels (one class, all distinct, two classes, skewed, huge ids, negative ids, ids beyond
``num_labels``) and, for some batches, NaN or inf entries. It goes through a loss drawn with random
options: :class:`~st_gloss.GraphGuidedLoss` with every normalisation, sigma rule, fixed sigmas from
1e-6 to 1e6, solver, graph, class weighting, solve dtype, head, memory and gather setting, or one of
the sibling losses (SupCon, the in-batch cosine loss, the linear-head cross-entropy).

Each batch runs ``compute_loss_from_embeddings`` and ``backward()`` and lands in one outcome:

- ``ok``: a finite loss with finite gradients (embeddings and head);
- ``refused``: a ``ValueError`` with a message, counted by message class;
- ``gradient beyond the input dtype's range``: a float16 (or bfloat16) batch whose gradient is
  finite when the same batch runs in float32 but too large for its own dtype (above 65504 in
  float16: tiny rows or a tiny sigma); not a defect of the loss, and mixed-precision training's
  GradScaler skips such steps;
- ``non-finite loss``; ``finite loss, non-finite gradients`` (the silent failure; target zero);
- ``invalid input accepted``: NaN or inf in the embeddings, a negative label, one beyond
  ``num_labels`` or one without a ``class_weight``, not refused (target zero);
- ``valid input refused``: a ``ValueError`` for a batch with none of those (listed; target zero);
- ``other exception`` (target zero).

Run from the repository root::

    nice -n 10 python -m evaluation.benchmarks.loss_faults --batches 5000 --seed 0 \\
        --output evaluation/results/loss_faults.md

``tests/test_loss_faults.py`` runs the first few hundred batches of the same sweep in CI.
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

OK = "ok"
REFUSED = "refused (ValueError)"
NONFINITE_LOSS = "non-finite loss"
SILENT_NAN_GRADIENT = "finite loss, non-finite gradients"
INVALID_ACCEPTED = "invalid input accepted"
UNEXPECTED_REFUSAL = "valid input refused"
DTYPE_OVERFLOW = "finite loss, gradient beyond the input dtype's range"
OTHER_EXCEPTION = "other exception"
OUTCOMES = (OK, REFUSED, DTYPE_OVERFLOW, NONFINITE_LOSS, SILENT_NAN_GRADIENT, INVALID_ACCEPTED, UNEXPECTED_REFUSAL,
            OTHER_EXCEPTION)
"""Every outcome of a batch; all but the first three should stay at zero."""

DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
STRUCTURES = ("gaussian", "clustered", "identical", "duplicated", "near_identical", "zero_rows", "antipodal", "one_hot")
LABELS = ("random", "one_class", "all_distinct", "two_classes", "skewed", "huge_ids", "sparse_ids", "negative",
          "beyond_num_labels")
FIXED_SIGMAS = (1e-6, 1e-3, 0.01, 0.1, 0.5, 1.0, 10.0, 1e6)

# Message classes of refusals, first match wins.
_REFUSAL_CLASSES = (
    (r"NaN or inf", "non-finite embeddings"),
    (r">= 0", "negative label id"),
    (r"out of range for num_labels", "label beyond num_labels"),
    (r"class_weight", "class_weight does not cover a label"),
)


class _StubModel(torch.nn.Module):
    """Stands in for a SentenceTransformer: the losses only ask it for the embedding size."""

    def __init__(self, dimension: int) -> None:
        super().__init__()
        self.dimension = dimension

    def get_embedding_dimension(self) -> int:
        return self.dimension


@dataclass
class Case:
    """One drawn batch and the loss it goes through."""

    index: int
    loss: str
    options: dict
    batch_size: int
    dimension: int
    dtype: str
    structure: str
    scale: float
    labels_kind: str
    injected: str | None
    memory_warmup: bool = False

    def describe(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return (f"#{self.index} {self.loss}({options}) B={self.batch_size} d={self.dimension} {self.dtype} "
                f"{self.structure} scale={self.scale:.1e} labels={self.labels_kind} injected={self.injected}")


@dataclass
class SweepResult:
    """Counts of outcomes (and of refusal classes), with the first few cases of each bad outcome."""

    outcomes: Counter = field(default_factory=Counter)
    refusals: Counter = field(default_factory=Counter)
    by_loss: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)
    seconds: float = 0.0
    slowest: tuple = (0.0, "")

    @property
    def failures(self) -> int:
        """Batches in an outcome whose target is zero."""
        return sum(self.outcomes[o] for o in OUTCOMES if o not in (OK, REFUSED, DTYPE_OVERFLOW))


def _labels(rng: np.random.Generator, kind: str, n: int, num_labels: int | None) -> np.ndarray:
    top = num_labels or 8
    if kind == "one_class":
        return np.full(n, int(rng.integers(0, top)))
    if kind == "all_distinct":
        return rng.permutation(max(n, top))[:n] if num_labels is None or n <= top else rng.integers(0, top, n)
    if kind == "two_classes":
        return rng.integers(0, 2, n)
    if kind == "skewed":
        return np.where(rng.random(n) < 0.85, 0, rng.integers(1, top, n))
    if kind == "huge_ids" and num_labels is None:
        return rng.choice(np.array([0, 3, 2**40, 2**62]), n)
    if kind == "sparse_ids" and num_labels is None:
        return rng.choice(np.array([7, 1000, 10**6]), n)
    if kind == "negative":  # -2: -1 is a valid id for G-Loss (a text without a label)
        labels = rng.integers(0, top, n)
        labels[int(rng.integers(0, n))] = -2
        return labels
    if kind == "beyond_num_labels" and num_labels is not None:
        labels = rng.integers(0, top, n)
        labels[int(rng.integers(0, n))] = top
        return labels
    return rng.integers(0, int(rng.integers(2, top + 1)), n)


def _embeddings(rng: np.random.Generator, structure: str, n: int, d: int, labels: np.ndarray) -> np.ndarray:
    if structure == "clustered":
        _, inverse = np.unique(labels, return_inverse=True)
        centres = rng.normal(size=(inverse.max() + 1, d))
        return centres[inverse] + 0.1 * rng.normal(size=(n, d))
    if structure == "identical":
        return np.repeat(rng.normal(size=(1, d)), n, axis=0)
    if structure == "duplicated":
        rows = rng.normal(size=(max(1, n // 3), d))
        return rows[rng.integers(0, rows.shape[0], n)]
    if structure == "near_identical":
        return rng.normal(size=(1, d)) + 10.0 ** rng.uniform(-9, -3) * rng.normal(size=(n, d))
    if structure == "zero_rows":
        x = rng.normal(size=(n, d))
        x[rng.random(n) < 0.5] = 0.0
        return x
    if structure == "antipodal":
        x = rng.normal(size=(n, d))
        x[1::2] = -x[0::2][: n // 2]
        return x
    if structure == "one_hot":
        return np.eye(d)[rng.integers(0, d, n)]
    return rng.normal(size=(n, d))


def _graph_options(rng: np.random.Generator, num_labels: int | None) -> dict:
    sigma = rng.choice(["sqrt_median", "dicm", "fixed"])
    options = {
        "labelled_fraction": float(rng.choice([0.1, 0.5, 0.7, 0.9])),
        "sigma": float(rng.choice(FIXED_SIGMAS)) if sigma == "fixed" else str(sigma),
        "normalization": str(rng.choice(["row", "symmetric"])),
        "propagation": str(rng.choice(["auto", "closed_form", "iterative"])),
        "graph": "dense",
        "class_weight": [None, "balanced", "list"][int(rng.integers(0, 3))],
        "solve_dtype": [None, "float32", "float64"][int(rng.integers(0, 3))],
        "seed": int(rng.integers(0, 1000)),
    }
    if options["normalization"] == "row" and rng.random() < 0.35:
        options["graph"] = "knn"
        options["num_neighbors"] = int(rng.integers(1, 17))
    if options["propagation"] != "closed_form" and rng.random() < 0.5:
        options["num_iterations"] = int(rng.choice([1, 5, 100]))
    if options["class_weight"] == "list":
        options["class_weight"] = [float(w) for w in rng.uniform(0.1, 3.0, num_labels or 8)]
    if num_labels is not None:
        options["num_labels"] = num_labels
        options["graph_weight"] = float(rng.choice([0.0, 0.5, 0.8, 1.0]))
    if rng.random() < 0.15:
        options["memory_steps"] = int(rng.integers(1, 3))
    if rng.random() < 0.1:
        options["gather_across_devices"] = True  # a no-op in one process: checks that it stays one
    return options


def draw_case(index: int, seed: int) -> tuple[Case, torch.Tensor, torch.Tensor]:
    """The ``index``-th batch of the sweep with ``seed``: its case, embeddings and labels.

    Each batch has its own generator (``seed``, ``index``), so a short sweep is a prefix of a long one.
    """
    rng = np.random.default_rng([seed, index])
    loss = str(rng.choice(["GraphGuidedLoss"] * 7 + ["SupervisedContrastiveLoss", "InBatchCosineSimilarityLoss",
                                                     "LinearHeadCrossEntropyLoss"]))
    with_head = loss == "LinearHeadCrossEntropyLoss" or (loss != "InBatchCosineSimilarityLoss" and rng.random() < 0.3)
    num_labels = int(rng.integers(2, 9)) if with_head else None
    if loss == "GraphGuidedLoss":
        options = _graph_options(rng, num_labels)
    elif loss == "SupervisedContrastiveLoss":
        options = {"temperature": float(rng.choice([1e-3, 0.07, 0.1, 1.0, 100.0]))}
        if num_labels is not None:
            options["num_labels"] = num_labels
    else:
        options = {} if num_labels is None else {"num_labels": num_labels}
    n = int(rng.integers(1, 65))
    d = int(rng.choice([1, 2, 3, 8, 32, 384]))
    dtype = str(rng.choice(list(DTYPES)))
    structure = str(rng.choice(STRUCTURES))
    scale = float(10.0 ** rng.choice([rng.uniform(-30, 30), 0.0, rng.uniform(-3, 3)]))
    labels_kind = str(rng.choice(LABELS))
    labels = _labels(rng, labels_kind, n, num_labels)
    x = _embeddings(rng, structure, n, d, labels) * scale
    injected = None
    if rng.random() < 0.08:
        injected = str(rng.choice(["nan", "inf", "-inf"]))
        rows = rng.random(n) < rng.uniform(0.05, 1.0)
        rows[int(rng.integers(0, n))] = True
        x[rows, int(rng.integers(0, d))] = float(injected)
    case = Case(index, loss, options, n, d, dtype, structure, scale, labels_kind, injected,
                memory_warmup=bool(options.get("memory_steps")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow to inf on the cast is a case, not a warning
        embeddings = torch.from_numpy(x).to(DTYPES[dtype])
    return case, embeddings, torch.from_numpy(np.asarray(labels, dtype=np.int64))


def build_loss(case: Case):
    """The loss of ``case``, built on a stub model of the batch's dimension."""
    import st_gloss

    return getattr(st_gloss, case.loss)(_StubModel(case.dimension), **case.options)


def _refusal_class(message: str) -> str:
    for pattern, name in _REFUSAL_CLASSES:
        if re.search(pattern, message):
            return name
    return f"other: {message[:70]}"


def _expected_refusal(case: Case, embeddings: torch.Tensor, labels: torch.Tensor) -> bool:
    num_labels = case.options.get("num_labels")
    weights = case.options.get("class_weight")
    return (not bool(torch.isfinite(embeddings).all()) or case.labels_kind == "negative"
            or (case.labels_kind == "beyond_num_labels" and num_labels is not None)
            or (isinstance(weights, list) and int(labels.max()) >= len(weights)))


def _forward_backward(case: Case, embeddings: torch.Tensor, labels: torch.Tensor):
    loss = build_loss(case)
    if case.memory_warmup:  # a previous, well-behaved step fills the memory
        generator = torch.Generator().manual_seed(case.index)
        loss.compute_loss_from_embeddings(
            torch.randn(8, case.dimension, generator=generator).to(embeddings.dtype),
            torch.arange(8) % max(2, min(case.options.get("num_labels") or 3, 8)),
        )
    x = embeddings.clone().requires_grad_()
    out = loss.compute_loss_from_embeddings(x, labels)
    total = sum(out.values()) if isinstance(out, dict) else out
    total.backward()
    return loss, x, total


def _overflows_its_dtype(case: Case, embeddings: torch.Tensor, labels: torch.Tensor) -> bool:
    """Whether the same batch in float32 has finite gradients that overflow the batch's own dtype."""
    if embeddings.dtype not in (torch.float16, torch.bfloat16):
        return False
    _, x, _ = _forward_backward(case, embeddings.float(), labels)
    return bool(torch.isfinite(x.grad).all()) and not bool(torch.isfinite(x.grad.to(embeddings.dtype)).all())


def run_case(case: Case, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[str, str]:
    """Forward and backward of one case: ``(outcome, detail)``."""
    expected_refusal = _expected_refusal(case, embeddings, labels)
    try:
        loss, x, total = _forward_backward(case, embeddings, labels)
    except ValueError as error:
        message = str(error)
        if not message:
            return OTHER_EXCEPTION, "ValueError without a message"
        if not expected_refusal:
            return UNEXPECTED_REFUSAL, message
        return REFUSED, _refusal_class(message)
    except Exception as error:  # noqa: BLE001 - counting them is the point
        return OTHER_EXCEPTION, f"{type(error).__name__}: {str(error)[:120]}"
    if not bool(torch.isfinite(embeddings).all()):
        return INVALID_ACCEPTED, f"loss {float(total.detach()):.4g}"
    if not bool(torch.isfinite(total.detach())):
        return NONFINITE_LOSS, f"loss {float(total.detach())}"
    grads = [x.grad] + [p.grad for p in loss.parameters() if p.grad is not None]
    if any(g is not None and not bool(torch.isfinite(g).all()) for g in grads):
        if _overflows_its_dtype(case, embeddings, labels):
            return DTYPE_OVERFLOW, f"loss {float(total.detach()):.4g}"
        return SILENT_NAN_GRADIENT, f"loss {float(total.detach()):.4g}"
    if expected_refusal:
        return INVALID_ACCEPTED, f"labels={case.labels_kind}"
    return OK, ""


def sweep(num_batches: int, seed: int = 0, *, progress: bool = False, max_examples: int = 5) -> SweepResult:
    """Run the first ``num_batches`` cases of the sweep with ``seed`` and count their outcomes."""
    result = SweepResult()
    start = time.perf_counter()
    indices = range(num_batches)
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc="loss faults", unit="batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate-batch warnings are expected by the thousand
        for index in indices:
            case, embeddings, labels = draw_case(index, seed)
            began = time.perf_counter()
            outcome, detail = run_case(case, embeddings, labels)
            result.slowest = max(result.slowest, (time.perf_counter() - began, case.describe()))
            result.outcomes[outcome] += 1
            result.by_loss[(case.loss, outcome)] += 1
            if outcome == REFUSED:
                result.refusals[detail] += 1
            elif outcome != OK:
                examples = result.examples.setdefault(outcome, [])
                if len(examples) < max_examples:
                    examples.append(f"{case.describe()}: {detail}")
    result.seconds = time.perf_counter() - start
    return result


def format_report(result: SweepResult, command: str, num_batches: int, seed: int) -> str:
    """The markdown report: outcomes, refusal classes, outcomes per loss, and examples of failures."""
    total = sum(result.outcomes.values())
    lines = [
        "# Loss fault sweep",
        "",
        f"Command: `{command}`. {num_batches} random degenerate batches, seed {seed}; machine "
        f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{result.seconds:.0f} s. Every batch runs `compute_loss_from_embeddings` and `backward()`; "
        "every outcome below the third has target zero.",
        "",
        "| outcome | batches | share |",
        "|---|---|---|",
    ]
    lines += [f"| {o} | {result.outcomes[o]} | {result.outcomes[o] / max(total, 1):.1%} |" for o in OUTCOMES]
    lines += ["", "### Refusals by message class", "", "| message class | batches |", "|---|---|"]
    lines += [f"| {name} | {count} |" for name, count in sorted(result.refusals.items(), key=lambda kv: -kv[1])]
    losses = sorted({loss for loss, _ in result.by_loss})
    lines += ["", "### Outcomes per loss", "", "| loss | " + " | ".join(OUTCOMES) + " |",
              "|---|" + "---|" * len(OUTCOMES)]
    lines += [f"| {loss} | " + " | ".join(str(result.by_loss[(loss, o)]) for o in OUTCOMES) + " |" for loss in losses]
    if result.examples:
        lines += ["", "### First cases of each failure", ""]
        for outcome, examples in result.examples.items():
            lines += [f"- **{outcome}**"] + [f"    - `{e}`" for e in examples]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5000, help="number of random batches (default 5000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sweep (default 0)")
    parser.add_argument("--output", type=Path, default=None, help="also write the report (markdown) here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    command = f"python -m evaluation.benchmarks.loss_faults --batches {args.batches} --seed {args.seed}" + (
        f" --output {args.output}" if args.output else "")
    torch.set_num_threads(1)  # batches of at most 64: threads only contend
    result = sweep(args.batches, args.seed, progress=not args.no_progress)
    report = format_report(result, command, args.batches, args.seed)
    print(report)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report, encoding="utf-8")
    return 0 if result.failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())


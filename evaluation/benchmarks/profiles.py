"""Named hyperparameter profiles of the benchmark: ``cpu`` and ``full`` (hours on 2 cores), ``paper`` (a GPU).

Every loss of a profile gets the same budget: the same epochs, batch size, learning-rate choices,
early-stopping rule, data and validation metric. Only the options that define a loss (G-Loss's
labelled fraction and sigma, the CE weight, the SupCon temperature, the triplet margin) differ,
and they are fixed per profile rather than searched, so no loss gets more trials than another;
the G-Loss options are explored separately by ``sensitivity.py``.

Examples:
    >>> PROFILES["cpu"].learning_rates
    (5e-05,)
    >>> len(PROFILES["paper"].learning_rates)
    4
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from st_gloss.evaluation.data import BENCHMARK_DATASETS

ZERO_SHOT = "zero-shot"
"""The pseudo-loss of the benchmark: the model without training, on the same splits."""

ALL_LOSSES = (
    ZERO_SHOT,
    "gloss",
    "gloss+ce",
    "ce",
    "supcon",
    "supcon+ce",
    "batch-all-triplet",
    "batch-hard-triplet",
    "cosine",
)


@dataclass(frozen=True)
class Profile:
    """A benchmark's hyperparameters, the same for every loss.

    Attributes:
        name: the profile's name (``cpu``, ``paper``).
        description: one line on what it is for.
        model: model folder or name; ``None`` for the bundled all-MiniLM-L6-v2.
        max_seq_length: tokens per text.
        epochs: maximum epochs.
        batch_size: examples per (class-balanced) batch.
        learning_rates: the learning rates tried for every loss; the one with the best validation
            score is kept, and only its test split is measured.
        patience: epochs without a better validation score before stopping.
        eval_metric: ``knn``, ``probe``, ``silhouette`` or ``head`` (picks the epoch and the
            learning rate).
        eval_metrics: per-loss exceptions to ``eval_metric`` (``{"ce": "head"}``): the paper picks
            the epoch of its integrated rows by the linear head and of its standalone rows by the
            silhouette.
        knn_index_examples: stratified subset of train searched by the per-epoch kNN validation
            (``None``: all of it; the test always searches all of train).
        warmup_ratio: share of steps with linear warmup.
        loss_options: fixed options per loss name (``{"gloss": {"labelled_fraction": 0.7}}``).
        max_train_examples: stratified subset of train per job (``None``: all of it).
        max_val_examples: stratified subset of val.
        max_test_examples: stratified subset of test.
        datasets: datasets run by default.
        losses: losses run by default (``zero-shot`` is the untrained model).
        seeds: seeds run by default.
    """

    name: str
    description: str
    model: str | None
    max_seq_length: int
    epochs: int
    batch_size: int
    learning_rates: tuple[float, ...]
    patience: int
    eval_metric: str = "knn"
    eval_metrics: dict[str, str] = field(default_factory=dict)
    knn_index_examples: int | None = None
    warmup_ratio: float = 0.1
    loss_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_train_examples: int | None = None
    max_val_examples: int | None = None
    max_test_examples: int | None = None
    datasets: tuple[str, ...] = BENCHMARK_DATASETS
    losses: tuple[str, ...] = ALL_LOSSES
    seeds: tuple[int, ...] = (0,)

    def eval_metric_for(self, loss: str) -> str:
        """The validation metric that picks the epoch of ``loss`` in this profile.

        Examples:
            >>> PROFILES["cpu"].eval_metric_for("gloss+ce")
            'knn'
        """
        return self.eval_metrics.get(loss, self.eval_metric)

    def options_for(self, loss: str) -> dict[str, Any]:
        """The fixed options of ``loss`` in this profile (empty for a loss without options)."""
        return dict(self.loss_options.get(loss, {}))


_LOSS_OPTIONS = {
    "gloss": {"labelled_fraction": 0.7, "sigma": "sqrt_median"},
    "gloss+ce": {"labelled_fraction": 0.7, "sigma": "sqrt_median", "graph_weight": 0.8},
    "supcon": {"temperature": 0.1},
    "supcon+ce": {"temperature": 0.1, "graph_weight": 0.8},
    "batch-all-triplet": {"margin": 0.5},
    "batch-hard-triplet": {"margin": 0.5},
    # Not in the default losses: run on one dataset to measure the cross-batch memory (issue 6).
    "gloss+memory": {"labelled_fraction": 0.7, "sigma": "sqrt_median", "memory_steps": 4},
}

CPU = Profile(
    name="cpu",
    description=(
        "bundled MiniLM, 128 tokens, batch 32, lr 5e-5, up to 3 epochs (patience 2) on a stratified "
        "256-text subset of train, validation on 128 texts, test on 600 (all stratified, seeded); one seed "
        "of 5 datasets x 9 rows takes about 2.5 hours on 2 free cores (MR 10 min, R8 25, R52 and 20NG 30 each)"
    ),
    model=None,
    max_seq_length=128,
    epochs=3,
    batch_size=32,
    learning_rates=(5e-5,),
    patience=2,
    loss_options=_LOSS_OPTIONS,
    max_train_examples=256,
    max_val_examples=128,
    max_test_examples=600,
)

PAPER = Profile(
    name="paper",
    description=(
        "the paper's settings for a GPU: full splits, batch 128, 128 tokens, up to 200 epochs with "
        "early stopping (patience 10), learning rate chosen on validation from 1e-5..5e-5"
    ),
    model=None,
    max_seq_length=128,
    epochs=200,
    batch_size=128,
    learning_rates=(1e-5, 2e-5, 3e-5, 5e-5),
    patience=10,
    # The paper's ranges are labelled fraction 0.5-0.7 and graph weight 0.7-0.9; the middle/upper
    # values are fixed here so that every loss gets the same number of trials.
    loss_options={
        **_LOSS_OPTIONS,
        "gloss": {"labelled_fraction": 0.6, "sigma": "sqrt_median"},
        "gloss+ce": {"labelled_fraction": 0.6, "sigma": "sqrt_median", "graph_weight": 0.8},
    },
)

_INTEGRATED = ("ce", "supcon+ce", "gloss+ce")
"""The paper's integrated rows (a linear head trained with the encoder, scored by that head)."""

FULL = replace(
    CPU,  # the cpu profile's batch, learning rate, epochs and loss options, without its subsets
    name="full",
    description=(
        "the paper's claim at a CPU budget: MR and R8 on their full training splits (6,397 and 4,936 texts), "
        "full validation and test splits, bundled MiniLM, 64 tokens, batch 32, lr 5e-5 (linear heads 1e-2), "
        "3 epochs (patience 2); the epoch is picked as the paper does, by the linear head's validation "
        "macro-F1 for the integrated rows (ce, supcon+ce, gloss+ce, scored by that head) and by the validation "
        "macro silhouette for the standalone rows (gloss, supcon, batch-all-triplet, scored by a logistic head "
        "on frozen embeddings); the per-epoch kNN validation searches 1,000 training texts. Timed by "
        "full_timing.py: 1.3 s a step on MR and 1.7 on R8 at 64 tokens (3.6 at 128), about 15 min a job, 3.2 "
        "hours for one seed of the 14 jobs on 2 cores (a second seed of MR would add 1.5 h)"
    ),
    max_seq_length=64,
    eval_metrics={loss: "head" for loss in _INTEGRATED} | {
        loss: "silhouette" for loss in (ZERO_SHOT, "gloss", "supcon", "batch-all-triplet")},
    knn_index_examples=1000,
    max_train_examples=None,
    max_val_examples=None,
    max_test_examples=None,
    datasets=("mr", "r8"),
    losses=(ZERO_SHOT, "gloss", "gloss+ce", "ce", "supcon", "supcon+ce", "batch-all-triplet"),
)

FULL_GPU = replace(
    FULL,
    name="full-gpu",
    description=(
        "the full profile for one 10-minute call on a GPU (evaluation/benchmarks/gpu_bundle.py): all five "
        "datasets on their full splits, 128 tokens as in the paper, the kNN validation over all of train, "
        "seeds 0-2; otherwise as full (batch 32, lr 5e-5, 3 epochs, the paper's epoch rules)"
    ),
    max_seq_length=128,
    knn_index_examples=None,
    datasets=BENCHMARK_DATASETS,
    seeds=(0, 1, 2),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (CPU, PAPER, FULL, FULL_GPU)}
"""The named profiles."""

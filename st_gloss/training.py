"""Fine-tune a SentenceTransformer on labelled texts with SentenceTransformerTrainer.

Two entry points:

- `fine_tune`: train a model in place on (text, label) pairs (used by ``st-gloss demo``).
- `train`: the ``st-gloss train`` job: data preparation (a stratified validation split when
  the data has none), any registered loss, validation after every epoch, early stopping, the best
  epoch saved with its model card, and a ``metrics.json`` with the per-epoch curve and the test
  metrics of the best epoch. The benchmark runner calls it once per job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from st_gloss.compat import hf_progress_bars, loss_config, warmup_arguments
from st_gloss.functional import UNLABELLED
from st_gloss.losses import GraphGuidedLoss
from st_gloss.samplers import ClassBalancedBatchSampler, SemiSupervisedBatchSampler
from st_gloss.training_heads import HEAD_LEARNING_RATE, snapshot_linear

HEAD_PARAMETERS = r"^classifier\."
"""The loss parameters that get ``--head-lr`` (sentence-transformers' ``learning_rate_mapping``)."""


class _BestModelWarningFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "without load_best_model_at_end" not in record.getMessage()


@contextlib.contextmanager
def _without_best_model_warning():
    """Drop transformers' warning that early stopping runs without ``load_best_model_at_end``:
    st-gloss saves the best epoch itself (:mod:`st_gloss.checkpointing` says why)."""
    target = logging.getLogger("transformers.trainer_callback")
    quiet = _BestModelWarningFilter()
    target.addFilter(quiet)
    try:
        yield
    finally:
        target.removeFilter(quiet)


def format_test(test: dict[str, float]) -> str:
    """The test scores of a job in two lines: the embedding metrics, then the heads.

    Examples:
        >>> print(format_test({"knn_accuracy": 0.66, "knn_macro_f1": 0.65, "probe_accuracy": 0.71,
        ...                    "silhouette_macro": 0.02, "head_logistic_accuracy": 0.71,
        ...                    "head_logistic_macro_f1": 0.7}))
        test (best epoch): kNN accuracy 0.6600 (macro-F1 0.6500), probe accuracy 0.7100, macro silhouette 0.0200
        test accuracy of each head: logistic 0.7100 (macro-F1 0.7000)
    """
    parts = []
    if "knn_accuracy" in test:
        parts.append(f"kNN accuracy {test['knn_accuracy']:.4f} (macro-F1 {test.get('knn_macro_f1', float('nan')):.4f})")
    if "probe_accuracy" in test:
        parts.append(f"probe accuracy {test['probe_accuracy']:.4f}")
    if "silhouette_macro" in test:
        parts.append(f"macro silhouette {test['silhouette_macro']:.4f}")
    lines = ["test (best epoch): " + ", ".join(parts)]
    heads = [key[5:-9] for key in test if key.startswith("head_") and key.endswith("_accuracy")]  # head_<h>_accuracy
    if heads:
        lines.append("test accuracy of each head: " + ", ".join(
            f"{h} {test[f'head_{h}_accuracy']:.4f} (macro-F1 {test[f'head_{h}_macro_f1']:.4f})" for h in heads))
    return "\n".join(lines)


def read_unlabelled(path: str | Path) -> list[str]:
    """The texts of an ``--unlabelled`` file (CSV or JSONL with a ``text`` column; other columns ignored).

    Raises:
        st_gloss.errors.InputError: a missing or empty file, or one without a ``text`` column.

    Examples:
        >>> import tempfile
        >>> file = Path(tempfile.mkdtemp()) / "pool.csv"
        >>> _ = file.write_text("text,label\\nan unseen review,positive\\nanother one,\\n")
        >>> read_unlabelled(file)
        ['an unseen review', 'another one']
    """
    from st_gloss.classifier.records import read_records
    from st_gloss.errors import InputError

    try:
        records = read_records(path)
    except InputError as exc:
        message = str(exc).replace("; pass --text-column NAME to name another column", "")
        raise InputError(f"--unlabelled: {message}") from None
    return records.texts


def _head_learning_rate(config, loss) -> float | None:
    """The linear head's learning rate, or ``None`` for a loss without a head (``--head-lr`` refused there)."""
    from st_gloss.errors import InputError

    if getattr(loss, "classifier", None) is None:
        if config.head_learning_rate is not None:
            raise InputError(f"--head-lr sets the learning rate of a linear head, and --loss {config.loss} has "
                             "none; use it with ce, gloss+ce or supcon+ce, or leave it out")
        return None
    return HEAD_LEARNING_RATE if config.head_learning_rate is None else float(config.head_learning_rate)


def _check_head_metric(config, loss) -> None:
    """``--eval-metric head`` needs a loss with a linear head (checked before anything is written)."""
    from st_gloss.errors import InputError

    if config.eval_metric == "head" and getattr(loss, "classifier", None) is None:
        name = "the untrained model" if loss is None else f"--loss {config.loss}"
        raise InputError(f"--eval-metric head picks the epoch by the loss's linear head, and {name} has none; "
                         "use it with ce, gloss+ce or supcon+ce, or pick knn, probe or silhouette")


def training_arguments(
    output_dir: str,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    warmup_ratio: float,
    seed: int,
    show_progress_bar: bool,
    batch_sampler: Any = ClassBalancedBatchSampler,
    **overrides: Any,
):
    """The trainer arguments every st-gloss run shares: class-balanced batches, seeded, per-epoch logs.

    ``batch_sampler`` is `ClassBalancedBatchSampler` unless given (``SemiSupervisedBatchSampler``
    with unlabelled texts); ``overrides`` (``save_strategy``, ``eval_strategy``...) are passed on.
    """
    from sentence_transformers import SentenceTransformerTrainingArguments

    return SentenceTransformerTrainingArguments(
        output_dir=output_dir,
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        **warmup_arguments(warmup_ratio),
        batch_sampler=batch_sampler,
        seed=seed,
        data_seed=seed,
        logging_strategy="epoch",
        report_to=[],
        dataloader_pin_memory=torch.cuda.is_available(),
        disable_tqdm=not show_progress_bar,
        **overrides,
    )


def fine_tune(
    model,
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    loss: nn.Module | None = None,
    epochs: int = 2,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    warmup_ratio: float = 0.1,
    seed: int = 0,
    output_dir: str | None = None,
    show_progress_bar: bool = True,
):
    """Train ``model`` in place on (text, label) pairs and return the trainer.

    The loss defaults to [`GraphGuidedLoss`][st_gloss.GraphGuidedLoss] with sigma calibrated on the training
    texts by the paper's rule; batches come from [`ClassBalancedBatchSampler`][st_gloss.ClassBalancedBatchSampler].
    Nothing is written unless ``output_dir`` is given (checkpoints then go there).

    Examples:
        >>> from st_gloss.evaluation.models import load_model
        >>> model = load_model()  # doctest: +SKIP
        >>> fine_tune(model, ["good", "great", "bad", "awful"], [1, 1, 0, 0], batch_size=4)  # doctest: +SKIP
    """
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer

    if len(texts) != len(labels):
        raise ValueError(f"fine_tune got {len(texts)} texts but {len(labels)} labels")
    if loss is None:
        loss = GraphGuidedLoss(model, sigma="sqrt_median", seed=seed)
        loss.calibrate_sigma(texts, seed=seed, show_progress_bar=False)
    dataset = Dataset.from_dict({"text": list(texts), "label": [int(y) for y in labels]})
    with tempfile.TemporaryDirectory(prefix="st-gloss-") as scratch:
        args = training_arguments(
            output_dir or scratch,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            warmup_ratio=warmup_ratio,
            seed=seed,
            show_progress_bar=show_progress_bar,
            save_strategy="no" if output_dir is None else "epoch",
        )
        with hf_progress_bars(show_progress_bar):
            trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
            trainer.train()
    return trainer


# ---------------------------------------------------------------------------------------------
# st-gloss train
# ---------------------------------------------------------------------------------------------

EVAL_METRICS = {"knn": "knn_accuracy", "probe": "probe_accuracy", "silhouette": "silhouette_macro",
                "head": "head_macro_f1"}
"""``--eval-metric`` -> the validation metric that picks the best epoch (higher is better).

``head`` is the macro-F1 of the loss's jointly trained linear head (losses with one: ``ce``,
``gloss+ce``, ``supcon+ce``), the G-Loss paper's rule for its integrated mode; ``silhouette`` is
its rule for the standalone mode."""

TEST_METRICS = ("knn", "probe", "silhouette")
"""What the test split of a job is measured with ([`st_gloss.evaluation.evaluate`][st_gloss.evaluation.evaluate])."""

SEMI_SUPERVISED_NEIGHBORS = 10
"""Neighbours per node of the kNN graph that ``--unlabelled`` trains on unless ``--graph`` is given
(the few-shot benchmark's ``gloss+pool@knn`` row)."""

METRICS_FILE = "metrics.json"


@dataclass
class TrainConfig:
    """Everything one ``st-gloss train`` job needs; the fields are the command's options.

    Attributes:
        data: a folder with ``train.csv``/``test.csv`` (``val.csv`` optional), a benchmark name
            found under ``data_root`` (``mr``, ``r8``, ``r52``, ``ohsumed``, ``20ng``) or a bundled
            sample (``sample:mr``, ``sample:r8``): anything `st_gloss.evaluation.load_data` takes.
        loss: a name of [`st_gloss.registry.LOSSES`][st_gloss.registry.LOSSES].
        output: the folder that receives the model of the best epoch and ``metrics.json``.
        model: a model folder or hub name; ``None`` for the bundled all-MiniLM-L6-v2.
        data_root: folder that holds the benchmark datasets (default ``$ST_GLOSS_DATA``).
        epochs: maximum number of epochs.
        batch_size: examples per batch (class-balanced batches, at least 4).
        learning_rate: peak learning rate (linear warmup, then linear decay).
        head_learning_rate: peak learning rate of the loss's linear head (losses with one:
            ``ce``, ``gloss+ce``, ``supcon+ce``); ``None``:
            `st_gloss.training_heads.HEAD_LEARNING_RATE`.
        warmup_ratio: share of the steps used for warmup.
        seed: seed of everything random: the validation carve, subsets, batches, heads, masks.
        max_seq_length: truncate texts to this many tokens.
        labelled_fraction: G-Loss gamma (``None``: the registry default).
        sigma: G-Loss kernel width, a number or a rule (``sqrt_median``, ``dicm``).
        graph_weight: lambda of the ``+ce`` losses (weight of G-Loss or SupCon; CE gets 1 - lambda).
        temperature: SupCon temperature.
        margin: triplet margin.
        memory_steps: G-Loss cross-batch memory, in past batches (``None``: the loss's default).
        graph: G-Loss graph, ``"dense"`` (the paper's) or ``"knn"``; ``None``: dense, or knn with
            10 neighbours when ``unlabelled`` is given (on few labels the dense graph with an
            unlabelled pool cost up to 4.6 points, the kNN graph none; the benchmark page).
        num_neighbors: neighbours per node of the knn graph (``None``: the loss's default, 16;
            10 with ``unlabelled``).
        eval_metric: ``knn``, ``probe``, ``silhouette`` or ``head`` (a loss with a linear head): the
            validation metric that picks the epoch (`EVAL_METRICS`).
        patience: stop after this many epochs without a better validation score.
        k: neighbours of the kNN metrics.
        val_fraction: share of each class carved from train when the data has no validation split.
        max_train_examples: train on a stratified subset of this size (``None``: all).
        max_val_examples: validate on a stratified subset of this size (``None``: all).
        max_test_examples: test on a stratified subset of this size (``None``: all).
        knn_index_examples: the per-epoch kNN validation searches a stratified subset of train of
            this size (``None``: all of train). Encoding all of a large train split after every
            epoch costs about a third of the epoch; the test split always searches all of train.
        unlabelled: a CSV/JSONL file of texts without labels (a ``text`` column; any labels in it are
            ignored) that join the training graph as unlabelled nodes (semi-supervised G-Loss; the
            ``gloss`` losses only).
        unlabelled_fraction: share of each batch given to the unlabelled texts.
        evaluate_test: measure the test split at the end (the runner turns it off while it
            compares learning rates, and measures the chosen one's test split once).
        overwrite: replace an existing output folder of an earlier job.
        encode_batch_size: batch size of the encoding passes of validation and test.
        show_progress_bar: show the trainer's progress bars.
    """

    data: str
    loss: str
    output: str
    model: str | None = None
    data_root: str | None = None
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 5e-5
    head_learning_rate: float | None = None
    warmup_ratio: float = 0.1
    seed: int = 0
    max_seq_length: int = 128
    labelled_fraction: float | None = None
    sigma: float | str | None = None
    graph_weight: float | None = None
    temperature: float | None = None
    margin: float | None = None
    memory_steps: int | None = None
    graph: str | None = None
    num_neighbors: int | None = None
    eval_metric: str = "knn"
    patience: int = 2
    k: int = 10
    val_fraction: float = 0.1
    max_train_examples: int | None = None
    max_val_examples: int | None = None
    max_test_examples: int | None = None
    knn_index_examples: int | None = None
    unlabelled: str | None = None
    unlabelled_fraction: float = 0.5
    evaluate_test: bool = True
    overwrite: bool = False
    encode_batch_size: int = 64
    show_progress_bar: bool = True

    def loss_options(self) -> dict[str, Any]:
        """The loss options that were set (the others take the registry's defaults)."""
        names = ("labelled_fraction", "sigma", "graph_weight", "temperature", "margin", "memory_steps", "graph",
                 "num_neighbors")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


class TrainingInterrupted(Exception):
    """Raised by `train` after Ctrl-C, once a usable model and ``metrics.json`` are saved."""


def _take(split, rows: np.ndarray, name: str | None = None):
    from st_gloss.evaluation.data import Split

    return Split(name or split.name, [split.texts[i] for i in rows], split.labels[rows])


def prepare_data(config: TrainConfig, echo: Callable[[str], None] = print):
    """Load ``config.data`` and make the train/val/test splits of one job, as a ``LabelledData``.

    Without a validation split, ``config.val_fraction`` of each class of train is carved off
    (stratified, seeded with ``config.seed``); the ``max_*_examples`` caps then draw stratified,
    seeded subsets. Every step is written to the ``notes`` of the returned
    [`LabelledData`][st_gloss.evaluation.data.LabelledData] and echoed.

    Examples:
        >>> data = prepare_data(TrainConfig("sample:mr", "gloss", "out"), echo=lambda line: None)
        >>> list(data.splits)
        ['train', 'val', 'test']
        >>> data.notes[0]
        'no validation split: carved 10% of each class of train (30 texts, stratified, seed 0)'
    """
    from st_gloss.errors import InputError
    from st_gloss.evaluation.data import LabelledData
    from st_gloss.evaluation.pipeline import load_data
    from st_gloss.evaluation.splits import stratified_holdout, stratified_subset

    data = load_data(config.data, data_root=config.data_root)
    for split in ("train", "test"):
        if split not in data:
            raise InputError(
                f"{config.data} has no {split} split (splits: {', '.join(data.splits)}); training needs "
                "train and test (val optional): give a folder with train.csv and test.csv"
            )
    notes: list[str] = []
    train, test = data["train"], data["test"]
    if "val" in data:
        val = data["val"]
    else:
        if not 0.0 < config.val_fraction < 1.0:
            raise InputError(f"--val-fraction must lie strictly between 0 and 1, got {config.val_fraction}")
        kept, held = stratified_holdout(train.labels, config.val_fraction, seed=config.seed)
        if len(np.unique(train.labels[held])) < 2:
            raise InputError(
                f"{config.data} has no validation split and {config.val_fraction:.0%} of train gives fewer than "
                "two classes; add a val.csv or raise --val-fraction"
            )
        val = _take(train, held, "val")
        train = _take(train, kept, "train")
        notes.append(
            f"no validation split: carved {config.val_fraction:.0%} of each class of train "
            f"({len(val)} texts, stratified, seed {config.seed})"
        )
    splits = {"train": train, "val": val, "test": test}
    caps = {"train": config.max_train_examples, "val": config.max_val_examples, "test": config.max_test_examples}
    for name, cap in caps.items():
        if cap is not None and cap < len(splits[name]):
            rows = stratified_subset(splits[name].labels, cap, seed=config.seed)
            notes.append(f"{name}: stratified subset of {len(rows)} of {len(splits[name])} texts (seed {config.seed})")
            splits[name] = _take(splits[name], rows)
    val_classes = len(np.unique(splits["val"].labels))
    if len(splits["val"]) <= val_classes:
        raise InputError(
            f"the validation split has {len(splits['val'])} texts for {val_classes} classes; the silhouette needs "
            "more texts than classes: add a val.csv, raise --val-fraction or use more data"
        )
    if len(splits["val"]) < SMALL_VALIDATION:
        notes.append(
            f"warning: the validation split has {len(splits['val'])} texts, so its score moves in steps of "
            f"{1 / len(splits['val']):.0%} and the best epoch is picked on noise as much as on skill (ties keep "
            "the earlier epoch); with few labels, add a val.csv of more texts or budget a fixed number of "
            "epochs and read the test score"
        )
    for note in notes:
        echo(note)
    return LabelledData(data.name, data.source, splits, list(data.label_names), dict(data.metadata), notes)


SMALL_VALIDATION = 50
"""Below this many validation texts `prepare_data` warns that the epoch selection is noisy."""


_FLOAT_OPTIONS = {  # field -> (flag, lowest, highest, open at the low end, open at the high end)
    "learning_rate": ("--lr", 0.0, None, True, False),
    "head_learning_rate": ("--head-lr", 0.0, None, True, False),
    "warmup_ratio": ("--warmup-ratio", 0.0, 1.0, False, False),
    "val_fraction": ("--val-fraction", 0.0, 1.0, True, True),
    "unlabelled_fraction": ("--unlabelled-fraction", 0.0, 1.0, False, True),
    "labelled_fraction": ("--labelled-fraction", 0.0, 1.0, True, True),
    "graph_weight": ("--graph-weight", 0.0, 1.0, False, False),
    "temperature": ("--temperature", 0.0, None, True, False),
    "margin": ("--margin", 0.0, None, True, False),
}


def _check_float(config: TrainConfig, field_name: str) -> None:
    from st_gloss.errors import InputError

    flag, low, high, low_open, high_open = _FLOAT_OPTIONS[field_name]
    value = getattr(config, field_name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{flag} must be a finite number, got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        upper = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
        span = f"{'(' if low_open else '['}{low:g}, {upper}"
        raise InputError(f"{flag} must lie in {span}, got {value!r}")


def _check_config(config: TrainConfig, *, trains: bool = True) -> None:
    from st_gloss.errors import InputError
    from st_gloss.registry import LOSSES

    if trains and config.loss not in LOSSES:
        raise InputError(f"unknown loss {config.loss!r}; choose one of {', '.join(LOSSES)}")
    if config.eval_metric not in EVAL_METRICS:
        raise InputError(f"unknown --eval-metric {config.eval_metric!r}; choose one of {', '.join(EVAL_METRICS)}")
    checks = [
        (config.epochs >= 1, f"--epochs must be at least 1, got {config.epochs}"),
        (config.batch_size >= 4, f"--batch-size must be at least 4 (two classes x two texts), got {config.batch_size}"),
        (config.patience >= 1, f"--patience must be at least 1, got {config.patience}"),
        (config.max_seq_length >= 1, f"--max-seq-length must be at least 1, got {config.max_seq_length}"),
        (config.k >= 1, f"--k must be at least 1, got {config.k}"),
        (0 <= config.seed < 2**32, f"--seed must lie in 0..{2**32 - 1} (numpy's seeds), got {config.seed}"),
        (config.encode_batch_size >= 1, f"encode_batch_size must be at least 1, got {config.encode_batch_size}"),
        (config.graph in (None, "dense", "knn"), f"--graph must be dense or knn, got {config.graph!r}"),
        (config.num_neighbors is None or config.num_neighbors >= 1,
         f"--num-neighbors must be at least 1, got {config.num_neighbors}"),
        (config.knn_index_examples is None or config.knn_index_examples >= 1,
         f"knn_index_examples must be at least 1 (or None: all of train), got {config.knn_index_examples}"),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)
    for name in _FLOAT_OPTIONS:
        _check_float(config, name)
    if isinstance(config.sigma, (int, float)) and not (math.isfinite(config.sigma) and config.sigma > 0):
        raise InputError(f"--sigma must be a positive finite number or a rule, got {config.sigma!r}")


def check_output(path: str | Path, overwrite: bool) -> Path:
    """Check that the output folder can take a new job, without touching it.

    Refused: a file; a non-empty folder without ``overwrite``; with ``overwrite``, a non-empty
    folder that holds no earlier job (no ``metrics.json`` or ``modules.json``), so a mistyped path
    never deletes unrelated files; a location that cannot be written.

    Examples:
        >>> check_output("/tmp/st-gloss-new-folder", overwrite=False)
        PosixPath('/tmp/st-gloss-new-folder')
    """
    from st_gloss.errors import InputError
    from st_gloss.evaluation.report import check_writable

    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"output {folder} is a file; give a folder for the model and metrics.json")
    if folder.is_dir() and any(folder.iterdir()):
        if not overwrite:
            raise InputError(f"output folder {folder} exists and is not empty; pass --overwrite or choose a new folder")
        if not ((folder / METRICS_FILE).exists() or (folder / "modules.json").exists()):
            raise InputError(
                f"output folder {folder} is not empty and holds no earlier st-gloss job (no metrics.json or "
                "modules.json); --overwrite only replaces such folders: choose a new folder"
            )
    check_writable(folder)
    return folder


def prepare_output(path: str | Path, overwrite: bool) -> Path:
    """Create the output folder, emptying an earlier job's folder with ``overwrite`` (see `check_output`).

    Call it last, once the data and the model are loaded: it is the step that deletes.

    Examples:
        >>> prepare_output("/tmp/st-gloss-new-folder", overwrite=False)  # doctest: +SKIP
        PosixPath('/tmp/st-gloss-new-folder')
    """
    folder = check_output(path, overwrite)
    if folder.is_dir() and any(folder.iterdir()):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _check_paths(config: TrainConfig, data=None) -> Path:
    """The output folder, checked against the model and the data before anything is loaded or deleted."""
    from st_gloss.evaluation.models import resolve_model_name
    from st_gloss.evaluation.report import refuse_overlap

    inputs = {"the model": resolve_model_name(config.model), "the data": config.data}
    if config.unlabelled is not None:
        inputs["the unlabelled file"] = config.unlabelled
    if data is not None:
        inputs["the data folder"] = data.source
    refuse_overlap(config.output, "--output", inputs)
    return check_output(config.output, config.overwrite)


def validation_evaluators(data, config: TrainConfig, loss=None) -> list:
    """The evaluators run after every epoch: kNN (train as index, val as queries) and silhouette on val,
    plus the linear probe or the loss's linear head when it picks the epoch.

    The kNN index is a stratified subset of train when ``config.knn_index_examples`` is smaller.

    Raises:
        InputError: ``eval_metric="head"`` for a loss without a linear head.
    """
    from st_gloss.evaluation.evaluators import (
        KNNEvaluator,
        LinearHeadEvaluator,
        LinearProbeEvaluator,
        SilhouetteEvaluator,
    )
    from st_gloss.evaluation.splits import stratified_subset

    train, val = data["train"], data["val"]
    index = train
    if config.knn_index_examples is not None and config.knn_index_examples < len(train):
        index = _take(train, stratified_subset(train.labels, config.knn_index_examples, seed=config.seed))
    common = {"batch_size": config.encode_batch_size, "write_csv": False}
    evaluators = [
        KNNEvaluator(
            index.texts, index.labels.tolist(), val.texts, val.labels.tolist(), k=config.k, name="knn", **common
        ),
        SilhouetteEvaluator(val.texts, val.labels.tolist(), name="silhouette", seed=config.seed, **common),
    ]
    if config.eval_metric == "probe":
        evaluators.append(LinearProbeEvaluator(train, val, seed=config.seed, **common))
    if config.eval_metric == "head":
        _check_head_metric(config, loss)
        evaluators.append(LinearHeadEvaluator(loss.classifier, val.texts, val.labels.tolist(), name="head",
                                              **common))
    return evaluators


def measure_test(model, data, config: TrainConfig, *, linear=None, output: Path | None = None):
    """The test scores of a job, and the classifier it keeps: ``(test, per_class, classifier)``.

    [`st_gloss.evaluation.evaluate`][st_gloss.evaluation.evaluate] on the test split (kNN and the linear probe use train
    as index and training set; the silhouette is that of test), then the heads of
    `st_gloss.training_heads.fit_heads` fit on the same training embeddings (``linear``:
    the loss's head at the best epoch) and scored on the same test embeddings. ``test`` has the
    keys ``knn_accuracy``, ``knn_macro_f1``, ``probe_accuracy``, ``probe_macro_f1``,
    ``silhouette_macro``, ``silhouette_micro`` and ``head_<head>_accuracy``/``_macro_f1`` per
    head; ``per_class`` is the default head's per-class table by label name. With ``output``,
    the heads are saved there beside the model (`save_heads`).

    Examples:
        >>> test, per_class, classifier = measure_test(model, data, config)  # doctest: +SKIP
        >>> test["knn_accuracy"], test["head_logistic_accuracy"]  # doctest: +SKIP
        (0.84, 0.86)
    """
    from st_gloss.evaluation.pipeline import evaluate
    from st_gloss.training_heads import fit_heads, outputs_unit_vectors, score_heads

    report = evaluate(model, data, TEST_METRICS, split="test", k=config.k, batch_size=config.encode_batch_size,
                      seed=config.seed)
    classifier = fit_heads(model, report.index_embeddings, data["train"].labels, data.label_names, linear=linear,
                           seed=config.seed, batch_size=config.encode_batch_size)
    if output is not None:
        classifier.save_heads(output)
    raw = None
    if linear is not None and not outputs_unit_vectors(model):  # the linear head saw unnormalised outputs
        raw = classifier.encode(data["test"].texts)
    heads, per_class = score_heads(classifier, report.embeddings, data["test"].labels, raw_embeddings=raw)
    return {**report.as_dict(), **heads}, per_class, classifier


def keep_heads(model, data, config: TrainConfig, output: Path, *, linear=None):
    """Save the classifier of a job whose test split is not measured (the runner's learning-rate trials).

    The heads of `st_gloss.training_heads.fit_heads` on the training embeddings, saved beside
    the model in ``output``; returns the classifier.
    """
    from st_gloss.evaluation.encode import encode_texts
    from st_gloss.training_heads import fit_heads

    train_split = data["train"]
    vectors = encode_texts(model, train_split.texts, batch_size=config.encode_batch_size)
    classifier = fit_heads(model, vectors, train_split.labels, data.label_names, linear=linear, seed=config.seed,
                           batch_size=config.encode_batch_size)
    classifier.save_heads(output)
    return classifier


def _payload(config: TrainConfig, data, status: str, **extra: Any) -> dict[str, Any]:
    from st_gloss.evaluation.report import environment_info

    return {
        "status": status,
        "config": dataclasses.asdict(config),
        "data": data.describe(),
        "eval_metric": EVAL_METRICS[config.eval_metric],
        **extra,
        "environment": environment_info(),
    }


def write_metrics(folder: Path, payload: dict[str, Any]) -> None:
    """Write ``metrics.json`` atomically (a temporary file, then a rename)."""
    from st_gloss.evaluation.report import write_json

    write_json(payload, folder / METRICS_FILE)


def train(config: TrainConfig, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run one ``st-gloss train`` job and return what it writes to ``metrics.json``.

    Steps: check the options and the output folder (writable, not the model or the data, no
    unrelated files); prepare the splits; load the model; build the loss from the registry
    (G-Loss's sigma calibrated on the training texts); only then empty the output folder of an
    earlier job; train with SentenceTransformerTrainer and class-balanced batches, validating
    after every epoch; save the model whenever the validation metric improves (so the output
    folder always holds the best epoch so far, with its model card); stop after ``patience``
    epochs without improvement (transformers' ``EarlyStoppingCallback``); then reload the best
    epoch and measure the test split once with [`st_gloss.evaluation.evaluate`][st_gloss.evaluation.evaluate].

    Ctrl-C stops training, keeps the best epoch so far (or the current weights when no epoch has
    finished) with a ``metrics.json`` whose ``status`` is ``"interrupted"``, and raises
    `TrainingInterrupted`.

    Raises:
        st_gloss.errors.InputError: bad options, data or output folder.
        TrainingInterrupted: after Ctrl-C.

    Examples:
        >>> result = train(TrainConfig("sample:mr", "gloss", "runs/mr-gloss", epochs=1))  # doctest: +SKIP
        >>> result["best_epoch"], result["test"]["knn_accuracy"]  # doctest: +SKIP
        (1, 0.74)
    """
    import transformers
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
    )

    from st_gloss.checkpointing import BestEpochCallback, early_stopping
    from st_gloss.errors import InputError
    from st_gloss.evaluation.models import load_model
    from st_gloss.registry import LOSSES, build_loss, get_spec

    _check_config(config)
    spec = get_spec(config.loss)
    given = config.loss_options()
    refused = sorted(set(given) - set(spec.options))
    if refused:
        flags = ", ".join("--" + name.replace("_", "-") for name in refused)
        takes = ", ".join("--" + name.replace("_", "-") for name in spec.options) or "no loss options"
        raise InputError(f"--loss {config.loss} does not use {flags}; it takes {takes}")
    _check_paths(config)  # fail before the slow steps, and before anything is deleted
    if config.unlabelled is not None and not spec.accepts_unlabelled:
        takes = ", ".join(name for name, other in LOSSES.items() if other.accepts_unlabelled)
        raise InputError(f"--unlabelled adds texts without a label, which --loss {config.loss} cannot use; use a "
                         f"G-Loss ({takes}), or leave --unlabelled out")
    unlabelled = read_unlabelled(config.unlabelled) if config.unlabelled is not None else []
    if unlabelled and config.graph is None:
        # The measured choice for an unlabelled pool: the dense graph blurs it into the classes.
        given["graph"] = "knn"
        given.setdefault("num_neighbors", SEMI_SUPERVISED_NEIGHBORS)
    data = prepare_data(config, echo)
    _check_paths(config, data)

    transformers.set_seed(config.seed)
    with hf_progress_bars(config.show_progress_bar):
        model = load_model(config.model, max_seq_length=config.max_seq_length)
    try:
        loss = build_loss(config.loss, model, data.num_classes, **given)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    head_rate = _head_learning_rate(config, loss)
    _check_head_metric(config, loss)
    train_split = data["train"]
    if spec.calibrates_sigma and isinstance(getattr(loss, "sigma", None), str):
        sigma = loss.calibrate_sigma(
            train_split.texts,
            train_split.labels.tolist(),
            seed=config.seed,
            batch_size=config.encode_batch_size,
            show_progress_bar=False,
        )
        echo(f"sigma calibrated on the training texts ({loss.sigma} rule): {sigma:.4f}")
    echo(
        f"data: {data.name} ({len(train_split)} train, {len(data['val'])} val, {len(data['test'])} test, "
        f"{data.num_classes} classes); loss: {config.loss}; model: {config.model or 'bundled all-MiniLM-L6-v2'}"
    )
    output = prepare_output(config.output, config.overwrite)  # everything is loaded: now it may delete

    base = {"loss": {"name": config.loss, "config": loss_config(loss)}, "model": config.model or "bundled"}
    if head_rate is not None:
        base["head_learning_rate"] = head_rate
    if unlabelled:
        base["unlabelled"] = {"file": str(config.unlabelled), "texts": len(unlabelled),
                              "fraction": config.unlabelled_fraction}
        echo(f"unlabelled texts: {len(unlabelled)} from {config.unlabelled}, "
             f"{config.unlabelled_fraction:.0%} of every batch, on a {getattr(loss, 'graph', '?')} graph"
             + (f" of {loss.num_neighbors} neighbours" if getattr(loss, "graph", None) == "knn" else ""))
    best_linear: dict[str, Any] = {}  # the loss's linear head at the best epoch
    dataset = Dataset.from_dict({"text": train_split.texts + unlabelled,
                                 "label": train_split.labels.tolist() + [UNLABELLED] * len(unlabelled)})
    metric = EVAL_METRICS[config.eval_metric]
    stopper = early_stopping(config.patience)
    callback = BestEpochCallback(
        model,
        output,
        metric=metric,
        stopper=stopper,
        echo=echo,
        on_epoch=lambda curve, best: write_metrics(
            output, _payload(config, data, "running", **base, curve=curve, **best)
        ),
        on_best=lambda: best_linear.update(state=snapshot_linear(loss)),
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="st-gloss-trainer-") as scratch:
        args = training_arguments(
            scratch,
            epochs=config.epochs,
            batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            warmup_ratio=config.warmup_ratio,
            seed=config.seed,
            show_progress_bar=config.show_progress_bar,
            eval_strategy="epoch",
            save_strategy="no",
            metric_for_best_model=f"eval_{metric}",
            greater_is_better=True,
            **({"batch_sampler": SemiSupervisedBatchSampler.with_options(
                unlabelled_fraction=config.unlabelled_fraction)} if unlabelled else {}),
            **({} if head_rate is None else {"learning_rate_mapping": {HEAD_PARAMETERS: head_rate}}),
        )
        with hf_progress_bars(config.show_progress_bar):  # the model card's widget bar comes at init
            trainer = SentenceTransformerTrainer(
                model=model,
                args=args,
                train_dataset=dataset,
                loss=loss,
                evaluator=validation_evaluators(data, config, loss),
                callbacks=[stopper, callback],
            )
        if not config.show_progress_bar:
            # No progress: no per-log dicts either; the callback prints one line per epoch.
            from transformers import PrinterCallback

            trainer.remove_callback(PrinterCallback)
        try:
            with hf_progress_bars(config.show_progress_bar), _without_best_model_warning():
                trainer.train()
        except KeyboardInterrupt:
            if callback.best_epoch is None:
                model.save(str(output), safe_serialization=True)
                what = "no epoch finished: the saved model is the unvalidated state at the interruption"
            else:
                what = f"the saved model is epoch {callback.best_epoch}, the best validated so far"
            write_metrics(
                output,
                _payload(config, data, "interrupted", **base, curve=callback.curve, **callback.summary(), note=what),
            )
            raise TrainingInterrupted(f"interrupted; {what}, in {output}") from None
    train_seconds = time.perf_counter() - started

    result = {**base, "curve": callback.curve, **callback.summary(), "train_seconds": train_seconds}
    with hf_progress_bars(config.show_progress_bar):
        best = SentenceTransformer(str(output), device=str(model.device))
    linear = best_linear.get("state")
    started = time.perf_counter()
    if config.evaluate_test:
        result["test"], result["test_per_class"], classifier = measure_test(
            best, data, config, linear=linear, output=output
        )
        result["test_seconds"] = time.perf_counter() - started
        echo(format_test(result["test"]))
    else:
        classifier = keep_heads(best, data, config, output, linear=linear)
    result["classifier"] = {"heads": list(classifier.heads), "default_head": classifier.default_head,
                            "labels": list(classifier.labels)}
    payload = _payload(config, data, "finished", **result)
    write_metrics(output, payload)
    echo(f"classifier of epoch {callback.best_epoch} (heads: {', '.join(classifier.heads)}; default "
         f"{classifier.default_head}) and {METRICS_FILE} saved in {output}")
    return payload


def evaluate_untrained(config: TrainConfig, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """The zero-shot row of a benchmark: the model without training, on the same splits as `train`.

    Writes ``metrics.json`` (no model) to ``config.output`` with the validation metrics as epoch 0
    and, when ``config.evaluate_test``, the test metrics.

    Examples:
        >>> evaluate_untrained(TrainConfig("sample:mr", "gloss", "runs/mr-zero-shot"))["test"]  # doctest: +SKIP
    """
    import transformers

    from st_gloss.evaluation.models import load_model

    _check_config(config, trains=False)
    _check_head_metric(config, None)
    _check_paths(config)
    data = prepare_data(config, echo)
    _check_paths(config, data)
    transformers.set_seed(config.seed)
    model = load_model(config.model, max_seq_length=config.max_seq_length)
    output = prepare_output(config.output, config.overwrite)
    started = time.perf_counter()
    val: dict[str, float] = {}
    for evaluator in validation_evaluators(data, config):
        val.update(evaluator(model))
    curve = [{"epoch": 0, "val": val, "train_seconds": 0.0, "eval_seconds": time.perf_counter() - started}]
    metric = EVAL_METRICS[config.eval_metric]
    result: dict[str, Any] = {
        "loss": {"name": "zero-shot", "config": {}},
        "model": config.model or "bundled",
        "curve": curve,
        "best_epoch": 0,
        "best_val": val[metric],
        "epochs_run": 0,
        "stopped_early": False,
        "train_seconds": 0.0,
    }
    if config.evaluate_test:
        result["test"], result["test_per_class"], _ = measure_test(model, data, config)
    payload = _payload(config, data, "finished", **result)
    write_metrics(output, payload)
    return payload

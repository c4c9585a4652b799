"""``st-gloss train``: a thin click layer over [`st_gloss.training.train`][st_gloss.training.train]."""

from __future__ import annotations

import math
import sys

import click

from st_gloss.cli.options import POSITIVE_FLOAT, FiniteFloatRange, progress_option, seed_option
from st_gloss.registry import LOSSES, describe


def _sigma(ctx, param, value):
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        from st_gloss.sigma import SIGMA_RULES

        if value not in SIGMA_RULES:
            rules = ", ".join(SIGMA_RULES)
            raise click.BadParameter(f"{value!r} is neither a positive number nor one of {rules}") from None
        return value
    if not (math.isfinite(number) and number > 0):
        raise click.BadParameter(f"sigma must be a positive finite number, got {value}")
    return number


@click.command("train", epilog="Losses:\n\n\b\n" + describe())
@click.argument("model", required=False)
@click.option(
    "--data",
    required=True,
    help="Folder with train.csv/test.csv (val.csv optional), a benchmark "
    "name under --data-root (mr, r8, r52, ohsumed, 20ng), or a bundled sample "
    "(sample:mr, sample:r8).",
)
@click.option(
    "--data-root",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder of the benchmark datasets [default: $ST_GLOSS_DATA].",
)
@click.option("--loss", required=True, type=click.Choice(list(LOSSES)), help="The training loss (see below).")
@click.option(
    "--output",
    required=True,
    type=click.Path(),
    help="Folder for the best model and metrics.json (checked writable, and apart from MODEL and --data, "
    "before training starts).",
)
@click.option("--overwrite", is_flag=True, help="Replace an output folder of an earlier job (once all is loaded).")
@click.option("--epochs", default=3, show_default=True, type=click.IntRange(min=1), help="Maximum epochs.")
@click.option(
    "--batch-size", default=32, show_default=True, type=click.IntRange(min=4), help="Texts per class-balanced batch."
)
@click.option("--lr", "learning_rate", default=5e-5, show_default=True, type=POSITIVE_FLOAT, help="Peak learning rate.")
@click.option(
    "--head-lr",
    "head_learning_rate",
    default=None,
    type=POSITIVE_FLOAT,
    help="Peak learning rate of the linear head of ce, gloss+ce and supcon+ce (the encoder keeps --lr) "
    "[default: 1e-2].",
)
@click.option(
    "--warmup-ratio",
    default=0.1,
    show_default=True,
    type=FiniteFloatRange(0, 1),
    help="Share of the steps with a linear warmup (then linear decay).",
)
@seed_option("Seed of everything random: the validation carve, subsets, batches, heads, masks.")
@click.option(
    "--max-seq-length",
    default=128,
    show_default=True,
    type=click.IntRange(min=1),
    help="Truncate texts to this many tokens.",
)
@click.option(
    "--labelled-fraction",
    default=None,
    type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
    help="G-Loss gamma: share of each class that keeps its label [default: 0.7].",
)
@click.option(
    "--sigma",
    default=None,
    callback=_sigma,
    help="G-Loss kernel width: a number, sqrt_median or dicm [default: sqrt_median, calibrated on train].",
)
@click.option(
    "--graph-weight",
    default=None,
    type=FiniteFloatRange(0, 1),
    help="Lambda of gloss+ce and supcon+ce: weight of G-Loss/SupCon; CE gets 1 - lambda [default: 0.8].",
)
@click.option("--temperature", default=None, type=POSITIVE_FLOAT, help="SupCon temperature [default: 0.1].")
@click.option("--margin", default=None, type=POSITIVE_FLOAT, help="Triplet margin [default: 0.5].")
@click.option(
    "--memory-steps",
    default=None,
    type=click.IntRange(min=0),
    help="G-Loss cross-batch memory: add the last N batches to the graph as labelled nodes "
    "[default: 0; 4 for gloss+memory].",
)
@click.option(
    "--graph",
    default=None,
    type=click.Choice(["dense", "knn"]),
    help="G-Loss graph: dense (fully connected, the paper's) or knn (each text linked to its --num-neighbors "
    "nearest) [default: dense; knn with --unlabelled].",
)
@click.option(
    "--num-neighbors",
    default=None,
    type=click.IntRange(min=1),
    help="Neighbours per text of the knn graph [default: 16; 10 with --unlabelled].",
)
@click.option(
    "--eval-metric",
    default="knn",
    show_default=True,
    type=click.Choice(["knn", "probe", "silhouette", "head"]),
    help="Validation metric that picks the best epoch (kNN accuracy, probe accuracy, macro silhouette, "
    "macro-F1 of the loss's linear head: ce, gloss+ce, supcon+ce).",
)
@click.option(
    "--patience",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="Stop after this many epochs without a better validation score.",
)
@click.option(
    "--val-fraction",
    default=0.1,
    show_default=True,
    type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
    help="Share of each class carved from train when the data has no validation split.",
)
@click.option(
    "--max-train-examples", default=None, type=click.IntRange(min=4), help="Train on a stratified subset of this size."
)
@click.option(
    "--max-test-examples", default=None, type=click.IntRange(min=2), help="Test on a stratified subset of this size."
)
@click.option(
    "--unlabelled",
    default=None,
    type=click.Path(dir_okay=False),
    help="CSV/JSONL file of texts without labels (a text column; labels in it are ignored) to add to the "
    "training graph as unlabelled nodes (semi-supervised; gloss losses only).",
)
@click.option(
    "--unlabelled-fraction",
    default=0.5,
    show_default=True,
    type=FiniteFloatRange(0, 1, max_open=True),
    help="Share of every batch given to the --unlabelled texts.",
)
@progress_option("The trainer's progress bars.")
@click.option("--quiet", is_flag=True, hidden=True, help="Old spelling of --no-progress.")
def train_command(model, progress, quiet, **options) -> None:
    """Fine-tune MODEL (default: the bundled all-MiniLM-L6-v2) with one loss; keep the best epoch as a classifier.

    Validates after every epoch (kNN, silhouette; --eval-metric picks the epoch), stops after
    --patience epochs without improvement, and saves the best epoch into --output as a classifier
    that `st-gloss predict` and TextClassifier.from_pretrained load: the model with its model card,
    the label names and its heads (the loss's trained linear head for ce, gloss+ce and supcon+ce,
    the default there; a logistic head fit on the training texts, the default otherwise; a
    propagation head). metrics.json holds the per-epoch curve and the test metrics of the best
    epoch: kNN, linear probe, silhouette and every head's accuracy and macro-F1.

    \b
    Examples:
        st-gloss train --data sample:mr --loss gloss --output runs/mr-gloss --epochs 1
        st-gloss train ./my-model --data r8 --data-root ../shared/data --loss gloss+ce --output runs/r8
        st-gloss train --data sample:mr --loss gloss --unlabelled pool.csv --output runs/mr-semi
        st-gloss predict runs/mr-gloss --data new_reviews.csv --output predictions.csv
    """
    from st_gloss.training import TrainConfig, TrainingInterrupted, train

    config = TrainConfig(model=model, show_progress_bar=progress and not quiet, **options)
    try:
        train(config, echo=click.echo)
    except TrainingInterrupted as exc:
        click.echo(f"\n{exc}", err=True)
        sys.exit(130)

"""``st-gloss demo``: fine-tune the bundled MiniLM with G-Loss on a bundled sample, before/after."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import click

from st_gloss.errors import InputError


@dataclass
class Scores:
    """What the demo measures on the test split."""

    knn_accuracy: float
    knn_macro_f1: float
    macro_silhouette: float


def measure(model, data, *, k: int = 10, batch_size: int = 32) -> Scores:
    """kNN accuracy/macro-F1 (train as index, test as queries) and the macro cosine silhouette of test."""
    from st_gloss.training import PreparedData, measure_test_split

    splits = PreparedData(
        name="", source="", label_names=data.label_names, train=data["train"], val=None, test=data["test"], notes=[]
    )
    scores = measure_test_split(model, splits, k=k, batch_size=batch_size)
    return Scores(scores["knn_accuracy"], scores["knn_macro_f1"], scores["silhouette_macro"])


def run_demo(
    model_name: str | None = None,
    data: str = "mr",
    *,
    epochs: int = 2,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    max_seq_length: int = 128,
    seed: int = 0,
    save_to: str | None = None,
    echo=print,
) -> tuple[Scores, Scores]:
    """Measure, fine-tune with GraphGuidedLoss, measure again; return (before, after).

    ``data`` is a bundled sample (``"mr"``, ``"r8"``) or anything
    :func:`st_gloss.evaluation.data.load_labelled_data` accepts (with train and test splits).

    Examples:
        >>> before, after = run_demo()  # about 2 minutes on 2 CPU cores  # doctest: +SKIP
    """
    from st_gloss.evaluation.data import load_labelled_data
    from st_gloss.evaluation.models import load_model
    from st_gloss.evaluation.samples import SAMPLES, sample_path
    from st_gloss.training import fine_tune

    source = sample_path(data) if data in SAMPLES else data
    dataset = load_labelled_data(source)
    for split in ("train", "test"):
        if split not in dataset:
            raise InputError(f"the demo needs a train and a test split; {data} has {sorted(dataset.splits)}")
    if save_to is not None and Path(save_to).exists() and any(Path(save_to).iterdir()):
        raise InputError(f"{save_to} exists and is not empty; choose a new folder for the model")
    import transformers

    transformers.set_seed(seed)
    model = load_model(model_name, max_seq_length=max_seq_length)
    train = dataset["train"]
    echo(
        f"data: {data} ({len(train)} train, {len(dataset['test'])} test, {dataset.num_classes} classes); "
        f"model: {model_name or 'bundled all-MiniLM-L6-v2'}"
    )
    start = time.perf_counter()
    before = measure(model, dataset, batch_size=batch_size)
    echo(f"zero-shot evaluation: {time.perf_counter() - start:.1f}s")
    start = time.perf_counter()
    fine_tune(
        model,
        train.texts,
        train.labels.tolist(),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
    )
    echo(f"fine-tuning with GraphGuidedLoss ({epochs} epochs): {time.perf_counter() - start:.1f}s")
    after = measure(model, dataset, batch_size=batch_size)
    echo("")
    echo(format_comparison(before, after))
    if save_to is not None:
        model.save(save_to, safe_serialization=True)
        echo(f"\nmodel saved to {save_to}")
    return before, after


def format_comparison(before: Scores, after: Scores) -> str:
    """A three-row table of the test metrics before and after fine-tuning."""
    rows = [
        ("kNN accuracy (k=10)", before.knn_accuracy, after.knn_accuracy),
        ("kNN macro-F1", before.knn_macro_f1, after.knn_macro_f1),
        ("macro silhouette (cosine)", before.macro_silhouette, after.macro_silhouette),
    ]
    lines = [f"{'test metric':<27}{'before':>9}{'after':>9}{'change':>9}"]
    lines += [f"{name:<27}{b:>9.4f}{a:>9.4f}{a - b:>+9.4f}" for name, b, a in rows]
    return "\n".join(lines)


@click.command("demo")
@click.option(
    "--data",
    default="mr",
    show_default=True,
    help="Bundled sample (mr, r8), a dataset name or a folder with train/test CSVs.",
)
@click.option(
    "--model", "model_name", default=None, help="Model folder or name [default: the bundled all-MiniLM-L6-v2]."
)
@click.option("--epochs", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=4))
@click.option("--lr", "learning_rate", default=5e-5, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--max-seq-length", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--save",
    "save_to",
    default=None,
    type=click.Path(file_okay=False),
    help="Save the fine-tuned model to this new folder.",
)
def demo_command(data, model_name, epochs, batch_size, learning_rate, max_seq_length, seed, save_to) -> None:
    """Fine-tune a model with G-Loss on a small labelled sample and print test metrics before and after."""
    run_demo(
        model_name,
        data,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_seq_length=max_seq_length,
        seed=seed,
        save_to=save_to,
        echo=click.echo,
    )

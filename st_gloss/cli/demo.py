"""``st-gloss demo``: a thin click layer over [`st_gloss.demo.run_demo`][st_gloss.demo.run_demo]."""

from __future__ import annotations

import click

from st_gloss.cli.options import POSITIVE_FLOAT, progress_option, seed_option


@click.command("demo")
@click.option(
    "--data",
    default="sample:mr",
    show_default=True,
    help="Bundled sample (sample:mr, sample:r8; mr and r8 work too), a dataset name or a folder with "
    "train/test CSVs.",
)
@click.option(
    "--model", "model_name", default=None, help="Model folder or name [default: the bundled all-MiniLM-L6-v2]."
)
@click.option("--epochs", default=2, show_default=True, type=click.IntRange(min=1), help="Fine-tuning epochs.")
@click.option(
    "--batch-size", default=32, show_default=True, type=click.IntRange(min=4), help="Texts per class-balanced batch."
)
@click.option("--lr", "learning_rate", default=5e-5, show_default=True, type=POSITIVE_FLOAT, help="Learning rate.")
@click.option(
    "--max-seq-length",
    default=128,
    show_default=True,
    type=click.IntRange(min=1),
    help="Truncate texts to this many tokens.",
)
@seed_option("Seed of the batches, G-Loss's label masks and the sigma calibration.")
@click.option(
    "--save",
    "save_to",
    default=None,
    type=click.Path(file_okay=False),
    help="Save the fine-tuned classifier (model, logistic head, label names) to this new folder, for "
    "st-gloss predict (checked before training starts).",
)
@progress_option("The trainer's progress bars.")
def demo_command(data, model_name, epochs, batch_size, learning_rate, max_seq_length, seed, save_to, progress) -> None:
    """Fine-tune a model with G-Loss on a small sample, print test metrics before and after, classify new texts.

    \b
    Examples:
      st-gloss demo
      st-gloss demo --data sample:r8 --epochs 1 --save runs/r8-demo
    """
    from st_gloss.demo import run_demo

    run_demo(
        model_name,
        data,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_seq_length=max_seq_length,
        seed=seed,
        save_to=save_to,
        show_progress_bar=progress,
        echo=click.echo,
    )

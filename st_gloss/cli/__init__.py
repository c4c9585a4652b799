"""The ``st-gloss`` command: a thin click layer over the library."""

from __future__ import annotations

import sys

import click

from st_gloss.errors import InputError


class _Group(click.Group):
    """A group that turns bad input into a one-line message and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="st-gloss")
def main() -> None:
    """G-Loss for sentence-transformers: train with a graph loss, measure embedding quality.

    Every command takes the same data names (a folder of CSVs, sample:mr or sample:r8, a dataset
    under --data-root), --overwrite where it writes over something, and --progress/--no-progress.

    \b
    Examples:
      st-gloss demo
      st-gloss eval --data sample:r8
      st-gloss train --data sample:mr --loss gloss --output runs/mr-gloss --epochs 1
    """


def _register() -> None:
    from st_gloss.cli.demo import demo_command
    from st_gloss.cli.eval import eval_command
    from st_gloss.cli.predict import predict_command
    from st_gloss.cli.train import train_command

    main.add_command(demo_command, "demo")
    main.add_command(eval_command, "eval")
    main.add_command(train_command, "train")
    main.add_command(predict_command, "predict")


_register()

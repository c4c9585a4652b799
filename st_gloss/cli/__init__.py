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
    """G-Loss for sentence-transformers: train with a graph loss, measure embedding quality."""


def _register() -> None:
    from st_gloss.cli.eval import eval_command
    from st_gloss.demo import demo_command

    main.add_command(demo_command, "demo")
    main.add_command(eval_command, "eval")
    main.add_command(__import__("st_gloss.cli.train", fromlist=["train_command"]).train_command, "train")


_register()

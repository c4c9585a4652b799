"""Option types and options that every ``st-gloss`` command shares, so they read and check alike."""

from __future__ import annotations

import math

import click

MAX_SEED = 2**32 - 1  # numpy's RandomState, which the probe and the samplers seed, takes 0..2**32-1


class FiniteFloatRange(click.FloatRange):
    """A ``click.FloatRange`` that also refuses ``nan`` and ``inf`` (which pass every comparison test).

    Examples:
        >>> FiniteFloatRange(0, 1).convert("0.5", None, None)
        0.5
        >>> FiniteFloatRange(0, 1).convert("nan", None, None)
        Traceback (most recent call last):
        ...
        click.exceptions.BadParameter: 'nan' is not a finite number.
    """

    name = "float range"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


POSITIVE_FLOAT = FiniteFloatRange(min=0, min_open=True)
SEED = click.IntRange(0, MAX_SEED)


def seed_option(help_text: str):
    """``--seed``: an integer in 0..2**32-1 (numpy refuses others, late)."""
    return click.option("--seed", default=0, show_default=True, type=SEED, help=help_text)


def progress_option(help_text: str = "Progress bars."):
    """``--progress/--no-progress``, the one progress switch of every command."""
    return click.option("--progress/--no-progress", default=True, show_default=True, help=help_text)


def overwrite_option(help_text: str):
    """``--overwrite``, the one overwrite flag of every command (``--force`` still works, hidden)."""

    def decorate(function):
        function = click.option("--overwrite", is_flag=True, help=help_text)(function)
        return click.option("--force", "force", is_flag=True, hidden=True,
                            help="Old spelling of --overwrite.")(function)

    return decorate

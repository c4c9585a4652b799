"""The one exception type for bad user input."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user: a missing file or column, an empty file, an unknown model.

    The message names the problem and the fix. The command-line interface turns it into a
    one-line message on stderr and exit code 2, with no traceback.

    Examples:
        >>> raise InputError("data/train.csv has no column 'label'; pass --label-column NAME")
        Traceback (most recent call last):
        ...
        st_gloss.errors.InputError: data/train.csv has no column 'label'; pass --label-column NAME
    """

"""The small labelled samples that ship with st-gloss (see ``st_gloss/data/README.md``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SAMPLES = {
    "mr": "mr_sample",  # MR movie-review sentiment: 300 train, 200 test, 2 classes
    "r8": "r8_sample",  # Reuters R8: 240 train, 115 test, 8 classes
}

NEW_TEXTS = {
    "mr": [
        "a warm , funny and beautifully acted film that stays with you long after the credits .",
        "the plot is a mess , the jokes fall flat and the two hours feel like four .",
        "an uneven but often charming little comedy .",
    ],
    "r8": [
        "the company said it agreed to buy the remaining shares of its rival for 12 dlrs a share in cash .",
        "crude oil prices rose after the cartel agreed to cut output by 500,000 barrels per day .",
        "net profit rose to 1.2 mln dlrs , or 15 cts a share , from 900,000 dlrs a year earlier .",
    ],
}
"""A few texts that are in no split of the samples: what ``st-gloss demo`` classifies at the end."""


def sample_path(name: str = "mr") -> Path:
    """Folder (``train.csv``, ``test.csv``) of a bundled sample: ``"mr"`` or ``"r8"``.

    Examples:
        >>> (sample_path("mr") / "train.csv").exists()
        True
    """
    if name not in SAMPLES:
        raise ValueError(f"unknown bundled sample {name!r}; choose one of {sorted(SAMPLES)}")
    return Path(str(resources.files("st_gloss") / "data" / SAMPLES[name]))

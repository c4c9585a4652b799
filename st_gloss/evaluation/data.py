"""Load labelled text: a folder of splits, one CSV/JSONL file, a named benchmark, or a hub dataset.

Every source ends up as a :class:`LabelledData`: named splits of texts with integer label ids,
and the id-to-name mapping. Label ids are built from the train split (sorted: numerically when
every label is an integer, alphabetically otherwise), so they agree across splits.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from st_gloss.errors import InputError

BENCHMARK_DATASETS = ("mr", "r8", "r52", "ohsumed", "20ng")
"""The paper's five datasets, found by name under the data root."""

DATA_ROOT_ENV = "ST_GLOSS_DATA"
"""Environment variable naming the folder that holds ``mr/``, ``r8/``... (one folder per dataset)."""

SPLIT_NAMES = ("train", "val", "test")
_SUFFIXES = (".csv", ".jsonl")

OnEmpty = Literal["skip", "error"]


@dataclass(frozen=True)
class Split:
    """One split of a labelled dataset.

    Attributes:
        name: ``"train"``, ``"val"``, ``"test"`` or ``"all"`` (a single file).
        texts: the documents.
        labels: integer label ids (``int64``), indices into :attr:`LabelledData.label_names`.
        skipped: rows dropped because their text or label was empty.

    Examples:
        >>> split = Split("test", ["good film", "bad film"], np.array([1, 0]))
        >>> len(split)
        2
    """

    name: str
    texts: list[str]
    labels: np.ndarray
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class LabelledData:
    """Labelled texts in named splits, with label ids shared by all splits.

    Attributes:
        name: a short name for reports (the dataset name or the file/folder name).
        source: where the data came from (a path or a hub name).
        splits: the splits by name, in the order train, val, test (those that exist).
        label_names: ``label_names[i]`` is the original label of id ``i``.
        metadata: free-form facts about the source (e.g. a hub revision).
        notes: what was done to the splits after loading (a carved validation split, a subset),
            one sentence each, for reports.

    Examples:
        >>> data = LabelledData("toy", "memory", {"train": Split("train", ["a", "b"], np.array([0, 1]))},
        ...                     ["neg", "pos"])
        >>> data["train"].texts
        ['a', 'b']
        >>> data["test"]
        Traceback (most recent call last):
        ...
        st_gloss.errors.InputError: toy has no split 'test'; available splits: train
    """

    name: str
    source: str
    splits: dict[str, Split]
    label_names: list[str]
    metadata: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Split:
        return self.split(name)

    def __contains__(self, name: object) -> bool:
        return name in self.splits

    def split(self, name: str) -> Split:
        """The split called ``name``; :class:`InputError` naming the available splits otherwise.

        Examples:
            >>> data.split("train")  # doctest: +SKIP
        """
        if name not in self.splits:
            raise InputError(
                f"{self.name} has no split {name!r}; available splits: {', '.join(self.splits)}"
            )
        return self.splits[name]

    @property
    def num_classes(self) -> int:
        """Number of classes (the length of :attr:`label_names`)."""
        return len(self.label_names)

    def describe(self) -> dict:
        """Name, source, class count, split sizes and notes, for ``metrics.json`` and reports.

        Examples:
            >>> data = LabelledData("toy", "memory", {"train": Split("train", ["a", "b"], np.array([0, 1]))},
            ...                     ["neg", "pos"], notes=["a note"])
            >>> data.describe()["sizes"], data.describe()["notes"]
            ({'train': 2}, ['a note'])
        """
        return {
            "name": self.name,
            "source": self.source,
            "num_classes": self.num_classes,
            "sizes": {name: len(split) for name, split in self.splits.items()},
            "notes": list(self.notes),
        }

    def index_split(self) -> str:
        """The split that serves as the kNN index and the probe's training set.

        ``"train"`` when there is one, otherwise the only split (then evaluation on it uses
        leave-one-out kNN and a cross-validated probe).

        Examples:
            >>> data.index_split()  # doctest: +SKIP
            'train'
        """
        return "train" if "train" in self.splits else next(iter(self.splits))


def _read_rows(path: Path, text_column: str, label_column: str) -> list[tuple[object, object]]:
    """Read (text, label) pairs from a CSV or JSONL file, checking that both columns exist."""
    if not path.is_file():
        raise InputError(f"data file {path} does not exist; check the path")
    if path.stat().st_size == 0:
        raise InputError(f"data file {path} is empty; it needs a header and rows with "
                         f"columns {text_column!r} and {label_column!r}")
    hint = "; pass --text-column/--label-column to name other columns"
    if path.suffix.lower() == ".jsonl":
        rows = []
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path} line {number} is not valid JSON ({exc.msg}); "
                                     "write one JSON object per line") from exc
                if not isinstance(record, dict):
                    raise InputError(f"{path} line {number} is not a JSON object; "
                                     "write one object per line")
                for column in (text_column, label_column):
                    if column not in record:
                        raise InputError(f"{path} line {number} has no field {column!r}{hint}")
                rows.append((record[text_column], record[label_column]))
        if not rows:
            raise InputError(f"data file {path} has no records; add one JSON object per line")
        return rows
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # full 20NG posts exceed the 128 KiB default
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        if not columns:
            raise InputError(f"data file {path} is empty; it needs a header line "
                             f"with {text_column!r} and {label_column!r}")
        for column in (text_column, label_column):
            if column not in columns:
                raise InputError(f"{path} has no column {column!r} (columns: "
                                 f"{', '.join(columns)}){hint}")
        rows = [(row[text_column], row[label_column]) for row in reader]
    if not rows:
        raise InputError(f"data file {path} has a header but no rows; add labelled rows")
    return rows


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, float) and np.isnan(value)
    )


def _label_key(value: object) -> str:
    # Labels are compared as strings so that "3" in a CSV and 3 in a JSONL file agree.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _clean(name: str, where: str, rows, on_empty: OnEmpty) -> tuple[list[str], list[str], int]:
    texts, labels, skipped = [], [], 0
    for text, label in rows:
        if _is_empty(text) or _is_empty(label):
            skipped += 1
            continue
        texts.append(str(text))
        labels.append(_label_key(label))
    if skipped and on_empty == "error":
        raise InputError(f"{where} has {skipped} row(s) with an empty text or label; remove them, "
                         "or pass --on-empty skip to skip them")
    if not texts:
        raise InputError(f"{where} has no row with both a text and a label; fill the columns")
    if skipped:
        warnings.warn(f"{where}: skipped {skipped} row(s) with an empty text or label",
                      UserWarning, stacklevel=4)
    return texts, labels, skipped


def _sort_labels(labels: set[str]) -> list[str]:
    try:
        return sorted(labels, key=int)
    except ValueError:
        return sorted(labels)


def _build(name: str, source: str, raw: dict[str, tuple[list[str], list[str], int]],
           index_split: str) -> LabelledData:
    label_names = _sort_labels(set(raw[index_split][1]))
    ids = {label: i for i, label in enumerate(label_names)}
    splits = {}
    for split_name, (texts, labels, skipped) in raw.items():
        unknown = sorted(set(labels) - ids.keys())
        if unknown:
            shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise InputError(
                f"{name}: split {split_name!r} has {len(unknown)} label(s) that never occur in "
                f"{index_split!r}: {shown}; a classifier cannot predict them: drop those rows or "
                f"add examples to {index_split!r}"
            )
        distinct = set(labels)
        if len(distinct) < 2:
            raise InputError(
                f"{name}: split {split_name!r} has only one class ({next(iter(distinct))!r}); "
                "classification metrics need at least two classes"
            )
        splits[split_name] = Split(
            split_name, texts, np.array([ids[label] for label in labels], dtype=np.int64), skipped
        )
    return LabelledData(name=name, source=source, splits=splits, label_names=label_names)


def _find_split_file(folder: Path, split: str) -> Path | None:
    for suffix in _SUFFIXES:
        candidate = folder / f"{split}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _load_folder(folder: Path, name: str, text_column: str, label_column: str,
                 on_empty: OnEmpty) -> LabelledData:
    files = {split: _find_split_file(folder, split) for split in SPLIT_NAMES}
    files = {split: path for split, path in files.items() if path is not None}
    missing = [split for split in ("train", "test") if split not in files]
    if missing:
        raise InputError(
            f"data folder {folder} has no {' or '.join(m + '.csv' for m in missing)}; a folder needs "
            "train.csv and test.csv (val.csv optional), or give a single CSV/JSONL file"
        )
    raw = {
        split: _clean(name, str(path), _read_rows(path, text_column, label_column), on_empty)
        for split, path in files.items()
    }
    return _build(name, str(folder), raw, "train")


def _load_hub(name: str, text_column: str, label_column: str, on_empty: OnEmpty) -> LabelledData:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets comes with sentence-transformers[train]
        raise InputError(f"{name!r} is not a file or folder, and loading it from the hub needs "
                         "the 'datasets' package") from exc
    try:
        dataset = datasets.load_dataset(name)
    except Exception as exc:  # noqa: BLE001 - the hub raises many types; all mean "not available"
        raise InputError(
            f"data {name!r} is not a file, not a folder, not one of the benchmark names "
            f"({', '.join(BENCHMARK_DATASETS)}), and the Hugging Face hub did not provide it "
            f"(offline or unknown name: {type(exc).__name__}); give a folder with train.csv and "
            "test.csv or a CSV/JSONL file"
        ) from exc
    raw = {}
    aliases = {"validation": "val", "dev": "val"}
    for split_name, split in dataset.items():
        for column in (text_column, label_column):
            if column not in split.column_names:
                raise InputError(f"hub dataset {name!r} split {split_name!r} has no column "
                                 f"{column!r} (columns: {', '.join(split.column_names)}); pass "
                                 "--text-column/--label-column")
        feature = split.features[label_column]
        labels = split[label_column]
        if hasattr(feature, "names"):  # ClassLabel: keep the readable names
            labels = [feature.names[i] if i is not None and i >= 0 else None for i in labels]
        key = aliases.get(split_name, split_name)
        raw[key] = _clean(name, f"{name}[{split_name}]", zip(split[text_column], labels), on_empty)
    if "train" not in raw:
        raise InputError(f"hub dataset {name!r} has no train split (splits: {', '.join(raw)}); "
                         "kNN and the probe need one")
    order = [s for s in SPLIT_NAMES if s in raw] + [s for s in raw if s not in SPLIT_NAMES]
    return _build(name, f"hf:{name}", {s: raw[s] for s in order}, "train")


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path | None:
    """The folder that holds the benchmark datasets: ``data_root``, else ``$ST_GLOSS_DATA``.

    Args:
        data_root: an explicit folder; wins over the environment variable.

    Examples:
        >>> resolve_data_root("/work/shared/data")
        PosixPath('/work/shared/data')
    """
    root = data_root if data_root is not None else os.environ.get(DATA_ROOT_ENV)
    return Path(root).expanduser() if root else None


def load_labelled_data(
    source: str | os.PathLike,
    *,
    data_root: str | os.PathLike | None = None,
    text_column: str = "text",
    label_column: str = "label",
    on_empty: OnEmpty = "skip",
) -> LabelledData:
    """Load labelled texts from a folder, a file, a benchmark name or a Hugging Face dataset.

    ``source`` is tried in this order:

    1. an existing folder with ``train.csv`` and ``test.csv`` (``val.csv`` optional; ``.jsonl``
       files of the same names work too);
    2. an existing ``.csv`` or ``.jsonl`` file: one split called ``"all"`` (evaluation on it uses
       leave-one-out kNN and a cross-validated probe);
    3. a folder of that name under ``data_root`` or ``$ST_GLOSS_DATA``: the paper's datasets
       ``mr``, ``r8``, ``r52``, ``ohsumed``, ``20ng`` are found this way (any other folder there
       too);
    4. a Hugging Face dataset name, when the hub is reachable.

    Label ids are built from the train split; a label in another split that train lacks, or a
    split with a single class, raises :class:`InputError`. Rows with an empty text or label are
    skipped with a warning that gives the count (``on_empty="skip"``, recorded in
    ``Split.skipped``) or refused (``on_empty="error"``).

    Args:
        source: folder, file, benchmark name or hub dataset name.
        data_root: folder holding the benchmark datasets (default: ``$ST_GLOSS_DATA``).
        text_column: name of the text column.
        label_column: name of the label column (strings or integers).
        on_empty: ``"skip"`` or ``"error"`` for rows whose text or label is empty.

    Returns:
        The splits, with ``label_names`` mapping ids to the original labels.

    Examples:
        >>> data = load_labelled_data("r8", data_root="/work/shared/data")  # doctest: +SKIP
        >>> data["test"].texts[0][:30], data.label_names[data["test"].labels[0]]  # doctest: +SKIP
        ('...', 'earn')
    """
    if on_empty not in ("skip", "error"):
        raise InputError(f"on_empty must be 'skip' or 'error', got {on_empty!r}")
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return _load_folder(path, path.name or text, text_column, label_column, on_empty)
    if path.is_file():
        if path.suffix.lower() not in _SUFFIXES:
            raise InputError(f"data file {path} is neither .csv nor .jsonl; convert it, or give a "
                             "folder with train.csv and test.csv")
        rows = _read_rows(path, text_column, label_column)
        raw = {"all": _clean(path.stem, str(path), rows, on_empty)}
        return _build(path.stem, str(path), raw, "all")
    root = resolve_data_root(data_root)
    if root is not None and "/" not in text and (root / text).is_dir():
        return _load_folder(root / text, text, text_column, label_column, on_empty)
    if text.lower() in BENCHMARK_DATASETS:
        if root is None:
            raise InputError(f"dataset {text!r} is looked up under the data root; pass --data-root "
                             f"DIR or set {DATA_ROOT_ENV}=DIR (a folder with {text.lower()}/train.csv)")
        folder = root / text.lower()
        if not folder.is_dir():
            raise InputError(f"dataset {text!r} not found: {folder} does not exist; check "
                             f"--data-root / {DATA_ROOT_ENV}")
        return _load_folder(folder, text.lower(), text_column, label_column, on_empty)
    if path.suffix.lower() in _SUFFIXES or text.startswith((".", "/", "~")):
        raise InputError(f"data file {text} does not exist; check the path")
    return _load_hub(text, text_column, label_column, on_empty)

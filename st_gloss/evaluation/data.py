"""Load labelled text: a folder of splits, one data file, a named benchmark, or a hub dataset.

Every source ends up as a `LabelledData`: named splits of texts with integer label ids,
and the id-to-name mapping. Label ids are built from the train split (sorted: numerically when
every label is an integer, alphabetically otherwise), so they agree across splits.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import shlex
import sys
import warnings
from collections import Counter
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
_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
_SPLIT_ALIASES = {"train": "train", "val": "val", "validation": "val", "dev": "val", "test": "test"}

OnEmpty = Literal["skip", "error"]


@dataclass(frozen=True)
class Split:
    """One split of a labelled dataset.

    Attributes:
        name: ``"train"``, ``"val"``, ``"test"`` or ``"all"`` (a single file).
        texts: the documents.
        labels: integer label ids (``int64``), indices into `LabelledData.label_names`.
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
        """The split called ``name``; `InputError` naming the available splits otherwise.

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
        """Number of classes (the length of `label_names`)."""
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
            "label_names": [name if isinstance(name, (int, str)) else str(name) for name in self.label_names],
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


_MISSING_MARKERS = ("NaN", "nan", "NA", "N/A", "n/a", "#N/A", "<NA>", "null", "NULL", "None")
"""Cell values that mean "no value" (pandas' default missing markers, less its exotic ones)."""

_BOMS = (  # UTF-32 first: its little-endian BOM starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
_COLUMN_HINT = "; pass --text-column/--label-column to name other columns"
_INTEGRAL_DECIMAL = re.compile(r"[+-]?\d+\.0+")

# A row as read: (text, label, position); the position is a line number or a row index.
_Row = tuple[object, object, int]


def _read_text(path: Path) -> str:
    """The file decoded: UTF-8, or UTF-8/16/32 with a byte-order mark; a clear error otherwise."""
    data = path.read_bytes()
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise InputError(f"{path} starts with a {encoding} byte-order mark but is not valid "
                                 f"{encoding} text (at byte offset {exc.start}); save it again as "
                                 "UTF-8") from exc
            if "\x00" in text:
                raise InputError(f"{path} is not a text file (it contains NUL characters); give a "
                                 "CSV, TSV or JSONL text file")
            return text.removeprefix("\ufeff")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(f"{path} is not a text file (NUL byte at offset {nul}); give a CSV, TSV or "
                         "JSONL text file (UTF-16 files need a byte-order mark)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        target = path.with_name(f"{path.stem}-utf8{path.suffix}")
        raise InputError(
            f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}, line "
            f"{line}); convert it, e.g. iconv -f latin1 -t utf-8 {shlex.quote(str(path))} > "
            f"{shlex.quote(str(target))} (or save it from the spreadsheet as 'CSV UTF-8')"
        ) from exc


def _check_columns(path: Path, columns: list[str], text_column: str, label_column: str,
                   header: str, suffix: str) -> None:
    """Refuse duplicate column names and missing text/label columns, with hints for the fix."""
    first_seen: dict[str, int] = {}
    for number, column in enumerate(columns, start=1):
        if column in first_seen:
            raise InputError(f"{path} {header} names column {column!r} twice (columns "
                             f"{first_seen[column]} and {number}); rename or remove one")
        first_seen[column] = number
    for column in (text_column, label_column):
        if column in columns:
            continue
        hint = _COLUMN_HINT
        other_case = [name for name in columns if name.lower() == column.lower()]
        if other_case:
            hint += f" (did you mean {other_case[0]!r}?)"
        elif len(columns) == 1:
            for mark, name, fix in ((";", "';'-separated", "save it with commas"),
                                    ("\t", "tab-separated", "name it .tsv"),
                                    (",", "comma-separated", "name it .csv")):
                if mark in columns[0] and not (mark == "\t" and suffix == ".tsv"):
                    hint += f"; the header looks {name}: {fix}"
                    break
        raise InputError(f"{path} has no column {column!r} (columns: {', '.join(columns)}){hint}")


def _read_delimited(path: Path, text_column: str, label_column: str,
                    delimiter: str) -> list[_Row]:
    """Rows of a CSV/TSV file; a row with more or fewer fields than the header is refused."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # full 20NG posts exceed the 128 KiB default
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), delimiter=delimiter, strict=True)
    separators = "commas" if delimiter == "," else "tabs"
    header: list[str] | None = None
    header_line = text_index = label_index = 0
    rows: list[_Row] = []
    previous = 0  # reader.line_num after the previous record: a record starts on the next line
    try:
        for record in reader:
            start, end, previous = previous + 1, reader.line_num, reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # a blank line
            if header is None:
                header, header_line = [name.strip() for name in record], start
                _check_columns(path, header, text_column, label_column, f"header (line {start})",
                               path.suffix.lower())
                text_index, label_index = header.index(text_column), header.index(label_column)
                continue
            if len(record) != len(header):
                where = f"line {start} has" if start == end else f"lines {start}-{end} have"
                spans = f"; a quoted text spans lines {start}-{end}: check its quotes" if start != end else ""
                raise InputError(
                    f"{path} {where} {len(record)} field{'s' * (len(record) != 1)} but the header "
                    f"(line {header_line}) has {len(header)}; quote texts that contain "
                    f"{separators}, or fix the row{spans}"
                )
            rows.append((record[text_index], record[label_index], start))
    except csv.Error as exc:
        start = previous + 1
        if "unexpected end of data" in str(exc):
            raise InputError(
                f"{path} line {start}: a quoted text is never closed (it runs to the end of the "
                f"file, line {reader.line_num}); close the quote, and double any quote inside a "
                'quoted text ("")'
            ) from exc
        raise InputError(f"{path} line {reader.line_num}: bad quoting ({exc}); quote a whole text "
                         'and double the quotes inside it ("say ""hi""")') from exc
    if header is None:
        raise InputError(f"data file {path} is empty; it needs a header line "
                         f"with {text_column!r} and {label_column!r}")
    if not rows:
        raise InputError(f"data file {path} has a header but no rows; add labelled rows")
    return rows


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return f"true/false ({str(value).lower()})"
    if isinstance(value, (int, float, np.number)):
        return f"a number ({value!r})"
    kinds = {str: "a string", list: "a list", tuple: "a list", dict: "an object"}
    return kinds.get(type(value), f"a {type(value).__name__}")


def _read_jsonl(path: Path, text_column: str, label_column: str) -> list[_Row]:
    """Rows of a JSON Lines file: one object per line; blank lines are skipped."""
    duplicates: list[set[str]] = []

    def collect(pairs: list[tuple[str, object]]) -> dict:
        counts = Counter(key for key, _ in pairs)
        duplicates.append({key for key, count in counts.items() if count > 1})
        return dict(pairs)

    rows: list[_Row] = []
    for number, line in enumerate(_read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        duplicates.clear()
        try:
            record = json.loads(line, object_pairs_hook=collect)
        except json.JSONDecodeError as exc:
            hint = "write one JSON object per line"
            if not rows and line.lstrip().startswith("["):
                hint = "the file looks like one JSON array; write one object per line (JSON Lines)"
            elif not rows and ("," in line or "\t" in line):
                hint += "; if it is a CSV file, name it .csv (.tsv when tab-separated)"
            raise InputError(f"{path} line {number} is not valid JSON ({exc.msg}); {hint}") from exc
        if not isinstance(record, dict):
            hint = "write one object per line"
            if isinstance(record, list) and record and isinstance(record[0], dict):
                hint = "the file looks like one JSON array; write one object per line (JSON Lines)"
            raise InputError(f"{path} line {number} is not a JSON object (it is "
                             f"{_json_kind(record)}); {hint}")
        if duplicates[-1]:
            raise InputError(f"{path} line {number} has the key {sorted(duplicates[-1])[0]!r} "
                             "twice; keep one")
        for column in (text_column, label_column):
            if column not in record:
                raise InputError(f"{path} line {number} has no field {column!r}{_COLUMN_HINT}")
        rows.append((record[text_column], record[label_column], number))
    if not rows:
        raise InputError(f"data file {path} has no records; add one JSON object per line")
    return rows


def _read_parquet(path: Path, text_column: str, label_column: str) -> list[_Row]:
    """Rows of a Parquet file (via pyarrow), with the column checks of the CSV reader."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow comes with datasets
        raise InputError(f"reading {path} needs pyarrow (pip install pyarrow); or save the data "
                         "as CSV") from exc
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path} is not a Parquet file ({exc}); give a Parquet file, or name a "
                         "CSV file .csv") from exc
    _check_columns(path, list(schema.names), text_column, label_column, "schema", ".parquet")

    def base(kind):
        return kind.value_type if pa.types.is_dictionary(kind) else kind

    def is_text(kind):
        return pa.types.is_string(kind) or pa.types.is_large_string(kind) or (
            hasattr(pa.types, "is_string_view") and pa.types.is_string_view(kind))

    text_type, label_type = (base(schema.field(c).type) for c in (text_column, label_column))
    if not (is_text(text_type) or pa.types.is_null(text_type)):
        raise InputError(f"{path} column {text_column!r} holds {schema.field(text_column).type}, "
                         f"not strings; store the texts as strings{_COLUMN_HINT}")
    if not (is_text(label_type) or pa.types.is_integer(label_type) or pa.types.is_floating(label_type)
            or pa.types.is_boolean(label_type) or pa.types.is_null(label_type)):
        raise InputError(f"{path} column {label_column!r} holds {schema.field(label_column).type}, "
                         f"not strings or integers; store one class per row{_COLUMN_HINT}")
    table = pq.read_table(path, columns=[text_column, label_column])
    if table.num_rows == 0:
        raise InputError(f"data file {path} has no rows; add labelled rows")
    texts, labels = (table.column(c).to_pylist() for c in (text_column, label_column))
    return list(zip(texts, labels, range(table.num_rows)))


def _read_rows(path: Path, text_column: str, label_column: str) -> tuple[list[_Row], str]:
    """Read (text, label, position) rows from a data file, and the unit of the positions."""
    if not path.is_file():
        raise InputError(f"data file {path} does not exist; check the path")
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        needs = ("one JSON object per line with the fields" if suffix == ".jsonl"
                 else "a header and rows with the columns")
        raise InputError(f"data file {path} is empty; it needs {needs} {text_column!r} and "
                         f"{label_column!r}")
    if suffix == ".jsonl":
        return _read_jsonl(path, text_column, label_column), "line"
    if suffix == ".parquet":
        return _read_parquet(path, text_column, label_column), "row index"
    return _read_delimited(path, text_column, label_column, "\t" if suffix == ".tsv" else ","), "line"


def _is_empty(value: object) -> bool:
    """Whether a text or label counts as missing: ``None``, NaN, blank, or a missing-value marker.

    Examples:
        >>> [_is_empty(v) for v in (None, float("nan"), " ", " NaN ", "N/A", "null", "None")]
        [True, True, True, True, True, True, True]
        >>> [_is_empty(v) for v in ("none", "na", "0", 0, "nan film")]
        [False, False, False, False, False]
    """
    if value is None:
        return True
    if isinstance(value, float):
        return bool(np.isnan(value))
    return isinstance(value, str) and (not value.strip() or value.strip() in _MISSING_MARKERS)


def _describe_empty(role: str, value: object) -> str:
    if isinstance(value, str) and value.strip():
        return f"{role} {value.strip()!r}, a missing-value marker"
    return f"{role} NaN" if isinstance(value, float) else f"empty {role}"


def _label_key(value: object) -> str:
    """The label as the string that names its class.

    Labels are compared as strings so that ``"3"`` in a CSV and ``3`` in a JSONL file agree; an
    integral number or decimal (``3.0``, ``"3.0"``, as pandas writes integer columns that have
    gaps) is the integer.

    Examples:
        >>> [_label_key(v) for v in (3, 3.0, "3.0", " 3 ", 2.5, "pos")]
        ['3', '3', '3', '3', '2.5', 'pos']
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if _INTEGRAL_DECIMAL.fullmatch(text):
        text = str(int(text.split(".")[0]))
    return text


def _type_problem(role: str, column: str, value: object) -> str | None:
    """Why a text (not a string) or a label (not a string or number) is refused; None if fine."""
    if value is None or isinstance(value, str) or (isinstance(value, float) and np.isnan(value)):
        return None
    if role == "label" and isinstance(value, (int, float, np.integer, np.floating)):
        return None
    wanted = "a string" if role == "text" else "a string or integer"
    return (f"the {role} field {column!r} is {_json_kind(value)}, not {wanted}; "
            f"write {role}s as {'strings' if role == 'text' else 'strings or integers'}")


def _clean(name: str, where: str, rows, on_empty: OnEmpty, *, text_column: str = "text",
           label_column: str = "label", unit: str = "line") -> tuple[list[str], list[str], int]:
    texts, labels, skipped, empty_labels, empty_texts, total = [], [], 0, 0, 0, 0
    first = ""
    for text, label, position in rows:
        total += 1
        if type(text) is not str or type(label) is not str:  # CSV cells are, JSON values may not be
            problem = (_type_problem("text", text_column, text)
                       or _type_problem("label", label_column, label))
            if problem:
                raise InputError(f"{where} {unit} {position}: {problem}")
        text_missing, label_missing = _is_empty(text), _is_empty(label)
        if text_missing or label_missing:
            skipped += 1
            empty_texts += text_missing
            empty_labels += label_missing
            if not first:
                first = f"{unit} {position}: " + (_describe_empty("text", text) if text_missing
                                                  else _describe_empty("label", label))
            continue
        texts.append(text)
        labels.append(_label_key(label))
    for count, column, option in ((empty_labels, label_column, "--label-column"),
                                  (empty_texts, text_column, "--text-column")):
        if total and count == total:
            raise InputError(f"{where}: column {column!r} is empty in all {total} rows; fill it, "
                             f"or pass {option} to name the column that holds them")
    if skipped and on_empty == "error":
        raise InputError(
            f"{where} has {skipped} row(s) with an empty text or label (first at {first}); fill or "
            "remove them, or pass --on-empty skip to skip them (blank cells and the markers "
            f"{', '.join(_MISSING_MARKERS)} count as empty)"
        )
    if not texts:
        raise InputError(f"{where} has no row with both a text and a label; fill the columns")
    if skipped:
        warnings.warn(f"{where}: skipped {skipped} row(s) with an empty text or label "
                      f"(first at {first})", UserWarning, stacklevel=4)
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


def _find_split_files(folder: Path) -> dict[str, Path]:
    """The split files of a folder, by split: ``train``/``val``/``test`` (``validation`` and
    ``dev`` are ``val``) with a supported suffix, in any letter case; two files for one split
    are refused."""
    found: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        split = _SPLIT_ALIASES.get(entry.stem.lower())
        if split and entry.suffix.lower() in _SUFFIXES and entry.is_file():
            found.setdefault(split, []).append(entry)
    for split, paths in found.items():
        if len(paths) > 1:
            count = {2: "two", 3: "three"}.get(len(paths), str(len(paths)))
            raise InputError(f"data folder {folder} has {count} {split} files "
                             f"({', '.join(p.name for p in paths)}); keep one")
    return {split: found[split][0] for split in SPLIT_NAMES if split in found}


def _load_folder(folder: Path, name: str, text_column: str, label_column: str,
                 on_empty: OnEmpty) -> LabelledData:
    files = _find_split_files(folder)
    missing = [split for split in ("train", "test") if split not in files]
    if missing:
        entries = sorted(e.name + "/" * e.is_dir() for e in folder.iterdir() if not e.name.startswith("."))
        found = ", ".join(entries[:8]) + (" ..." if len(entries) > 8 else "") or "nothing"
        raise InputError(
            f"data folder {folder} has no {' or '.join(m + '.csv' for m in missing)} (found: "
            f"{found}); a folder needs train.csv and test.csv (val.csv optional; .tsv, .jsonl and "
            ".parquet work too), or give a single data file"
        )
    raw = {}
    for split, path in files.items():
        rows, unit = _read_rows(path, text_column, label_column)
        raw[split] = _clean(name, str(path), rows, on_empty, text_column=text_column,
                            label_column=label_column, unit=unit)
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
            "test.csv, or a .csv, .tsv, .jsonl or .parquet file"
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
        rows = zip(split[text_column], labels, range(len(labels)))
        raw[key] = _clean(name, f"{name}[{split_name}]", rows, on_empty, text_column=text_column,
                          label_column=label_column, unit="row index")
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

    1. an existing folder with ``train`` and ``test`` files (``val`` optional; ``validation`` and
       ``dev`` name it too), each ``.csv``, ``.tsv``, ``.jsonl`` or ``.parquet``; file names match
       in any letter case, and two files for one split (``train.csv`` and ``train.jsonl``) are
       refused;
    2. an existing ``.csv``, ``.tsv``, ``.jsonl`` or ``.parquet`` file: one split called
       ``"all"`` (evaluation on it uses leave-one-out kNN and a cross-validated probe);
    3. a folder of that name under ``data_root`` or ``$ST_GLOSS_DATA``: the paper's datasets
       ``mr``, ``r8``, ``r52``, ``ohsumed``, ``20ng`` are found this way (any other folder there
       too);
    4. a Hugging Face dataset name, when the hub is reachable.

    Files are read strictly; every fault raises `InputError` naming the file, the line
    (or row index, for Parquet) and the fix:

    - **Text**: UTF-8, or UTF-8/UTF-16/UTF-32 with a byte-order mark (the mark is dropped).
      Other encodings (a latin-1 spreadsheet export) are refused with the offending byte and
      line and an ``iconv`` command; a file with NUL bytes is not a text file.
    - **CSV/TSV**: the first non-blank line is the header; column names are stripped of
      surrounding spaces and must be unique. Every row has as many fields as the header (a
      text with an unquoted comma is refused with its line, counted in physical lines, so a
      quoted text over several lines counts them all); blank lines are skipped; quoting
      follows the ``csv`` module in strict mode (an unclosed quote is refused).
    - **JSONL**: one JSON object per line, blank lines skipped, no key twice.
    - **Parquet**: a string text column and a string, integer, float or boolean label column.
    - **Types**: texts are strings; labels are strings or numbers (a list, an object, or a
      number as the text is refused).

    A text or label is *missing* when it is absent (``null``, NaN), blank, or exactly one of the
    markers ``NaN``, ``nan``, ``NA``, ``N/A``, ``n/a``, ``#N/A``, ``<NA>``, ``null``, ``NULL``,
    ``None`` (pandas' default missing markers, less its exotic ones; surrounding spaces ignored,
    letter case not: ``none`` and ``na`` are labels). Rows with a missing text or label are
    skipped with a warning that gives the count and the first line (``on_empty="skip"``, the
    count recorded in ``Split.skipped``) or refused, naming the first line (``on_empty="error"``).
    A text or label column that is missing in every row is refused either way.

    Labels are compared as text, stripped of surrounding spaces: ``3`` and ``"3"`` are one class,
    and so are the integral numbers ``3.0`` and ``"3.0"`` (pandas writes integer columns with
    gaps that way); other numbers keep their digits (``2.5`` is the class ``"2.5"``).

    Label ids are built from the train split; a label in another split that train lacks, or a
    split with a single class, raises `InputError`.

    Args:
        source: folder, file, benchmark name or hub dataset name.
        data_root: folder holding the benchmark datasets (default: ``$ST_GLOSS_DATA``).
        text_column: name of the text column.
        label_column: name of the label column (strings or integers).
        on_empty: ``"skip"`` or ``"error"`` for rows whose text or label is missing.

    Returns:
        The splits, with ``label_names`` mapping ids to the original labels.

    Examples:
        >>> data = load_labelled_data("r8", data_root="/work/shared/data")  # doctest: +SKIP
        >>> data["test"].texts[0][:30], data.label_names[data["test"].labels[0]]  # doctest: +SKIP
        ('...', 'earn')
    """
    if on_empty not in ("skip", "error"):
        raise InputError(f"on_empty must be 'skip' or 'error', got {on_empty!r}")
    if text_column == label_column:
        raise InputError(f"the text and label column are both {text_column!r}; name two different "
                         "columns with --text-column and --label-column")
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return _load_folder(path, path.name or text, text_column, label_column, on_empty)
    if path.is_file():
        if path.suffix.lower() not in _SUFFIXES:
            raise InputError(f"data file {path} is not .csv, .tsv, .jsonl or .parquet; convert it, "
                             "or give a folder with train.csv and test.csv")
        rows, unit = _read_rows(path, text_column, label_column)
        raw = {"all": _clean(path.stem, str(path), rows, on_empty, text_column=text_column,
                             label_column=label_column, unit=unit)}
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

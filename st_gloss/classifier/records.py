"""Read rows to classify from CSV/JSONL (labels optional) and write them back with predictions.

The strict reader of [`st_gloss.evaluation.data`][st_gloss.evaluation.data] requires a label column; prediction
input usually has none, and its output must keep every input column. This module reads all
columns, with the same checks and messages (missing file, empty file, invalid JSON, a missing
text column, rows with no text), and writes CSV or JSONL through a temporary file in the
output's folder that replaces the output only when complete.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from st_gloss.errors import InputError

SUFFIXES = (".csv", ".jsonl")


@dataclass
class Records:
    """The rows of a CSV or JSONL file, every column kept.

    Attributes:
        path: the file.
        columns: column names in file order (for JSONL: in order of first appearance).
        rows: one dict per row (CSV values are strings; JSONL values as parsed).
        text_column: the column holding the texts.
        label_column: the column holding true labels, or ``None`` when the file has none.
        line_numbers: the file line of every row (for messages).

    Examples:
        >>> Records(Path("x.csv"), ["text"], [{"text": "a"}], "text").texts
        ['a']
    """

    path: Path
    columns: list[str]
    rows: list[dict]
    text_column: str
    label_column: str | None = None
    line_numbers: list[int] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        """The texts, as strings."""
        return [str(row[self.text_column]) for row in self.rows]

    @property
    def labels(self) -> list | None:
        """The true labels (``None`` where a row has none), or ``None`` without a label column."""
        if self.label_column is None:
            return None
        return [row.get(self.label_column) for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)


def is_missing(value) -> bool:
    """Whether a cell counts as empty: ``None``, blank text or NaN.

    Examples:
        >>> is_missing(" "), is_missing("0"), is_missing(None)
        (True, False, True)
    """
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, float) and value != value
    )


def label_key(value) -> str:
    """Labels compared as strings, so that ``"3"`` in a CSV and ``3`` in a JSONL file agree.

    Examples:
        >>> label_key(3.0), label_key(" pos ")
        ('3', 'pos')
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def check_suffix(path: Path, what: str) -> str:
    """``"csv"`` or ``"jsonl"`` by the file's suffix; `InputError` otherwise."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{what} {path} must end in .csv or .jsonl (got {suffix or 'no suffix'!r})")
    return suffix[1:]


def read_records(path: str | os.PathLike, text_column: str = "text", label_column: str | None = None,
                 *, require_label: bool = False) -> Records:
    """Read every row and column of a CSV or JSONL file, checking the text (and label) column.

    Args:
        path: the ``.csv`` (header line, UTF-8) or ``.jsonl`` (one object per line) file.
        text_column: the column of texts; every row needs a non-empty text.
        label_column: the column of true labels, used when present (``None``: no labels).
        require_label: refuse a file without ``label_column``.

    Examples:
        >>> import tempfile
        >>> file = Path(tempfile.mkdtemp()) / "in.csv"
        >>> _ = file.write_text("id,text\\n1,good film\\n")
        >>> records = read_records(file, label_column="label")
        >>> records.texts, records.label_column, records.columns
        (['good film'], None, ['id', 'text'])
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"data file {path} does not exist; check the path")
    kind = check_suffix(path, "data file")
    if path.stat().st_size == 0:
        raise InputError(f"data file {path} is empty; it needs rows with a {text_column!r} column")
    hint = "; pass --text-column NAME to name another column"
    rows, numbers, columns = [], [], []
    if kind == "jsonl":
        seen = {}
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
                    raise InputError(f"{path} line {number} is not a JSON object; write one object per line")
                if text_column not in record:
                    raise InputError(f"{path} line {number} has no field {text_column!r}{hint}")
                seen.update(dict.fromkeys(record))
                rows.append(record)
                numbers.append(number)
        if not rows:
            raise InputError(f"data file {path} has no records; add one JSON object per line")
        columns = list(seen)
    else:
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            if not columns:
                raise InputError(f"data file {path} is empty; it needs a header line with {text_column!r}")
            if text_column not in columns:
                raise InputError(f"{path} has no column {text_column!r} (columns: {', '.join(columns)}){hint}")
            for row in reader:
                if None in row:
                    raise InputError(f"{path} line {reader.line_num} has more fields than the header; "
                                     "quote texts that contain commas")
                rows.append(row)
                numbers.append(reader.line_num)
        if not rows:
            raise InputError(f"data file {path} has a header but no rows; add rows to classify")
    empty = [n for row, n in zip(rows, numbers) if is_missing(row.get(text_column))]
    if empty:
        raise InputError(f"{path} has {len(empty)} row(s) with an empty {text_column!r} (first: line {empty[0]}); "
                         "fill or remove them")
    has_label = label_column is not None and label_column in columns
    if require_label and not has_label:
        raise InputError(f"{path} has no column {label_column!r} (columns: {', '.join(columns)}); "
                         "pass --label-column NAME")
    return Records(path, columns, rows, text_column, label_column if has_label else None, numbers)


def check_output(path: str | os.PathLike, overwrite: bool = False, what: str = "output file",
                 suffixes: tuple[str, ...] = SUFFIXES) -> Path:
    """Refuse an output that exists (without ``overwrite``), is a folder, or cannot be written.

    Writability is tested by creating (and removing) a temporary file beside it, before any work.

    Examples:
        >>> check_output("/no/such/folder/out.csv")
        Traceback (most recent call last):
        ...
        st_gloss.errors.InputError: output folder /no/such/folder does not exist; create it first
    """
    target = Path(path).expanduser()
    if target.suffix.lower() not in suffixes:
        raise InputError(f"{what} {target} must end in {' or '.join(suffixes)}")
    if target.is_dir():
        raise InputError(f"{what} {target} is a folder; give a file name")
    if target.exists() and not overwrite:
        raise InputError(f"{what} {target} exists; pass --overwrite to replace it or choose another name")
    if not target.parent.is_dir():
        raise InputError(f"output folder {target.parent} does not exist; create it first")
    try:
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=True):
            pass
    except OSError as exc:
        raise InputError(f"cannot write {what} {target}: {exc.strerror or exc}; choose a writable folder") from exc
    return target


class RecordWriter:
    """Write rows to CSV or JSONL (by the suffix) through a temporary file; `close` puts it in place.

    Examples:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "out.jsonl"
        >>> with RecordWriter(out, ["text", "prediction"]) as writer:
        ...     writer.write([{"text": "a", "prediction": "pos"}])
        >>> out.read_text()
        '{"text": "a", "prediction": "pos"}\\n'
    """

    def __init__(self, path: str | os.PathLike, columns: list[str]) -> None:
        self.path = Path(path)
        self.kind = check_suffix(self.path, "output file")
        self.columns = list(columns)
        handle, self._temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        self._file = os.fdopen(handle, "w", encoding="utf-8", newline="")
        self._csv = None
        if self.kind == "csv":
            self._csv = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="ignore")
            self._csv.writeheader()

    def write(self, rows: list[dict]) -> None:
        """Append rows (dicts; columns not in `columns` are dropped in CSV)."""
        if self._csv is not None:
            self._csv.writerows(rows)
        else:
            for row in rows:
                self._file.write(json.dumps(row, ensure_ascii=False) + "\n")

    def close(self) -> None:
        """Finish the file and move it to `path` (replacing what was there)."""
        self._file.close()
        os.replace(self._temporary, self.path)

    def abort(self) -> None:
        """Remove the temporary file; `path` is left as it was."""
        self._file.close()
        Path(self._temporary).unlink(missing_ok=True)

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

"""Bad data files: every fault is an InputError whose message names the file, the place and the fix.

Each test writes the bytes a user might really have (a spreadsheet export, a hand-edited file)
and checks the message, not only the exception type.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from st_gloss.errors import InputError
from st_gloss.evaluation.data import load_labelled_data

GOOD_ROWS = "good film,pos\nbad film,neg\ngreat,pos\nawful,neg\n"


def _file(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def _refused(path, message: str, **kwargs) -> str:
    with pytest.raises(InputError, match=message) as info:
        load_labelled_data(path, **kwargs)
    text = str(info.value)
    assert "\n" not in text, "messages are one line"
    assert str(path) in text, "messages name the file"
    return text


# --- 1. ragged CSV rows -------------------------------------------------------------------------

def test_unquoted_comma_is_refused_with_its_line(tmp_path):
    path = _file(tmp_path, "reviews.csv", "text,label\ngood film,pos\ngood, but long,pos\nbad,neg\n")
    _refused(path, r"line 3 has 3 fields but the header \(line 1\) has 2.*"
                   r"quote texts that contain commas")


def test_row_with_too_few_fields_is_refused(tmp_path):
    path = _file(tmp_path, "reviews.csv", "text,label\ngood film,pos\nbad film\nawful,neg\n")
    _refused(path, r"line 3 has 1 field but the header \(line 1\) has 2")


def test_ragged_line_counts_physical_lines_of_quoted_multiline_texts(tmp_path):
    content = 'text,label\n"two\nlines",pos\n"three\nphysical\nlines",neg\nok,pos,extra\n'
    path = _file(tmp_path, "reviews.csv", content)
    _refused(path, r"line 7 has 3 fields")
    content = 'text,label\nok,pos\n"a text\nover, two lines",pos,extra\n'
    _refused(_file(tmp_path, "two.csv", content), r"lines 3-4 have 3 fields")


# --- 2. duplicate columns -----------------------------------------------------------------------

def test_duplicate_column_is_refused_by_name(tmp_path):
    path = _file(tmp_path, "reviews.csv", "text,label,label\ngood,pos,neg\nbad,neg,pos\n")
    _refused(path, r"header \(line 1\) names column 'label' twice \(columns 2 and 3\); "
                   "rename or remove one")


def test_column_names_with_surrounding_spaces_match(tmp_path):
    path = _file(tmp_path, "reviews.csv", "text , label\n" + GOOD_ROWS)
    assert load_labelled_data(path).label_names == ["neg", "pos"]
    path = _file(tmp_path, "dup.csv", "text,label, label\ngood,pos,neg\nbad,neg,pos\n")
    _refused(path, "names column 'label' twice")


# --- 3. missing-value markers -------------------------------------------------------------------

def test_missing_value_markers_are_empty_labels(tmp_path):
    rows = "a,NaN\nb,nan\nc,NA\nd,N/A\ne,null\nf,None\ng,  \nh,#N/A\n"
    path = _file(tmp_path, "markers.csv", "text,label\n" + GOOD_ROWS + rows)
    with pytest.warns(UserWarning, match=r"skipped 8 row\(s\) with an empty text or label "
                                         r"\(first at line 6: label 'NaN'"):
        data = load_labelled_data(path)
    assert data.label_names == ["neg", "pos"] and data["all"].skipped == 8
    text = _refused(path, r"has 8 row\(s\) with an empty text or label \(first at line 6: "
                          r"label 'NaN', a missing-value marker\).*--on-empty skip",
                    on_empty="error")
    assert "NaN, nan, NA, N/A" in text


def test_marker_texts_are_empty_and_lowercase_words_stay_labels(tmp_path):
    path = _file(tmp_path, "words.csv", "text,label\n" + GOOD_ROWS + "NaN,pos\nnice,none\nfine,none\n")
    with pytest.warns(UserWarning, match=r"skipped 1 row.*line 6: text 'NaN'"):
        data = load_labelled_data(path)
    assert data.label_names == ["neg", "none", "pos"]


def test_on_empty_error_names_the_line(tmp_path):
    path = _file(tmp_path, "gaps.csv", "text,label\n" + GOOD_ROWS + ",pos\n")
    _refused(path, r"has 1 row\(s\) with an empty text or label \(first at line 6: empty text\)",
             on_empty="error")


def test_label_column_empty_everywhere_says_so(tmp_path):
    path = _file(tmp_path, "nolabels.csv", "text,label\na,\nb,\nc,NaN\n")
    _refused(path, r"column 'label' is empty in all 3 rows; fill it, or pass --label-column")


# --- 4. encodings -------------------------------------------------------------------------------

def test_latin1_file_names_byte_line_and_iconv(tmp_path):
    content = ("text,label\n" + GOOD_ROWS + "très bon,pos\n").encode("latin-1")
    path = _file(tmp_path, "export.csv", content)
    _refused(path, r"is not UTF-8 text \(byte 0xe8 at offset 60, line 6\); convert it, e\.g\. "
                   r"iconv -f latin1 -t utf-8 .*export\.csv > .*export-utf8\.csv")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_utf16_and_utf8_with_bom_are_read(tmp_path, encoding):
    content = ("text,label\n" + GOOD_ROWS + "très bon,pos\n").encode(encoding)
    data = load_labelled_data(_file(tmp_path, "bom.csv", content))
    assert data["all"].texts[-1] == "très bon" and data.label_names == ["neg", "pos"]
    records = [{"text": "good", "label": "pos"}, {"text": "bad", "label": "neg"}]
    jsonl = "\n".join(json.dumps(r) for r in records).encode(encoding)
    assert load_labelled_data(_file(tmp_path, "bom.jsonl", jsonl)).label_names == ["neg", "pos"]


def test_binary_file_is_not_a_text_file(tmp_path):
    path = _file(tmp_path, "picture.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    _refused(path, r"is not a text file \(NUL byte at offset 8\)")


# --- 5. JSONL siblings --------------------------------------------------------------------------

def _jsonl(tmp_path, lines, name="data.jsonl"):
    return _file(tmp_path, name, "\n".join(lines) + "\n")


BASE = ['{"text": "good", "label": "pos"}', '{"text": "bad", "label": "neg"}']


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"line 3 is not valid JSON"),
        ('["good", "pos"]', r"line 3 is not a JSON object \(it is a list\)"),
        ('{"text": "fine"}', r"line 3 has no field 'label'"),
        ('{"text": 5, "label": "pos"}',
         r"line 3: the text field 'text' is a number \(5\), not a string; write texts as strings"),
        ('{"text": ["a", "b"], "label": "pos"}', r"line 3: the text field 'text' is a list, not a string"),
        ('{"text": "ok", "label": ["pos"]}',
         r"line 3: the label field 'label' is a list, not a string or integer"),
        ('{"text": "ok", "label": "pos", "label": "neg"}', r"line 3 has the key 'label' twice"),
    ],
)
def test_bad_jsonl_lines(tmp_path, line, message):
    _refused(_jsonl(tmp_path, [*BASE, line]), message)


def test_jsonl_null_text_is_empty_and_blank_lines_are_skipped(tmp_path):
    path = _jsonl(tmp_path, [BASE[0], "", "   ", BASE[1], '{"text": null, "label": "pos"}'])
    with pytest.warns(UserWarning, match=r"skipped 1 row.*first at line 5: empty text"):
        assert len(load_labelled_data(path)["all"]) == 2


def test_jsonl_integral_float_label_is_the_integer(tmp_path):
    lines = ['{"text": "a", "label": 1}', '{"text": "b", "label": 1.0}', '{"text": "c", "label": "1"}',
             '{"text": "d", "label": 0}', '{"text": "e", "label": 2.5}']
    data = load_labelled_data(_jsonl(tmp_path, lines))
    assert data.label_names == ["0", "1", "2.5"]
    assert data["all"].labels.tolist() == [1, 1, 1, 0, 2]


def test_jsonl_empty_blank_and_csv_lookalike(tmp_path):
    _refused(_file(tmp_path, "empty.jsonl", ""), "is empty")
    _refused(_file(tmp_path, "blank.jsonl", "\n  \n"), "has no records")
    _refused(_jsonl(tmp_path, ["text,label", "good,pos"], "header.jsonl"),
             r"line 1 is not valid JSON .*if it is a CSV file, name it \.csv")
    _refused(_jsonl(tmp_path, ["[", *BASE, "]"], "array.jsonl"),
             r"line 1 is not valid JSON .*one JSON array.*one object per line")


# --- 5. CSV siblings ----------------------------------------------------------------------------

def test_unterminated_quote_names_its_line(tmp_path):
    path = _file(tmp_path, "quote.csv", 'text,label\ngood,pos\n"bad film,neg\nawful,neg\n')
    _refused(path, r"line 3: a quoted text is never closed \(it runs to the end of the file, "
                   r"line 4\); close the quote")


def test_text_after_closing_quote_names_its_line(tmp_path):
    path = _file(tmp_path, "quote.csv", 'text,label\ngood,pos\n"bad" film,neg\n')
    _refused(path, r"line 3: bad quoting \(.*\); quote a whole text and double the quotes inside")


def test_semicolon_separated_header_gets_a_hint(tmp_path):
    path = _file(tmp_path, "excel.csv", "text;label\ngood;pos\nbad;neg\n")
    _refused(path, r"has no column 'text' \(columns: text;label\).*looks ';'-separated")


def test_column_in_other_case_is_suggested(tmp_path):
    path = _file(tmp_path, "caps.csv", "Text,Label\n" + GOOD_ROWS)
    _refused(path, r"has no column 'text' \(columns: Text, Label\).*did you mean 'Text'")


def test_blank_lines_in_csv_are_not_rows(tmp_path):
    path = _file(tmp_path, "blank.csv", "\ntext,label\n\ngood,pos\n\nbad,neg\n\n")
    assert len(load_labelled_data(path)["all"]) == 2


# --- 6. TSV and Parquet -------------------------------------------------------------------------

def test_tsv_uses_the_strict_reader(tmp_path):
    path = _file(tmp_path, "reviews.tsv", "text\tlabel\ngood, fine\tpos\nbad\tneg\n")
    assert load_labelled_data(path)["all"].texts == ["good, fine", "bad"]
    path = _file(tmp_path, "ragged.tsv", "text\tlabel\ngood\tfilm\tpos\nbad\tneg\n")
    _refused(path, r"line 2 has 3 fields.*quote texts that contain tabs")


def test_parquet_is_read_and_checked(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "reviews.parquet"
    pq.write_table(pa.table({"text": ["good", "bad", None], "label": [1, 0, 1]}), path)
    with pytest.warns(UserWarning, match=r"skipped 1 row.*row index 2: empty text"):
        assert load_labelled_data(path).label_names == ["0", "1"]
    pq.write_table(pa.table({"body": ["good"], "label": [1]}), path)
    _refused(path, r"has no column 'text' \(columns: body, label\); pass --text-column")
    pq.write_table(pa.table({"text": [1, 2], "label": [1, 0]}), path)
    _refused(path, r"column 'text' holds int64, not strings")
    pq.write_table(pa.table({"text": ["a", "b"], "label": [[1], [0]]}), path)
    _refused(path, r"column 'label' holds list<.*int64>, not strings or integers")
    pq.write_table(pa.table({"text": pa.array([], pa.string()), "label": pa.array([], pa.int64())}),
                   path)
    _refused(path, r"has no rows")
    _file(tmp_path, "fake.parquet", "text,label\na,b\n")
    _refused(tmp_path / "fake.parquet", r"is not a Parquet file")


# --- 7. folders and options ---------------------------------------------------------------------

def _folder(tmp_path, names):
    folder = tmp_path / "data"
    folder.mkdir()
    for name in names:
        if name.endswith(".jsonl"):
            _jsonl(folder, BASE, name)
        else:
            _file(folder, name, "text,label\n" + GOOD_ROWS)
    return folder


def test_split_file_in_two_formats_is_refused(tmp_path):
    folder = _folder(tmp_path, ["train.csv", "train.jsonl", "test.csv"])
    _refused(folder, r"has two train files \(train\.csv, train\.jsonl\); keep one")


def test_split_file_names_ignore_case(tmp_path):
    folder = _folder(tmp_path, ["Train.CSV", "test.Csv"])
    assert list(load_labelled_data(folder).splits) == ["train", "test"]


def test_validation_and_dev_are_the_val_split(tmp_path):
    folder = _folder(tmp_path, ["train.csv", "validation.csv", "test.csv"])
    assert list(load_labelled_data(folder).splits) == ["train", "val", "test"]
    (folder / "dev.csv").write_text("text,label\n" + GOOD_ROWS)
    _refused(folder, r"has two val files \(dev\.csv, validation\.csv\); keep one")


def test_folder_without_split_files_says_what_it_found(tmp_path):
    folder = _folder(tmp_path, ["reviews.csv", "train.txt"])
    text = _refused(folder, r"has no train.csv or test.csv \(found: reviews\.csv, train\.txt\)")
    assert ".tsv, .jsonl and .parquet work too" in text


def test_same_text_and_label_column_is_refused(tmp_path):
    path = _file(tmp_path, "reviews.csv", "text,label\n" + GOOD_ROWS)
    with pytest.raises(InputError, match="text and label column are both 'text'"):
        load_labelled_data(path, label_column="text")


def test_hub_rows_get_the_same_type_and_missing_checks(monkeypatch):
    datasets = pytest.importorskip("datasets")
    label = datasets.ClassLabel(names=["neg", "pos"])
    features = datasets.Features({"text": datasets.Value("string"), "label": label})
    train = datasets.Dataset.from_dict({"text": ["good", "bad", "fine", "ok"],
                                        "label": [1, 0, -1, 1]}, features=features)
    monkeypatch.setattr(datasets, "load_dataset", lambda name: datasets.DatasetDict(train=train))
    with pytest.warns(UserWarning, match=r"toy\[train\]: skipped 1 row.*row index 2: empty label"):
        assert load_labelled_data("toy").label_names == ["neg", "pos"]
    tokens = datasets.Dataset.from_dict({"text": [["good"], ["bad"]], "label": ["pos", "neg"]})
    monkeypatch.setattr(datasets, "load_dataset", lambda name: datasets.DatasetDict(train=tokens))
    with pytest.raises(InputError, match=r"toy\[train\] row index 0: the text field 'text' is a list"):
        load_labelled_data("toy")

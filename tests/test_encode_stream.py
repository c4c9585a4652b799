"""Embeddings streamed to disk in chunks: equal to in-memory encoding, resumable, never clobbering."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from tiny_model import simple_corpus

import st_gloss.evaluation.encode as encode_module
from st_gloss.cli import main
from st_gloss.errors import InputError
from st_gloss.evaluation.encode import encode_texts, encode_to_file


@pytest.fixture()
def texts():
    return simple_corpus(n_per_class=8, seed=0)[0]  # 24 texts


@pytest.fixture()
def spy(monkeypatch):
    """Record the number of texts of every encode_texts call made by encode_to_file."""
    calls: list[int] = []
    original = encode_module.encode_texts

    def recording(model, chunk, **kwargs):
        calls.append(len(chunk))
        return original(model, chunk, **kwargs)

    monkeypatch.setattr(encode_module, "encode_texts", recording)
    return calls


def test_streamed_equals_in_memory_and_is_a_memmap(tiny_model, texts, tmp_path, spy):
    path = tmp_path / "cache" / "train.npy"  # the folder is created
    streamed = encode_to_file(tiny_model, texts, path, chunk_size=7, show_progress_bar=False)
    expected = encode_texts(tiny_model, texts, show_progress_bar=False)
    assert isinstance(streamed, np.memmap) and streamed.dtype == np.float32
    assert streamed.shape == (24, 32) and not streamed.flags.writeable
    np.testing.assert_allclose(streamed, expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(streamed, axis=1), 1.0, atol=1e-6)
    # Four chunks of at most 7 texts: memory is bounded by the chunk, not by the corpus.
    assert spy[:4] == [7, 7, 7, 3]
    np.testing.assert_array_equal(np.load(path), streamed)
    state = json.loads(path.with_name("train.npy.json").read_text())
    assert state["rows_done"] == 24 and state["dim"] == 32


def test_refuses_a_file_it_did_not_write(tiny_model, texts, tmp_path):
    path = tmp_path / "mine.npy"
    np.save(path, np.arange(6.0))
    with pytest.raises(InputError, match="not written by encode_to_file; pass overwrite=True"):
        encode_to_file(tiny_model, texts, path, show_progress_bar=False)
    np.testing.assert_array_equal(np.load(path), np.arange(6.0))  # untouched
    replaced = encode_to_file(tiny_model, texts, path, overwrite=True, show_progress_bar=False)
    assert replaced.shape == (24, 32)


def test_refuses_embeddings_of_other_texts_or_another_model(tiny_model, texts, tmp_path):
    path = tmp_path / "train.npy"
    first = np.array(encode_to_file(tiny_model, texts, path, show_progress_bar=False))
    with pytest.raises(InputError, match="embeddings of other texts"):
        encode_to_file(tiny_model, texts[:-1], path, show_progress_bar=False)
    with pytest.raises(InputError, match="embeddings of other texts"):
        encode_to_file(tiny_model, texts[::-1], path, show_progress_bar=False)
    with torch.no_grad():
        for parameter in tiny_model.parameters():
            parameter.add_(0.5 * torch.randn_like(parameter))
    with pytest.raises(InputError, match="written by another model"):
        encode_to_file(tiny_model, texts, path, show_progress_bar=False)
    np.testing.assert_array_equal(np.load(path), first)  # still the first model's vectors


def test_finished_file_is_reused_without_encoding_again(tiny_model, texts, tmp_path, spy):
    path = tmp_path / "train.npy"
    first = np.array(encode_to_file(tiny_model, texts, path, chunk_size=10, show_progress_bar=False))
    spy.clear()
    again = encode_to_file(tiny_model, texts, path, chunk_size=10, show_progress_bar=False)
    assert spy == [4]  # only the rows that check the model
    np.testing.assert_array_equal(again, first)


def test_interrupted_run_resumes_after_the_last_written_chunk(tiny_model, texts, tmp_path,
                                                              monkeypatch):
    path = tmp_path / "train.npy"
    original = encode_module.encode_texts
    calls: list[int] = []
    power = {"cut_at_call": 3}

    def flaky(model, chunk, **kwargs):
        calls.append(len(chunk))
        if len(calls) == power["cut_at_call"]:
            raise RuntimeError("power cut")
        return original(model, chunk, **kwargs)

    monkeypatch.setattr(encode_module, "encode_texts", flaky)
    with pytest.raises(RuntimeError, match="power cut"):
        encode_to_file(tiny_model, texts, path, chunk_size=5, show_progress_bar=False)
    assert json.loads(path.with_name("train.npy.json").read_text())["rows_done"] == 10
    calls.clear()
    power["cut_at_call"] = None
    resumed = encode_to_file(tiny_model, texts, path, chunk_size=5, show_progress_bar=False)
    assert calls == [4, 5, 5, 4]  # the model check, then rows 10-24 only
    expected = original(tiny_model, texts, show_progress_bar=False)
    np.testing.assert_allclose(resumed, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("train.bin", {}, "must end in .npy"),
        ("train.npy", {"chunk_size": 0}, "chunk_size must be at least 1"),
    ],
)
def test_bad_arguments(tiny_model, texts, tmp_path, name, kwargs, message):
    with pytest.raises(InputError, match=message):
        encode_to_file(tiny_model, texts, tmp_path / name, show_progress_bar=False, **kwargs)
    with pytest.raises(InputError, match="no texts"):
        encode_to_file(tiny_model, [], tmp_path / "empty.npy", show_progress_bar=False)


def _toy(folder):
    folder.mkdir()
    train, train_labels = simple_corpus(n_per_class=8, seed=0)
    test, test_labels = simple_corpus(n_per_class=3, seed=1)
    for name, rows, labels in (("train.csv", train, train_labels), ("test.csv", test, test_labels)):
        (folder / name).write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(rows, labels)))
    return folder


def test_cli_embeddings_dir_streams_reuses_and_gives_the_same_numbers(tiny_model_path, tmp_path):
    data = _toy(tmp_path / "toy")
    cache = tmp_path / "cache"
    common = [tiny_model_path, "--data", data, "--metrics", "knn,probe", "--k", 3, "--no-progress"]
    runner = CliRunner()
    streamed = runner.invoke(main, ["eval", *map(str, common), "--embeddings-dir", str(cache),
                                    "--chunk-size", "5", "--output", str(tmp_path / "a.json")])
    assert streamed.exit_code == 0, streamed.output
    files = sorted(p.name for p in cache.glob("*/*.npy"))
    assert len(files) == 2 and files[0].endswith("-test.npy") and files[1].endswith("-train.npy")
    in_memory = runner.invoke(main, ["eval", *map(str, common), "--output", str(tmp_path / "b.json")])
    assert in_memory.exit_code == 0, in_memory.output
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert a["models"][0]["results"]["knn"] == b["models"][0]["results"]["knn"]
    assert a["options"]["embeddings_dir"] == str(cache) and a["options"]["chunk_size"] == 5
    # A second run reuses the finished files (no --overwrite needed); --overwrite re-encodes.
    written = {p: p.stat().st_mtime_ns for p in cache.glob("*/*.npy")}
    again = runner.invoke(main, ["eval", *map(str, common), "--embeddings-dir", str(cache)])
    assert again.exit_code == 0, again.output
    assert {p: p.stat().st_mtime_ns for p in written} == written
    forced = runner.invoke(main, ["eval", *map(str, common), "--embeddings-dir", str(cache), "--overwrite"])
    assert forced.exit_code == 0, forced.output
    assert all(p.stat().st_mtime_ns != t for p, t in written.items())


def test_cli_refuses_a_foreign_file_in_the_embeddings_dir(tiny_model_path, tmp_path):
    data = _toy(tmp_path / "toy")
    cache = tmp_path / "cache"
    args = ["eval", str(tiny_model_path), "--data", str(data), "--metrics", "knn", "--k", 3,
            "--no-progress", "--embeddings-dir", str(cache)]
    assert CliRunner().invoke(main, args).exit_code == 0
    target = next(cache.glob("*/*-test.npy"))
    target.with_name(target.name + ".json").unlink()  # now nothing says the file is ours
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "pass overwrite=True (--overwrite)" in result.output
    assert "Traceback" not in result.output

"""Every command: options documented, nothing lost (outputs checked before work), bad values refused in one line."""

from __future__ import annotations

import os
import shutil

import click
import pytest
from click.testing import CliRunner

from st_gloss.cli import main


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _refused(result, message):
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)


def _train_args(model, data, output, *extra):
    return ("train", model, "--data", data, "--output", output, "--loss", "cosine", "--epochs", 1,
            "--batch-size", 8, "--max-seq-length", 16, "--no-progress", *extra)


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_option_has_a_help_text_and_every_command_examples(name):
    command = main.commands[name]
    missing = [p.name for p in command.params
               if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip()]
    assert not missing, f"st-gloss {name}: options without help: {missing}"
    assert "Examples:" in (command.help or ""), f"st-gloss {name} has no examples in its help"


def test_the_same_flags_everywhere():
    for name in ("eval", "train", "demo"):
        flags = {opt for p in main.commands[name].params for opt in p.opts + p.secondary_opts}
        assert {"--progress", "--no-progress", "--seed", "--data"} <= flags, name
    for name in ("eval", "train"):
        assert "--overwrite" in {opt for p in main.commands[name].params for opt in p.opts}


def test_train_refuses_an_output_that_is_or_lies_inside_the_model(tiny_model_path, tiny_data, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_path, model)
    before = sorted(p.name for p in model.iterdir())
    _refused(_run(*_train_args(model, tiny_data, model, "--overwrite")), "--output")
    _refused(_run(*_train_args(model, tiny_data, model / "run", "--overwrite")), "lies inside the model")
    assert sorted(p.name for p in model.iterdir()) == before  # nothing deleted, nothing added


def test_train_refuses_an_output_inside_the_data(tiny_model_path, tiny_data):
    _refused(_run(*_train_args(tiny_model_path, tiny_data, tiny_data / "run")), "lies inside the data")
    assert not (tiny_data / "run").exists()


def test_train_refuses_an_unwritable_output_before_training(tiny_model_path, tiny_data, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    result = _run(*_train_args(tiny_model_path, tiny_data, blocker / "out"))
    _refused(result, "is a file, not a folder")
    assert "epoch" not in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_train_refuses_a_read_only_folder(tiny_model_path, tiny_data, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        _refused(_run(*_train_args(tiny_model_path, tiny_data, locked / "out")), "is not writable")
    finally:
        locked.chmod(0o700)


def test_demo_refuses_an_unwritable_or_overlapping_save_folder_before_training(tiny_model_path, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    result = _run("demo", "--model", tiny_model_path, "--save", blocker / "model", "--no-progress")
    _refused(result, "is a file, not a folder")
    assert "before" not in result.output  # nothing was measured or trained
    model = tmp_path / "model"
    shutil.copytree(tiny_model_path, model)
    _refused(_run("demo", "--model", model, "--save", model / "tuned"), "lies inside the model")


def test_eval_refuses_bad_output_locations_before_encoding(tiny_model_path, tiny_data, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    base = ("eval", tiny_model_path, "--data", tiny_data, "--metrics", "knn", "--k", 3, "--no-progress")
    _refused(_run(*base, "--embeddings-dir", blocker / "cache"), "is a file, not a folder")
    _refused(_run(*base, "--output", blocker / "out.json"), "is a file, not a folder")
    train_csv = tiny_data / "train.csv"
    kept = train_csv.read_text()
    _refused(_run(*base, "--output", train_csv, "--overwrite"), "lies inside the data")
    assert train_csv.read_text() == kept
    _refused(_run(*base, "--output", tiny_model_path / "results.json"), "lies inside the model")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_eval_refuses_a_read_only_output_folder(tiny_model_path, tiny_data, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        _refused(_run("eval", tiny_model_path, "--data", tiny_data, "--output", locked / "o.json"),
                 "is not writable")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("eval", "--device", "bogus"), "unknown device 'bogus'"),
        (("eval", "--seed", "-1"), "Invalid value for '--seed'"),
        (("eval", "--batch-size", "0"), "Invalid value for '--batch-size'"),
        (("eval", "--silhouette-max-samples", "0"), "Invalid value for '--silhouette-max-samples'"),
        (("eval", "--max-seq-length", "0"), "Invalid value for '--max-seq-length'"),
        (("demo", "--seed", "-1"), "Invalid value for '--seed'"),
        (("demo", "--lr", "nan"), "'nan' is not a finite number"),
        (("demo", "--lr", "inf"), "'inf' is not a finite number"),
    ],
)
def test_bad_values_of_eval_and_demo_exit_2_in_one_line(args, message, tiny_model_path, tiny_data):
    command, *rest = args
    model = ["--model", tiny_model_path] if command == "demo" else [tiny_model_path, "--data", tiny_data]
    result = _run(command, *model, *rest)
    _refused(result, message)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_eval_refuses_cuda_and_mps_when_absent(tiny_model_path, tiny_data):
    _refused(_run("eval", tiny_model_path, "--data", tiny_data, "--device", "cuda"), "CUDA is not available")
    if not __import__("torch").backends.mps.is_available():
        _refused(_run("eval", tiny_model_path, "--data", tiny_data, "--device", "mps"), "MPS is not available")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seed", "-1"], "Invalid value for '--seed'"),
        (["--seed", str(2**32)], "Invalid value for '--seed'"),
        (["--warmup-ratio", "nan"], "'nan' is not a finite number"),
        (["--lr", "nan"], "'nan' is not a finite number"),
        (["--lr", "inf"], "'inf' is not a finite number"),
        (["--val-fraction", "nan"], "'nan' is not a finite number"),
    ],
)
def test_bad_values_of_train_exit_2_in_one_line(extra, message, tiny_model_path, tiny_data, tmp_path):
    _refused(_run(*_train_args(tiny_model_path, tiny_data, tmp_path / "out", *extra)), message)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("loss", "extra", "message"),
    [
        ("gloss", ["--labelled-fraction", "nan"], "'nan' is not a finite number"),
        ("gloss", ["--sigma", "inf"], "sigma must be a positive finite number"),
        ("gloss+ce", ["--graph-weight", "nan"], "'nan' is not a finite number"),
        ("supcon", ["--temperature", "inf"], "'inf' is not a finite number"),
        ("batch-all-triplet", ["--margin", "nan"], "'nan' is not a finite number"),
    ],
)
def test_bad_loss_options_exit_2_in_one_line(loss, extra, message, tiny_model_path, tiny_data, tmp_path):
    result = _run("train", tiny_model_path, "--data", tiny_data, "--output", tmp_path / "out", "--loss", loss, *extra)
    _refused(result, message)


def test_the_library_refuses_non_finite_options_too(tiny_data, tmp_path):
    from st_gloss.errors import InputError
    from st_gloss.training import TrainConfig, train

    for field, value in (("warmup_ratio", float("nan")), ("learning_rate", float("inf")), ("seed", -1),
                         ("temperature", float("nan"))):
        config = TrainConfig(str(tiny_data), "supcon" if field == "temperature" else "cosine", str(tmp_path / "o"),
                             **{field: value})
        with pytest.raises(InputError):
            train(config, echo=lambda line: None)
    assert not (tmp_path / "o").exists()


def test_old_spellings_still_work(tiny_model_path, tiny_data, tmp_path):
    output = tmp_path / "o.json"
    output.write_text("old")
    base = ("eval", tiny_model_path, "--data", tiny_data, "--metrics", "knn", "--k", 3, "--no-progress",
            "--output", output)
    assert _run(*base, "--force").exit_code == 0 and output.read_text() != "old"
    result = _run("eval", tiny_model_path, "--data", "sample:r8", "--metrics", "knn", "--no-progress")
    assert result.exit_code == 0 and "r8_sample [test]: 115 texts, 8 classes" in result.output, result.output

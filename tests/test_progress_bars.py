"""Progress off means no progress bars: not even the model card's widget bar of sentence-transformers."""

from __future__ import annotations

import importlib

from click.testing import CliRunner

from st_gloss.cli import main
from st_gloss.compat import _MODEL_CARD_MODULES, hf_progress_bars


def test_no_progress_training_prints_no_bar(tiny_model_path, tiny_data, tmp_path, capfd):
    result = CliRunner().invoke(main, ["train", str(tiny_model_path), "--data", str(tiny_data), "--output",
                                       str(tmp_path / "out"), "--epochs", "1", "--batch-size", "8",
                                       "--max-seq-length", "16", "--no-progress", "--loss", "gloss"])
    assert result.exit_code == 0, result.output
    captured = capfd.readouterr()
    text = result.output + captured.out + captured.err
    assert "Computing widget examples" not in text and "it/s]" not in text


def test_the_model_card_bar_comes_back_after_the_block():
    modules = []
    for name in _MODEL_CARD_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "tqdm"):
            modules.append(module)
            break
    assert modules, "no sentence-transformers model card module found: update _MODEL_CARD_MODULES"
    before = [m.tqdm for m in modules]
    with hf_progress_bars(False):
        assert all(m.tqdm is not b and m.tqdm.keywords == {"disable": True} for m, b in zip(modules, before))
    assert [m.tqdm for m in modules] == before

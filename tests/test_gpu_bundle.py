"""The GPU bundle: what `pack` writes (cut texts, float16 weights), and `run` end to end on CPU."""

from __future__ import annotations

import csv
import json
import lzma
import tarfile

import numpy as np
import pytest
from tiny_model import simple_corpus, write_split

from evaluation.benchmarks import gpu_bundle


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle-data")
    folder = root / "mr"
    folder.mkdir()
    for split, (n, seed) in {"train": (12, 0), "val": (4, 2), "test": (4, 1)}.items():
        write_split(folder, split, *simple_corpus(n_per_class=n, seed=seed))
    long_text = " ".join(f"w{i}" for i in range(gpu_bundle.MAX_WORDS + 50))
    with open(folder / "train.csv", "a", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerow([long_text, 0])
    return root


@pytest.fixture(scope="module")
def bundle(data_root, tiny_model_path, tmp_path_factory):
    target = tmp_path_factory.mktemp("bundles") / "gpu_bundle"
    gpu_bundle.pack(data_root, target, model=tiny_model_path, datasets=("mr",), wheels=False, echo=lambda line: None)
    return target


def _read_xz(path):
    with lzma.open(path, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_pack_cuts_long_texts_and_keeps_every_row_and_label(bundle, data_root):
    manifest = json.loads((bundle / gpu_bundle.MANIFEST).read_text())
    assert manifest["rows"] == {"mr": {"train": 37, "val": 12, "test": 12}} and manifest["model_dtype"] == "float16"
    with open(data_root / "mr" / "train.csv", newline="", encoding="utf-8") as handle:
        original = list(csv.DictReader(handle))
    packed = _read_xz(bundle / "data" / "mr" / "train.csv.xz")
    assert [r["label"] for r in packed] == [r["label"] for r in original]
    assert [r["text"] for r in packed[:-1]] == [r["text"] for r in original[:-1]]
    assert packed[-1]["text"].split() == original[-1]["text"].split()[: gpu_bundle.MAX_WORDS]


def test_the_weights_travel_in_float16_and_come_back_in_float32(bundle, tiny_model_path, tmp_path):
    from safetensors.numpy import load_file

    original = load_file(tiny_model_path / gpu_bundle.WEIGHTS)
    packed = load_file(bundle / "model" / gpu_bundle.WEIGHTS)
    restored = load_file(gpu_bundle.unpack_model(bundle / "model", tmp_path / "m") / gpu_bundle.WEIGHTS)
    assert set(original) == set(packed) == set(restored)
    for name, tensor in original.items():
        if np.issubdtype(tensor.dtype, np.floating):
            assert packed[name].dtype == np.float16 and restored[name].dtype == np.float32
            np.testing.assert_array_equal(restored[name], tensor.astype(np.float16).astype(np.float32))
        else:
            np.testing.assert_array_equal(restored[name], tensor)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted(p.name for p in tiny_model_path.iterdir())


def test_pack_refuses_to_replace_a_folder_it_did_not_write(data_root, tiny_model_path, tmp_path):
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "todo.txt").write_text("keep me")
    with pytest.raises(gpu_bundle.BundleError, match="is not a bundle"):
        gpu_bundle.pack(data_root, mine, model=tiny_model_path, datasets=("mr",), wheels=False)
    assert (mine / "todo.txt").read_text() == "keep me"


def test_bad_input_exits_2_with_a_message(tmp_path, capsys):
    assert gpu_bundle.main(["pack", "--data-root", str(tmp_path), "--bundle", str(tmp_path / "b"),
                            "--datasets", "mr", "--no-wheels"]) == 2
    assert "train.csv is missing" in capsys.readouterr().err and not (tmp_path / "b").exists()
    assert gpu_bundle.main(["run", "--out", str(tmp_path / "o"), "--bundle", str(tmp_path)]) == 2
    assert "is not a bundle" in capsys.readouterr().err
    assert gpu_bundle.main(["run", "--out", str(tmp_path / "o"), "--datasets", "imdb"]) == 2
    assert "unknown dataset" in capsys.readouterr().err


@pytest.mark.slow
def test_run_trains_from_the_bundle_and_writes_what_comes_back(bundle, tmp_path):
    out = tmp_path / "out"
    rc = gpu_bundle.run(out, bundle, minutes=5, datasets=("mr",), losses=["zero-shot", "gloss"], work=tmp_path,
                        committed=tmp_path / "none", echo=lambda line: None)
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["device.txt", "log.txt", "report.md", "results.tar.gz"]
    assert (out / "device.txt").read_text().strip() == gpu_bundle._device_line()
    with tarfile.open(out / "results.tar.gz") as archive:
        names = sorted(archive.getnames())
        # seed 0, then seeds 1 and 2 of MR
        assert names == [f"mr__{loss}__seed{s}.json" for loss in ("gloss", "zero-shot") for s in (0, 1, 2)]
        result = json.load(archive.extractfile("mr__gloss__seed0.json"))
    assert result["profile"] == "full-gpu" and result["status"] == "finished"
    assert result["config"]["max_seq_length"] == 128 and result["eval_metric"] == "silhouette_macro"
    assert result["data"]["sizes"] == {"train": 37, "val": 12, "test": 12}  # the full splits, no subset
    assert "| gloss |" in (out / "report.md").read_text()

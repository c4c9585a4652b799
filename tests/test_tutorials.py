"""Every tutorial script of the docs runs, on the tiny model and tiny data, and prints what its page promises.

The Python tutorials run in this process (``runpy``: the heavy imports are paid once); the shell
tutorial runs as a subprocess. Each runs in its own temporary folder, so ``tutorial-output/``
lands there.
"""

from __future__ import annotations

import csv
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"
SAMPLES = Path(__file__).resolve().parents[1] / "st_gloss" / "data"


def read_split(sample: str, split: str, n: int | None = None) -> tuple[list[str], list[str]]:
    with open(SAMPLES / f"{sample}_sample" / f"{split}.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:n]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def reference_knn(model_path, index_texts, index_labels, query_texts, query_labels, k, max_seq_length=None):
    """kNN predictions and accuracy recomputed here (loop, cosine, ties to the nearest), not by st_gloss."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path), device="cpu")
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    index = model.encode(list(index_texts), normalize_embeddings=True).astype(np.float64)
    queries = model.encode(list(query_texts), normalize_embeddings=True).astype(np.float64)
    predictions = []
    for query in queries:
        ranked = [index_labels[j] for j in np.argsort(-(index @ query), kind="stable")[:k]]
        counts = {label: ranked.count(label) for label in ranked}
        predictions.append(next(label for label in ranked if counts[label] == max(counts.values())))
    return predictions, float(np.mean([p == y for p, y in zip(predictions, query_labels)]))


def printed(pattern: str, out: str) -> float:
    match = re.search(pattern, out)
    assert match, f"{pattern!r} not in the output:\n{out[-2000:]}"
    return float(match.group(1))


@pytest.fixture()
def tutorial_env(tiny_model_path, tmp_path, monkeypatch):
    monkeypatch.setenv("ST_GLOSS_DEFAULT_MODEL", str(tiny_model_path))  # the scripts load the default model
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_tutorial(name: str, capsys) -> str:
    runpy.run_path(str(TUTORIALS / name), run_name="__main__")
    return capsys.readouterr().out


def test_every_tutorial_has_a_test():
    tested = set(re.findall(r'"(\d\d_\w+\.(?:py|sh))"', Path(__file__).read_text(encoding="utf-8")))
    assert {p.name for p in TUTORIALS.glob("[0-9][0-9]_*")} == tested


@pytest.mark.slow
def test_tutorial_1_model_fit(tutorial_env, tiny_model_path, capsys):
    out = run_tutorial("01_model_fit.py", capsys)
    assert "trained on 300 texts, 2 classes" in out
    saved = tutorial_env / "tutorial-output" / "model-fit"
    assert (saved / "modules.json").exists()
    texts, labels = read_split("mr", "train", 300)
    test_texts, test_labels = read_split("mr", "test", 200)
    for when, model in (("before: ", tiny_model_path), ("after:  ", saved)):  # the untrained and the trained model
        _, expected = reference_knn(model, texts, labels, test_texts, test_labels, k=5, max_seq_length=128)
        assert printed(rf"kNN accuracy {when}(\d\.\d{{3}})", out) == pytest.approx(expected, abs=5e-4), when


@pytest.mark.slow
def test_tutorial_2_trainer(tutorial_env, tiny_model_path, capsys):
    out = run_tutorial("02_trainer.py", capsys)
    saved = tutorial_env / "tutorial-output" / "trainer" / "final"
    assert (saved / "modules.json").exists()
    texts, labels = read_split("r8", "train", 300)
    known = [(t, y) for t, y in zip(*read_split("r8", "test", 200)) if y in set(labels)]
    for when, model in (("before", tiny_model_path), (r"after \(best epoch\)", saved)):
        _, expected = reference_knn(model, texts, labels, [t for t, _ in known], [y for _, y in known], k=5,
                                    max_seq_length=128)
        got = printed(rf"{when}: \{{'knn_accuracy': (?:np\.float64\()?(\d\.\d+)", out)
        assert got == pytest.approx(expected, abs=1e-9), when


@pytest.mark.slow
def test_tutorial_3_eval_cli(tutorial_env, tiny_model_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    assert shutil.which("st-gloss", path=env["PATH"]), "st-gloss is not installed beside this Python"
    done = subprocess.run(["bash", str(TUTORIALS / "03_eval_cli.sh")], env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "kNN accuracy" in done.stdout and "probe accuracy" in done.stdout
    assert "data: r8_sample, 115 texts, 8 classes" in done.stdout
    match = re.search(r"kNN accuracy (\d\.\d{3}), hardest class \S+ \(F1 (\d\.\d\d)\)", done.stdout)
    assert match, done.stdout[-2000:]
    # The index is the train split, the queries the test split, k=10, the model's own max_seq_length.
    from sklearn.metrics import f1_score

    texts, labels = read_split("r8", "train")
    test_texts, test_labels = read_split("r8", "test")
    predictions, expected = reference_knn(tiny_model_path, texts, labels, test_texts, test_labels, k=10)
    assert float(match.group(1)) == pytest.approx(expected, abs=5e-4)
    classes = sorted(set(labels))
    per_class = f1_score(test_labels, predictions, labels=classes, average=None, zero_division=0)
    assert float(match.group(2)) == pytest.approx(per_class.min(), abs=5e-3)
    report = json.loads((tutorial_env / "tutorial-output" / "eval.json").read_text(encoding="utf-8"))
    assert report["models"][0]["results"]["knn"]["accuracy"] == pytest.approx(expected, abs=1e-9)


@pytest.mark.slow
def test_tutorial_4_mteb_own_csv(tutorial_env, capsys):
    out = run_tutorial("04_mteb_own_csv.py", capsys)
    assert "task LocalMyNewsClassification" in out
    match = re.search(r"accuracy (\d\.\d{3})  macro-F1 (\d\.\d{3})  \(8 texts per class, 10 experiments\)", out)
    assert match, out[-2000:]
    # A mean over 10 experiments of (right answers / test texts): a multiple of 1 / (10 n), up to the rounding.
    n = len(read_split("r8", "test")[0])
    accuracy, macro_f1 = float(match.group(1)), float(match.group(2))
    assert abs(accuracy * 10 * n - round(accuracy * 10 * n)) <= 10 * n * 5e-4 + 1e-9, (accuracy, n)
    assert 0 < macro_f1 <= 1


@pytest.mark.slow
def test_tutorial_5_choosing_options(tutorial_env, tiny_model_path, capsys):
    out = run_tutorial("05_choosing_options.py", capsys)
    assert "batch of 128 texts, 8 classes" in out
    sigmas = dict(re.findall(r"sigma rule +(\w+): (\d\.\d{3})", out))
    assert set(sigmas) == {"sqrt_median", "dicm"}
    # The two rules recomputed from the batch's embeddings with scipy (the batch: up to 16 texts of each class).
    from scipy.spatial.distance import pdist
    from sentence_transformers import SentenceTransformer

    texts, labels = read_split("r8", "train")
    batch = [pair for name in sorted(set(labels)) for pair in [p for p in zip(texts, labels) if p[1] == name][:16]]
    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    model.max_seq_length = 128
    embeddings = model.encode([t for t, _ in batch], normalize_embeddings=True).astype(np.float64)
    distances = pdist(embeddings)
    names = np.array([y for _, y in batch])
    across = pdist(names[:, None], lambda a, b: float(a[0] != b[0])).astype(bool)
    assert float(sigmas["sqrt_median"]) == pytest.approx(np.sqrt(np.median(distances) / 3), abs=6e-4)
    # printed to 3 decimals from float32
    assert float(sigmas["dicm"]) == pytest.approx(distances[across].min() / 3, abs=6e-4)
    assert float(sigmas["dicm"]) < float(sigmas["sqrt_median"])  # closest cross-class pair < median distance
    assert len(re.findall(r"^ +0\.[3579] +\d+\.\d{3} +0\.\d{3}$", out, flags=re.M)) == 4


@pytest.mark.slow
def test_tutorial_6_benchmark(tutorial_env, capsys):
    out = run_tutorial("06_benchmark.py", capsys)
    assert "# Benchmark: tutorial" in out
    for row in ("zero-shot", "gloss", "supcon"):
        assert re.search(rf"^\| {row} \| \**-?\d", out, flags=re.M), row
    page = tutorial_env / "tutorial-output" / "benchmark" / "benchmark_tutorial.md"
    assert page.read_text(encoding="utf-8") in out


@pytest.mark.slow
def test_tutorial_7_multi_gpu_under_torchrun_on_cpu(tutorial_env):
    from launch_env import environment, free_port

    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(free_port()), str(TUTORIALS / "07_multi_gpu.py")]
    done = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    graph = "2 processes x 32 texts per batch = one graph of 64 nodes, plus 128 labelled nodes from the memory"
    assert graph in done.stdout
    assert re.search(r"after: \{'knn_accuracy': 0\.\d+", done.stdout)
    assert (tutorial_env / "tutorial-output" / "multi-gpu" / "final" / "modules.json").exists()


@pytest.mark.slow
def test_tutorial_8_classify(tutorial_env, tiny_model_path, capsys):
    out = run_tutorial("08_classify.py", capsys)
    metrics = json.loads((tutorial_env / "tutorial-output" / "classifier" / "metrics.json").read_text())
    assert "heads ['linear', 'logistic', 'propagation'], default linear" in out
    for head in ("linear", "logistic", "propagation"):
        got = printed(rf"test accuracy of the {head} head: (\d\.\d+)", out)
        assert got == pytest.approx(metrics["test"][f"head_{head}_accuracy"], abs=5e-4)
    predicted = re.findall(r"^(negative|positive) +(\d\.\d\d)  ", out, flags=re.M)
    assert len(predicted) == 2 and all(0.5 <= float(p) <= 1.0 for _, p in predicted)
    # the untrained model + logistic head, recomputed with scikit-learn on the model's own embeddings
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    texts, labels = read_split("mr", "train")
    test_texts, test_labels = read_split("mr", "test")
    train_x = model.encode(texts, normalize_embeddings=True)
    test_x = model.encode(test_texts, normalize_embeddings=True)
    reference = LogisticRegression(max_iter=1000, random_state=0).fit(train_x, labels)
    expected = float(np.mean(reference.predict(test_x) == np.array(test_labels)))
    assert printed(r"untrained model \+ logistic head: test accuracy (\d\.\d+)", out) == pytest.approx(
        expected, abs=5e-4)


@pytest.mark.slow
def test_tutorial_9_semi_supervised(tutorial_env, capsys):
    out = run_tutorial("09_semi_supervised.py", capsys)
    texts, _ = read_split("mr", "train")
    assert f"24 labelled texts, {len(texts) - 24} unlabelled texts" in out
    folder = tutorial_env / "tutorial-output"
    unlabelled = list(csv.DictReader(open(folder / "few-labels" / "unlabelled.csv", encoding="utf-8")))
    assert list(unlabelled[0]) == ["text"] and len(unlabelled) == len(texts) - 24
    for run, name, used in ((0, "labelled only", 0), (1, "with unlabelled texts", len(unlabelled))):
        metrics = json.loads((folder / f"semi-{run}" / "metrics.json").read_text())
        assert metrics.get("unlabelled", {}).get("texts", 0) == used
        got = printed(rf"{name} +unlabelled texts used: +{used}; best epoch \d+; "
                      r"test accuracy \(logistic head\): (\d\.\d+)", out)
        assert got == pytest.approx(metrics["test"]["head_logistic_accuracy"], abs=5e-4)
        assert metrics["loss"]["config"]["graph"] == ("knn" if used else "dense")  # --unlabelled's default
    assert len(re.findall(r"^(negative|positive) +\S", out, flags=re.M)) == 2

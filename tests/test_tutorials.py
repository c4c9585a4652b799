"""Every tutorial script of the docs runs, on the tiny model and tiny data, and prints what its page promises.

The Python tutorials run in this process (``runpy``: the heavy imports are paid once); the shell
tutorial runs as a subprocess. Each runs in its own temporary folder, so ``tutorial-output/``
lands there.
"""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"


@pytest.fixture()
def tutorial_env(tiny_model_path, tmp_path, monkeypatch):
    monkeypatch.setenv("ST_GLOSS_TUTORIAL_TINY", str(tiny_model_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_tutorial(name: str, capsys) -> str:
    runpy.run_path(str(TUTORIALS / name), run_name="__main__")
    return capsys.readouterr().out


def test_every_tutorial_has_a_test():
    tested = set(re.findall(r'"(\d\d_\w+\.(?:py|sh))"', Path(__file__).read_text(encoding="utf-8")))
    assert {p.name for p in TUTORIALS.glob("[0-9][0-9]_*")} == tested


@pytest.mark.slow
def test_tutorial_1_model_fit(tutorial_env, capsys):
    out = run_tutorial("01_model_fit.py", capsys)
    assert "trained on 48 texts, 2 classes" in out
    assert re.search(r"kNN accuracy after:  0\.\d{3}", out)
    assert (tutorial_env / "tutorial-output" / "model-fit" / "modules.json").exists()


@pytest.mark.slow
def test_tutorial_2_trainer(tutorial_env, capsys):
    out = run_tutorial("02_trainer.py", capsys)
    assert re.search(r"after \(best epoch\): \{'knn_accuracy': 0\.\d+", out)
    assert (tutorial_env / "tutorial-output" / "trainer" / "final" / "modules.json").exists()


@pytest.mark.slow
def test_tutorial_3_eval_cli(tutorial_env):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    assert shutil.which("st-gloss", path=env["PATH"]), "st-gloss is not installed beside this Python"
    done = subprocess.run(["bash", str(TUTORIALS / "03_eval_cli.sh")], env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "kNN accuracy" in done.stdout and "probe accuracy" in done.stdout
    assert "data: r8_sample, 115 texts, 8 classes" in done.stdout
    assert re.search(r"kNN accuracy 0\.\d{3}, hardest class \S+ \(F1 0\.\d\d\)", done.stdout)


@pytest.mark.slow
def test_tutorial_4_mteb_own_csv(tutorial_env, capsys):
    out = run_tutorial("04_mteb_own_csv.py", capsys)
    assert "task LocalMyNewsClassification" in out
    assert re.search(r"accuracy 0\.\d{3}  macro-F1 0\.\d{3}  \(8 texts per class, 2 experiments\)", out)


@pytest.mark.slow
def test_tutorial_5_choosing_options(tutorial_env, capsys):
    out = run_tutorial("05_choosing_options.py", capsys)
    assert "batch of 32 texts, 8 classes" in out
    sigmas = dict(re.findall(r"sigma rule +(\w+): (\d\.\d{3})", out))
    assert set(sigmas) == {"sqrt_median", "dicm"}
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
    graph = "2 processes x 8 texts per batch = one graph of 16 nodes, plus 32 labelled nodes from the memory"
    assert graph in done.stdout
    assert re.search(r"after: \{'knn_accuracy': 0\.\d+", done.stdout)
    assert (tutorial_env / "tutorial-output" / "multi-gpu" / "final" / "modules.json").exists()

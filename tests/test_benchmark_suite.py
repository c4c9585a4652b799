"""The benchmark runner (skips finished jobs, resumes an interrupted one) and the aggregator (exact tables)."""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest
from tiny_model import simple_corpus

from evaluation.benchmarks import aggregate, runner
from evaluation.benchmarks.profiles import CPU, PROFILES
from evaluation.benchmarks.sensitivity import sweep_jobs


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data-root")
    folder = root / "toy"
    folder.mkdir()
    for split, (n, seed) in {"train": (12, 0), "val": (3, 2), "test": (3, 1)}.items():
        texts, labels = simple_corpus(n_per_class=n, seed=seed)
        with open(folder / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(zip(texts, labels))
    return root


@pytest.fixture()
def profile(tiny_model_path):
    return dataclasses.replace(
        CPU,
        name="tiny",
        model=str(tiny_model_path),
        max_seq_length=16,
        epochs=1,
        batch_size=8,
        learning_rates=(5e-5, 1e-4),
        max_test_examples=None,
    )


def test_the_runner_skips_finished_jobs_and_reruns_an_interrupted_run(profile, data_root, tmp_path, monkeypatch):
    from st_gloss import training

    results, work = tmp_path / "results", tmp_path / "work"
    jobs = runner.plan(profile, ["toy"], ["zero-shot", "cosine"], [0])
    calls = []
    real_train = training.train

    def counting_train(config, echo=print):
        calls.append((config.loss, config.learning_rate, config.evaluate_test))
        return real_train(config, echo)

    monkeypatch.setattr(training, "train", counting_train)
    done = runner.run(jobs, profile, results, work, data_root=data_root, echo=lambda line: None, keep_models=True)
    assert [r["job"]["key"] for r in done] == ["toy__zero-shot__seed0", "toy__cosine__seed0"]
    # Two learning rates, validation only; then the test split of the chosen one, once.
    assert calls == [("cosine", 5e-5, False), ("cosine", 1e-4, False)]
    cosine = json.loads((results / "toy__cosine__seed0.json").read_text())
    assert cosine["learning_rate"] in (5e-5, 1e-4) and len(cosine["trials"]) == 2
    assert set(cosine["test"]) >= {"knn_accuracy", "silhouette_macro", "probe_accuracy"}
    zero_shot = json.loads((results / "toy__zero-shot__seed0.json").read_text())
    assert zero_shot["best_epoch"] == 0 and zero_shot["data"] == cosine["data"]

    calls.clear()
    assert runner.run(jobs, profile, results, work, data_root=data_root, echo=lambda line: None) == []
    assert calls == []

    # An interrupted job: the first learning rate finished, the second left a 'running' metrics.json.
    (results / "toy__cosine__seed0.json").unlink()
    second = work / "toy__cosine__seed0" / "lr0.0001"
    metrics = json.loads((second / "metrics.json").read_text())
    (second / "metrics.json").write_text(json.dumps({**metrics, "status": "running"}))
    (second / "partial.bin").write_text("left by a crash")
    done = runner.run(jobs, profile, results, work, data_root=data_root, echo=lambda line: None)
    assert [r["job"]["key"] for r in done] == ["toy__cosine__seed0"]
    assert calls == [("cosine", 1e-4, False)]
    assert not (second / "partial.bin").exists()
    assert runner.is_finished(results / "toy__cosine__seed0.json")
    assert not (second / "model.safetensors").exists()  # weights dropped once the job is done


def test_the_runner_starts_no_job_once_its_time_is_up(profile, data_root, tmp_path, monkeypatch):
    jobs = runner.plan(profile, ["toy"], ["zero-shot", "cosine"], [0])
    ran, lines = [], []
    monkeypatch.setattr(runner, "run_job", lambda job, *a, **k: ran.append(job.key) or {"test": {}})
    clock = iter([0.0, 0.0, 5.0])  # started; first job checked at 0 s; second at 5 s
    monkeypatch.setattr(runner.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(runner, "_report", lambda result, echo: None)
    runner.run(jobs, profile, tmp_path / "r", tmp_path / "w", stop_after_seconds=4, echo=lines.append)
    assert ran == ["toy__zero-shot__seed0"]
    assert "time is up (4 s): 1 jobs left" in lines[-1]


def _result(dataset, loss, seed, accuracy, epoch=1, seconds=10.0):
    return {
        "status": "finished",
        "job": {"dataset": dataset, "loss": loss, "seed": seed, "options": {}, "tag": ""},
        "profile": "cpu",
        "eval_metric": "knn_accuracy",
        "best_epoch": epoch,
        "seconds_per_epoch": seconds,
        "curve": [{"epoch": 1, "val": {"knn_accuracy": accuracy}}],
        "test": {"knn_accuracy": accuracy},
    }


def test_the_aggregator_reproduces_a_hand_made_table_exactly(tmp_path):
    hand_made = [
        _result("mr", "gloss", 0, 0.80),
        _result("mr", "gloss", 1, 0.84),
        _result("mr", "ce", 0, 0.81),
        _result("mr", "ce", 1, 0.81),
        _result("r8", "gloss", 0, 0.95),
        _result("r8", "ce", 0, 0.96),
        _result("mr", "zero-shot", 0, 0.70, epoch=0, seconds=0.0),
    ]
    for result in hand_made:
        job = result["job"]
        (tmp_path / f"{job['dataset']}__{job['loss']}__seed{job['seed']}.json").write_text(json.dumps(result))
    (tmp_path / "unfinished.json").write_text(json.dumps({"status": "running"}))
    results = aggregate.load_results(tmp_path)
    assert len(results) == 7
    assert aggregate.metric_table(results, aggregate.METRICS[0]) == "\n".join(
        [
            "| loss | mr | r8 |",
            "|---|---:|---:|",
            "| zero-shot | 0.7000 | – |",
            "| gloss | **0.8200 ± 0.0283** | 0.9500 |",
            "| ce | 0.8100 ± 0.0000 | **0.9600** |",
        ]
    )
    epochs = next(m for m in aggregate.METRICS if m.key == "best_epoch")
    # The untrained model is a reference: its 0 epochs are never the "best" (bold) cell.
    assert aggregate.metric_table(results, epochs).splitlines()[2:4] == [
        "| zero-shot | 0.0 | – |",
        "| gloss | **1.0 ± 0.0** | **1.0** |",
    ]
    # MR: +0.01 is less than the 0.0283 spread over two seeds; R8 has one seed and the hand-made
    # files give no test size, so neither spread is known.
    assert aggregate.head_to_head(results, aggregate.METRICS[0]).splitlines()[2:] == [
        "| mr | gloss | within noise | +0.0100 | 0.0283 | – | 0.8200 | ce | 0.8100 |",
        "| r8 | gloss | loss (one seed) | -0.0100 | – | – | 0.9500 | ce | 0.9600 |",
    ]
    # With 2000 test texts per job, R8's -0.01 is larger than its binomial SE
    # sqrt(.95 * .05 / 2000 + .96 * .04 / 2000) = 0.0066: a loss even with one seed.
    for result in results:
        result["data"] = {"sizes": {"test": 2000}}
    assert aggregate.head_to_head(results, aggregate.METRICS[0]).splitlines()[3] == (
        "| r8 | gloss | loss | -0.0100 | – | 0.0066 | 0.9500 | ce | 0.9600 |"
    )
    # Against a named row, here the zero-shot model is not a candidate but "ce" is.
    assert aggregate.head_to_head(results, aggregate.METRICS[0], ["gloss"], baseline="ce").splitlines()[0] == (
        "| dataset | G-Loss row | verdict | difference | seed spread | test SE | value | ce | value |"
    )
    output = tmp_path / "out" / "benchmark.md"
    output.parent.mkdir()
    paper = tmp_path / "paper.json"
    paper.write_text(
        json.dumps(
            {
                "source": "Table 2",
                "backbone": "BERT-base",
                "budget": "full data",
                "standalone": {
                    "protocol": "a probe",
                    "our_metric": "test.knn_accuracy",
                    "our_f1_metric": "test.knn_macro_f1",
                    "rows": {"gloss": "GLoss-O"},
                    "row_notes": {"gloss": "tuned there"},
                    "values": {"GLoss-O": {"mr": {"accuracy": 0.9, "accuracy_sd": 0.01, "macro_f1": 0.89,
                                                  "macro_f1_sd": 0.02, "silhouette_macro": 0.55}}},
                },
            }
        )
    )
    text = aggregate.aggregate(tmp_path, output, title="Toy", paper_path=paper)
    assert output.read_text() == text
    # our gloss on MR: kNN 0.80 and 0.84 over two seeds, beside the paper's 0.90 ± 0.01
    assert "| mr | gloss (GLoss-O) | 0.8200 ± 0.0283 | 0.9000 ± 0.0100 | – | 0.8900 ± 0.0200 |" in text
    assert "- `gloss`: tuned there." in text and "The paper: BERT-base, full data (Table 2)" in text
    assert "## G-Loss against the best baseline" in text and "| r8 | gloss | loss (one seed) | -0.0100 |" in text
    assert (tmp_path / "out" / "figures" / "convergence_benchmark_mr.png").stat().st_size > 1000
    assert "](figures/convergence_benchmark_mr.png)" in text


def test_profiles_give_every_loss_the_same_budget():
    for profile in PROFILES.values():
        assert profile.losses[0] == "zero-shot" and len(set(profile.losses)) == len(profile.losses) >= 7
        for loss in profile.losses[1:]:
            from st_gloss.registry import LOSSES

            assert set(profile.options_for(loss)) <= set(LOSSES[loss].options)


def test_the_sensitivity_sweep_varies_one_option_at_a_time():
    jobs = sweep_jobs("r8", [0, 1])
    assert len(jobs) == 2 * 15
    assert {dict(j.options).popitem()[0] for j in jobs} == {"labelled_fraction", "sigma", "graph_weight"}
    assert all(j.loss == "gloss+ce" for j in jobs if "graph_weight" in dict(j.options))


def test_the_full_profile_runs_the_papers_rows_on_full_splits(tmp_path):
    full = PROFILES["full"]
    assert full.datasets == ("mr", "r8") and full.epochs <= 3
    assert full.max_train_examples is None and full.max_val_examples is None and full.max_test_examples is None
    # the integrated rows (scored by their linear head) and the standalone rows of the paper
    assert {"ce", "supcon+ce", "gloss+ce", "gloss", "supcon", "batch-all-triplet"} <= set(full.losses)
    # the paper's epoch rules: head macro-F1 for the integrated rows, silhouette for the others
    configs = {job.loss: runner._config(full, job, tmp_path / job.key, 5e-5, None, True, None, False)
               for job in runner.plan(full, ["mr"], None, [0])}
    assert {loss: c.eval_metric for loss, c in configs.items()} == {
        "zero-shot": "silhouette", "gloss": "silhouette", "supcon": "silhouette", "batch-all-triplet": "silhouette",
        "ce": "head", "supcon+ce": "head", "gloss+ce": "head"}
    assert {c.knn_index_examples for c in configs.values()} == {1000}
    assert {c.max_seq_length for c in configs.values()} == {64}
    gpu = PROFILES["full-gpu"]
    assert len(gpu.datasets) == 5 and gpu.max_seq_length == 128 and gpu.eval_metrics == full.eval_metrics


def test_the_standalone_comparison_picks_its_baseline_among_the_standalone_losses():
    rows = [("gloss", 0.80), ("supcon", 0.78), ("batch-all-triplet", 0.75), ("ce", 0.95)]
    results = [{"job": {"dataset": "mr", "loss": loss, "seed": seed}, "data": {"sizes": {"test": 1000}},
                "test": {"head_logistic_accuracy": value + 0.01 * seed, "knn_accuracy": value,
                         "silhouette_macro": 0.1}}
               for loss, value in rows for seed in (0, 1)]
    text = aggregate.render(results, title="t")
    section = text.split("### Logistic-head accuracy (standalone mode)")[1].split("###")[0]
    line = next(x for x in section.splitlines() if x.startswith("| mr |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    # ce (0.95) is not a standalone loss; supcon is the best of those
    assert cells[1] == "gloss" and cells[7] == "supcon" and float(cells[3]) == pytest.approx(0.02)
    # the difference (0.02) is above the seed spread (0.007) and the test SE (0.013): a win
    assert cells[2] == "win"

"""The few-shot benchmark, end to end on the tiny model: every row, paired subsets, the report and the plot."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from evaluation.benchmarks import few_shot

HAS_SETFIT = importlib.util.find_spec("setfit") is not None


def test_the_labelled_subset_depends_on_the_seed_alone():
    labels = np.repeat([0, 1, 2], [30, 5, 20])
    a, pool_a = few_shot.draw(labels, 8, 3, 1000)
    b, pool_b = few_shot.draw(labels, 8, 3, 1000)
    c, _ = few_shot.draw(labels, 8, 4, 1000)
    assert np.array_equal(a, b) and np.array_equal(pool_a, pool_b) and not np.array_equal(a, c)
    assert np.bincount(labels[a]).tolist() == [8, 5, 8]  # all of a class with fewer than 8
    assert not set(a) & set(pool_a) and len(a) + len(pool_a) == len(labels)


@pytest.mark.slow
def test_every_row_runs_and_the_report_pairs_them(tiny_model_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # SetFit and the trainer must write nothing here either
    rows = tuple(r for r in few_shot.ROWS if HAS_SETFIT or "setfit" not in r)
    profile = few_shot.FewShotProfile(datasets=("sample:mr",), shots=(4,), seeds=(0, 1), steps=2, batch_size=8,
                                      max_seq_length=16, pool_size=24, test_size=20)
    results = tmp_path / "results"
    jobs = few_shot.plan(profile, rows)
    assert few_shot.run(jobs, profile, results, model_name=str(tiny_model_path), echo=lambda line: None) == len(jobs)
    assert few_shot.run(jobs, profile, results, model_name=str(tiny_model_path), echo=lambda line: None) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    finished = few_shot.load_results(results)
    by_key = {(r["job"]["row"], r["job"]["seed"]): r for r in finished}
    # the zero-shot row's logistic score, recomputed with scikit-learn on the tiny model's embeddings
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    from st_gloss.evaluation.pipeline import load_data
    from st_gloss.evaluation.splits import stratified_subset

    data = load_data("sample:mr")
    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    model.max_seq_length = 16
    labelled, _ = few_shot.draw(data["train"].labels, 4, 0, 24)
    test_rows = stratified_subset(data["test"].labels, 20, seed=0)
    x = model.encode([data["train"].texts[i] for i in labelled], normalize_embeddings=True)
    test_x = model.encode([data["test"].texts[i] for i in test_rows], normalize_embeddings=True)
    reference = LogisticRegression(max_iter=1000, random_state=0).fit(x, data["train"].labels[labelled])
    expected = float(np.mean(reference.predict(test_x) == data["test"].labels[test_rows]))
    assert by_key[("zero-shot", 0)]["scores"]["logistic"]["accuracy"] == pytest.approx(expected, abs=1e-9)
    assert by_key[("zero-shot", 0)]["scores"]["native"] is None
    for row in rows:
        for seed in (0, 1):
            result = by_key[(row, seed)]
            assert result["n_labelled"] == 8 and result["n_test"] == 20
            has_native = row.startswith(("gloss", "setfit")) or row == "label-spreading"
            assert (result["scores"]["native"] is not None) == has_native, row
    assert by_key[("gloss+pool", 0)]["n_pool"] == 24 and by_key[("gloss", 0)]["n_pool"] == 0
    text = few_shot.report(finished, "python -m evaluation.benchmarks.few_shot --toy",
                           reference="setfit" if HAS_SETFIT else "zero-shot")
    assert "### sample:mr, 4 labelled texts per class" in text
    hours = sum(r["seconds"] for r in finished) / 3600
    assert f"{len(finished)} runs, {hours:.1f} hours of run time in all" in text
    for row in rows:
        assert f"| {row} |" in text
    assert "(0/2)" in text or "(1/2)" in text or "(2/2)" in text  # a paired difference with its wins
    assert few_shot.plot(finished, tmp_path / "fig.png").stat().st_size > 5000


def test_pseudo_labels_take_the_most_confident_pool_texts_of_each_class(monkeypatch):
    # Texts are points: two labelled clusters, a pool spread between them. The most confident pool
    # texts of a class are the ones nearest its cluster; each class gets at most `per_class`.
    points = {f"l0-{i}": [1.0, 0.02 * i] for i in range(4)} | {f"l1-{i}": [0.02 * i, 1.0] for i in range(4)}
    angles = np.linspace(0.05, np.pi / 2 - 0.05, 9)
    pool = [f"p{i}" for i in range(9)]
    points |= {name: [np.cos(a), np.sin(a)] for name, a in zip(pool, angles)}
    monkeypatch.setattr(few_shot, "_encode", lambda model, texts: np.array([points[t] for t in texts]))
    texts = [f"l0-{i}" for i in range(4)] + [f"l1-{i}" for i in range(4)]
    chosen, labels = few_shot.pseudo_labels(None, texts, [0] * 4 + [1] * 4, pool, 2, per_class=3, seed=0)
    assert sorted(zip(labels, chosen)) == [(0, "p0"), (0, "p1"), (0, "p2"), (1, "p6"), (1, "p7"), (1, "p8")]
    assert few_shot.pseudo_labels(None, texts, [0] * 4 + [1] * 4, [], 2, per_class=3, seed=0) == ([], [])


@pytest.mark.slow
def test_the_variant_rows_run(tiny_model_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    profile = few_shot.FewShotProfile(datasets=("sample:mr",), shots=(4,), seeds=(0,), steps=2, batch_size=8,
                                      max_seq_length=16, pool_size=24, test_size=20)
    jobs = few_shot.plan(profile, few_shot.VARIANT_ROWS)
    assert few_shot.run(jobs, profile, tmp_path / "results", model_name=str(tiny_model_path),
                        echo=lambda line: None) == len(jobs)
    by_row = {r["job"]["row"]: r for r in few_shot.load_results(tmp_path / "results")}
    assert set(by_row) == set(few_shot.VARIANT_ROWS)
    assert 0 < by_row["gloss+pseudo"]["pseudo_labels"] <= 8 and by_row["gloss+pseudo"]["n_pool"] == 24
    assert by_row["gloss+pool@u75"]["n_pool"] == 24 and "pseudo_labels" not in by_row["gloss+pool@entropy"]
    assert "| gloss+pool@entropy |" in few_shot.report(list(by_row.values()), "toy", reference="gloss")


def test_resuming_with_another_budget_is_refused(tmp_path):
    import json

    profile = few_shot.FewShotProfile(datasets=("sample:mr",), shots=(4,), seeds=(0,), steps=2)
    job = few_shot.plan(profile, ("zero-shot",))[0]
    (tmp_path / f"{job.key}.json").write_text(json.dumps({"profile": {**few_shot.asdict(profile), "steps": 3}}))
    with pytest.raises(ValueError, match="steps 3 here, 2 now"):
        few_shot.run([job], profile, tmp_path, echo=lambda line: None)
    # another seed or dataset list is not another budget: the finished job is skipped
    wider = few_shot.replace(profile, seeds=(0, 1))
    (tmp_path / f"{job.key}.json").write_text(json.dumps({"profile": few_shot.asdict(wider)}))
    assert few_shot.run([job], profile, tmp_path, echo=lambda line: None) == 0

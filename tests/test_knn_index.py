"""Approximate kNN indexes (IVF, HNSW) against exact search, the auto choice, and `st-gloss eval --index`."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import st_gloss.evaluation.index as index_module
from st_gloss.cli import main
from st_gloss.errors import InputError
from st_gloss.evaluation.index import (
    IndexOptions,
    build_index,
    default_nlist,
    exact_search,
    recall_at_k,
    resolve_kind,
)
from st_gloss.evaluation.knn import knn_classify, search_neighbours

REPO = Path(__file__).resolve().parents[1]
R8_SAMPLE = str(REPO / "st_gloss" / "data" / "r8_sample")


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _clustered(n, dim=32, classes=10, latent=8, spread=0.8, seed=0):
    """Unit vectors around class centres in a low-dimensional latent space, with their labels."""
    rng = np.random.default_rng(seed)
    projection = rng.standard_normal((latent, dim))
    centres = rng.standard_normal((classes, latent)) * 2
    labels = rng.integers(0, classes, n)
    latent_points = centres[labels] + spread * rng.standard_normal((n, latent))
    return _unit(latent_points @ projection + 0.1 * rng.standard_normal((n, dim))), labels


def _numpy_topk(index, queries, k, exclude_self=False):
    """Independent exact neighbours: a full similarity matrix and a stable argsort."""
    sims = _unit(queries) @ _unit(index).T
    if exclude_self:
        np.fill_diagonal(sims, -np.inf)
    ids = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(sims, ids, axis=1)


def _id_recall(found, exact):
    return float(np.mean([len(set(a) & set(b)) / exact.shape[1] for a, b in zip(found, exact)]))


def test_exact_search_in_chunks_matches_a_full_similarity_matrix():
    x, _ = _clustered(700, seed=1)
    queries = x[:50]
    sims, ids = exact_search(x, queries, 7, chunk_size=128)  # 6 chunks, the last one short
    expected_ids, expected_sims = _numpy_topk(x, queries, 7)
    np.testing.assert_allclose(sims, expected_sims, atol=1e-5)
    assert _id_recall(ids, expected_ids) == 1.0


def test_flat_index_recall_is_exactly_one():
    x, _ = _clustered(1500, seed=2)
    queries = _clustered(200, seed=3)[0]
    built = build_index(x, "flat")
    sims, ids = built.search(queries, 10)
    exact_sims, exact_ids = exact_search(x, queries, 10, chunk_size=256)
    assert recall_at_k(sims, exact_sims) == 1.0
    np.testing.assert_array_equal(ids, _numpy_topk(x, queries, 10)[0])


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_recall_on_clustered_data(kind):
    x, labels = _clustered(4000, seed=4)
    queries, query_labels = _clustered(300, seed=5)
    result = knn_classify(x, labels, queries, query_labels, k=10, index=kind)
    assert result.index_type == kind
    # The reported recall (sampled, tie-aware) agrees with an independent id-based recall.
    exact_ids, _ = _numpy_topk(x, queries, 10)
    independent = _id_recall(result.neighbor_indices, exact_ids)
    assert result.recall_at_k >= 0.9 and independent >= 0.9
    assert result.recall_at_k == pytest.approx(independent, abs=1e-9)  # 300 < 1000: all sampled
    assert result.index_info["recall_queries"] == 300
    exact = knn_classify(x, labels, queries, query_labels, k=10, index="flat")
    assert exact.recall_at_k is None and exact.index_type == "flat"
    assert abs(result.accuracy - exact.accuracy) <= 0.02
    report = result.to_dict()
    assert report["index_type"] == kind and report["recall_at_k"] == result.recall_at_k
    assert json.dumps(report)  # JSON-safe


def test_a_starved_ivf_reports_low_recall_and_warns():
    x, labels = _clustered(4000, latent=16, spread=1.5, seed=6)
    queries = _clustered(300, latent=16, spread=1.5, seed=7)[0]
    starved = IndexOptions("ivf", nlist=100, nprobe=1)
    with pytest.warns(UserWarning, match="raise nprobe"):
        low = search_neighbours(x, queries, 10, index=starved)
    exact_ids, _ = _numpy_topk(x, queries, 10)
    assert low.recall_at_k < 0.9
    assert low.recall_at_k == pytest.approx(_id_recall(low.indices, exact_ids), abs=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        high = search_neighbours(x, queries, 10, index=IndexOptions("ivf", nlist=100, nprobe=100))
    assert high.recall_at_k == 1.0  # every list searched: exact


def test_recall_sample_is_seeded_and_bounded():
    x, _ = _clustered(3000, seed=8)
    options = IndexOptions("ivf", nprobe=2, recall_queries=200, seed=3)
    first = search_neighbours(x, x[:1000], 5, index=options)
    second = search_neighbours(x, x[:1000], 5, index=options)
    assert first.index_info["recall_queries"] == 200
    assert first.recall_at_k == second.recall_at_k
    np.testing.assert_array_equal(first.indices, second.indices)
    off = search_neighbours(x, x[:100], 5, index=IndexOptions("ivf", recall_queries=0))
    assert off.recall_at_k is None and "recall_queries" not in off.index_info


def test_recall_counts_exact_duplicates_as_found():
    exact = np.array([[1.0, 1.0, 0.5]], dtype=np.float32)
    # A search that returned the other copy of a duplicate has the same similarities: no miss.
    assert recall_at_k(np.array([[1.0, 1.0, 0.5]]), exact) == 1.0
    assert recall_at_k(np.array([[1.0, 0.5, 0.4]]), exact) == pytest.approx(2 / 3)
    missing = np.array([[1.0, 1.0, np.finfo(np.float32).min]])
    assert recall_at_k(missing, exact) == pytest.approx(2 / 3)


def test_auto_is_exact_unless_the_index_and_the_search_are_both_large(monkeypatch):
    monkeypatch.setattr(index_module, "AUTO_FLAT_MAX_VECTORS", 500)
    monkeypatch.setattr(index_module, "AUTO_FLAT_MAX_PAIRS", 501 * 100)
    x, labels = _clustered(1200, seed=9)
    small_index = knn_classify(x[:500], labels[:500], x[500:], labels[500:], k=5)
    assert small_index.index_type == "flat" and small_index.recall_at_k is None
    few_queries = knn_classify(x[:501], labels[:501], x[501:601], labels[501:601], k=5)
    assert few_queries.index_type == "flat" and few_queries.recall_at_k is None
    many_queries = knn_classify(x[:501], labels[:501], x[501:602], labels[501:602], k=5)
    assert many_queries.index_type == "hnsw" and 0.9 <= many_queries.recall_at_k <= 1.0
    assert many_queries.index_info["requested"] == "auto"
    leave_one_out = knn_classify(x[:600], labels[:600], x[:600], labels[:600], k=5, leave_one_out=True)
    assert leave_one_out.index_type == "hnsw"
    assert resolve_kind("auto", 500, 10**9) == "flat" and resolve_kind("auto", 501, None) == "hnsw"
    assert default_nlist(501) == 12


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_leave_one_out_excludes_the_query_itself(kind):
    x, labels = _clustered(2000, seed=10)
    x[1] = x[0]  # an exact duplicate must not let row 0 or row 1 find itself
    result = knn_classify(x, labels, x, labels, k=5, leave_one_out=True, index=kind)
    rows = np.arange(len(x))[:, None]
    assert not np.any(result.neighbor_indices == rows)
    assert result.neighbor_indices[0, 0] == 1 and result.neighbor_indices[1, 0] == 0
    exact_ids, _ = _numpy_topk(x, x, 5, exclude_self=True)
    assert _id_recall(result.neighbor_indices, exact_ids) >= 0.9
    assert result.recall_at_k >= 0.9


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_same_seed_same_neighbours(kind):
    x, _ = _clustered(3000, seed=11)
    runs = [search_neighbours(x, x[:300], 10, index=IndexOptions(kind, seed=5, nprobe=2))
            for _ in range(2)]
    np.testing.assert_array_equal(runs[0].indices, runs[1].indices)
    np.testing.assert_array_equal(runs[0].similarities, runs[1].similarities)


def test_memmap_input_gives_the_in_memory_result(tmp_path):
    x, labels = _clustered(2500, seed=12)
    np.save(tmp_path / "x.npy", x * 3.0)  # not normalised: knn normalises chunk by chunk
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    options = IndexOptions("ivf", add_chunk_size=300)
    from_disk = knn_classify(mapped, labels, mapped[:200], labels[:200], k=5, index=options)
    in_memory = knn_classify(x, labels, x[:200], labels[:200], k=5, index="ivf")
    np.testing.assert_array_equal(from_disk.neighbor_indices, in_memory.neighbor_indices)
    np.testing.assert_allclose(from_disk.neighbor_similarities, in_memory.neighbor_similarities,
                               atol=1e-6)


def test_queries_the_index_cannot_answer_are_searched_exactly():
    x, labels = _clustered(400, seed=13)
    # 50 lists of about 8 vectors, one probed: fewer than 20 candidates for most queries.
    options = IndexOptions("ivf", nlist=50, nprobe=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a low recall is not the point here
        result = knn_classify(x, labels, x[:100], labels[:100], k=20, index=options)
    assert (result.neighbor_indices >= 0).all()
    np.testing.assert_array_equal(result.neighbor_indices[:, 0], np.arange(100))
    notes = " ".join(result.index_info["notes"])
    assert "searched exactly" in notes and "fewer than 39 training vectors" in notes


def test_bad_index_options():
    x, _ = _clustered(100, seed=14)
    with pytest.raises(InputError, match="choose one of auto, flat, ivf, hnsw"):
        IndexOptions("annoy")
    with pytest.raises(InputError, match="nprobe must be a positive integer"):
        IndexOptions("ivf", nprobe=0)
    with pytest.raises(InputError, match="hnsw_ef_search must be a positive integer"):
        IndexOptions("hnsw", hnsw_ef_search=0)
    with pytest.raises(InputError, match="lower nlist"):
        build_index(x, IndexOptions("ivf", nlist=101))
    built = build_index(x, IndexOptions("ivf", nlist=2, nprobe=8))
    assert built.params["nprobe"] == 2 and "lowered to nlist=2" in built.notes[0]
    with pytest.raises(InputError, match="choose 1 <= k <= 99"):
        search_neighbours(x, x, 100, leave_one_out=True, index="hnsw")


def _invoke(*args):
    return CliRunner().invoke(main, ["eval", *map(str, args)])


def test_cli_hnsw_reports_recall_in_table_and_json(tiny_model_path, tmp_path):
    output = tmp_path / "r8.json"
    result = _invoke(tiny_model_path, "--data", R8_SAMPLE, "--metrics", "knn", "--k", 5,
                     "--index", "hnsw", "--hnsw-ef", 64, "--no-progress", "--output", output)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("kNN recall vs exact"))
    knn = json.loads(output.read_text())["models"][0]["results"]["knn"]
    assert knn["index_type"] == "hnsw" and knn["index"]["params"]["ef_search"] == 64
    assert 0.9 <= knn["recall_at_k"] <= 1.0
    assert row.split()[-1] == f"{knn['recall_at_k']:.4f}"
    assert "kNN index for" in result.output and "hnsw (M=32, ef_search=64)" in result.output
    options = json.loads(output.read_text())["options"]
    assert options["index"] == "hnsw" and options["hnsw_ef"] == 64


def test_cli_default_stays_exact_and_prints_no_recall(tiny_model_path, tmp_path):
    output = tmp_path / "r8.json"
    result = _invoke(tiny_model_path, "--data", R8_SAMPLE, "--metrics", "knn", "--k", 5,
                     "--no-progress", "--output", output)
    assert result.exit_code == 0, result.output
    assert "recall" not in result.output
    knn = json.loads(output.read_text())["models"][0]["results"]["knn"]
    assert knn["index_type"] == "flat" and knn["recall_at_k"] is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--index", "annoy"], "Invalid value for '--index'"),
        (["--nprobe", "0"], "Invalid value for '--nprobe'"),
        (["--hnsw-ef", "-3"], "Invalid value for '--hnsw-ef'"),
        (["--chunk-size", "100"], "give --embeddings-dir DIR as well"),
    ],
)
def test_cli_bad_index_options_exit_2(tiny_model_path, extra, message):
    result = _invoke(tiny_model_path, "--data", R8_SAMPLE, "--metrics", "knn", "--no-progress", *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


# Without faiss (an image with PyTorch only): exact search in numpy, the same answers.


@pytest.fixture
def no_faiss(monkeypatch):
    monkeypatch.setattr(index_module, "faiss_available", lambda: False)


def test_numpy_flat_index_matches_faiss_and_a_sorted_matrix(no_faiss):
    import faiss

    x = _clustered(600, seed=3)[0]
    queries = _clustered(50, seed=4)[0]
    built = build_index(x, "flat")
    assert built.params == {"backend": "numpy"} and built.index.ntotal == 600
    sims, ids = built.search(queries, 7)
    reference = faiss.IndexFlatIP(x.shape[1])
    reference.add(x)
    faiss_sims, faiss_ids = reference.search(queries, 7)
    np.testing.assert_array_equal(ids, faiss_ids)
    np.testing.assert_allclose(sims, faiss_sims, atol=1e-5)
    full = queries.astype(np.float64) @ x.astype(np.float64).T
    np.testing.assert_array_equal(ids, np.argsort(-full, axis=1, kind="stable")[:, :7])


def test_numpy_exact_search_in_chunks_and_past_the_end(no_faiss):
    x = _clustered(300, seed=5)[0]
    queries = x[:20]
    sims, ids = exact_search(x, queries, 5, chunk_size=64)
    full = queries @ x.T
    np.testing.assert_array_equal(ids, np.argsort(-full, axis=1, kind="stable")[:, :5])
    np.testing.assert_allclose(sims, np.sort(full, axis=1)[:, ::-1][:, :5], atol=1e-6)
    sims, ids = exact_search(x[:3], queries, 5)  # k above the number of vectors: faiss's -1 places
    assert (ids[:, 3:] == -1).all() and (sims[:, 3:] < -1e38).all() and (ids[:, :3] >= 0).all()


def test_numpy_ties_go_to_the_lower_id(no_faiss):
    x = np.array([[0, 1], [1, 0], [1, 0], [1, 0]], dtype=np.float32)
    _, ids = build_index(x, "flat").search(np.array([[1, 0]], dtype=np.float32), 2)
    assert ids.tolist() == [[1, 2]]
    _, ids = exact_search(x, np.array([[1, 0]], dtype=np.float32), 2, chunk_size=2)
    assert ids.tolist() == [[1, 2]]


def test_knn_classify_without_faiss_gives_the_faiss_result(no_faiss, monkeypatch):
    x, y = _clustered(400, seed=6)
    q, qy = _clustered(100, seed=7)
    without = knn_classify(x, y, q, qy, k=5)
    monkeypatch.setattr(index_module, "faiss_available", lambda: True)
    with_faiss = knn_classify(x, y, q, qy, k=5)
    assert without.accuracy == with_faiss.accuracy and without.macro_f1 == with_faiss.macro_f1


def test_approximate_index_without_faiss_is_a_clear_error(no_faiss, monkeypatch):
    x = _clustered(200)[0]
    for kind in ("ivf", "hnsw"):
        with pytest.raises(InputError, match="needs faiss.*pip install faiss-cpu"):
            build_index(x, kind)
    monkeypatch.setattr(index_module, "AUTO_FLAT_MAX_VECTORS", 10)
    monkeypatch.setattr(index_module, "AUTO_FLAT_MAX_PAIRS", 10)
    assert resolve_kind("auto", 200, 200) == "hnsw"
    built = build_index(x, "auto", n_queries=200)  # auto stays exact and says why
    assert built.kind == "flat" and "faiss is not installed" in built.notes[0]

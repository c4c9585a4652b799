"""Texts without a label (-1) in the graph: hidden nodes that carry labels, receive gradients, score nothing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from st_gloss import functional
from st_gloss.functional import UNLABELLED
from st_gloss.masking import stratified_labelled_mask


def numpy_harmonic(x: np.ndarray, labels: np.ndarray, labelled: np.ndarray, sigma: float, num_classes: int):
    """Zhu & Ghahramani's harmonic solution, written out in numpy: rows of the hidden nodes in index order."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    w = np.exp(-d2 / (2 * sigma**2))
    np.fill_diagonal(w, 0.0)
    p = w / w.sum(axis=1, keepdims=True)
    u, lab = np.where(~labelled)[0], np.where(labelled)[0]
    y_l = np.eye(num_classes)[labels[lab]]
    return np.linalg.solve(np.eye(len(u)) - p[np.ix_(u, u)], p[np.ix_(u, lab)] @ y_l), u


@pytest.fixture()
def batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5))
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, UNLABELLED, UNLABELLED, UNLABELLED, UNLABELLED])
    labelled = np.array([1, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    return x, labels, labelled


def test_propagation_through_unlabelled_nodes_is_the_numpy_harmonic_solution(batch):
    x, labels, labelled = batch
    expected, _ = numpy_harmonic(x, labels, labelled, 0.7, 3)
    got = functional.propagate_labels(torch.tensor(x), torch.tensor(labels), torch.tensor(labelled), 0.7,
                                      num_classes=3)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)


def test_only_hidden_nodes_with_a_label_are_scored(batch):
    x, labels, labelled = batch
    f_u, hidden = numpy_harmonic(x, labels, labelled, 0.7, 3)
    scored = labels[hidden] >= 0
    expected = -np.log(f_u[scored, labels[hidden][scored]]).mean()
    for num_classes in (None, 3):
        loss = functional.graph_loss(torch.tensor(x), torch.tensor(labels), torch.tensor(labelled), 0.7,
                                     num_classes=num_classes)
        assert float(loss) == pytest.approx(expected, abs=1e-9)
    # the unlabelled rows change the loss only as graph nodes: without them it is another number
    without = functional.graph_loss(torch.tensor(x[:8]), torch.tensor(labels[:8]), torch.tensor(labelled[:8]), 0.7)
    assert abs(float(without) - expected) > 1e-3


def test_gradients_reach_the_unlabelled_rows_and_gradcheck_passes(batch):
    x, labels, labelled = batch
    xt = torch.tensor(x, requires_grad=True)
    functional.graph_loss(xt, torch.tensor(labels), torch.tensor(labelled), 0.7).backward()
    assert (xt.grad[labels == UNLABELLED].abs().sum(dim=1) > 0).all()
    small = torch.tensor(x[[0, 1, 3, 4, 8, 9]], requires_grad=True)
    small_labels = torch.tensor([0, 0, 1, 1, UNLABELLED, UNLABELLED])
    small_mask = torch.tensor([True, False, True, False, False, False])
    assert torch.autograd.gradcheck(lambda e: functional.graph_loss(e, small_labels, small_mask, 0.7), (small,))


def test_the_entropy_term_on_unlabelled_nodes_matches_numpy(batch):
    x, labels, labelled = batch
    f_u, hidden = numpy_harmonic(x, labels, labelled, 0.7, 3)
    scored = labels[hidden] >= 0
    nll = -np.log(f_u[scored, labels[hidden][scored]]).mean()
    entropy = -(f_u[~scored] * np.log(f_u[~scored])).sum(axis=1).mean()
    for beta in (0.0, 0.3, 2.0):
        loss = functional.graph_loss(torch.tensor(x), torch.tensor(labels), torch.tensor(labelled), 0.7,
                                     unlabelled_weight=beta)
        assert float(loss) == pytest.approx(nll + beta * entropy, abs=1e-9)
    # the term moves the unlabelled rows' gradients, and gradcheck still passes
    small = torch.tensor(x[[0, 1, 3, 4, 8, 9]], requires_grad=True)
    small_labels = torch.tensor([0, 0, 1, 1, UNLABELLED, UNLABELLED])
    small_mask = torch.tensor([True, False, True, False, False, False])
    assert torch.autograd.gradcheck(
        lambda e: functional.graph_loss(e, small_labels, small_mask, 0.7, unlabelled_weight=0.5), (small,))
    # without unlabelled nodes the weight changes nothing
    plain = functional.graph_loss(torch.tensor(x[:8]), torch.tensor(labels[:8]), torch.tensor(labelled[:8]), 0.7)
    weighted = functional.graph_loss(torch.tensor(x[:8]), torch.tensor(labels[:8]), torch.tensor(labelled[:8]), 0.7,
                                     unlabelled_weight=5.0)
    assert float(plain) == float(weighted)
    for bad in (-0.1, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="unlabelled_weight"):
            functional.graph_loss(torch.tensor(x), torch.tensor(labels), torch.tensor(labelled), 0.7,
                                  unlabelled_weight=bad)


def test_graph_guided_loss_passes_its_unlabelled_weight(batch, tiny_model):
    from st_gloss import GraphGuidedLoss

    x, labels, _ = batch
    model = tiny_model
    emb, y = torch.tensor(x), torch.tensor(labels)
    plain = GraphGuidedLoss(model, sigma=0.7, seed=0)
    weighted = GraphGuidedLoss(model, sigma=0.7, seed=0, unlabelled_weight=1.0)
    assert weighted.get_config_dict()["unlabelled_weight"] == 1.0
    assert float(weighted.compute_loss_from_embeddings(emb, y)) > float(plain.compute_loss_from_embeddings(emb, y))
    with pytest.raises(ValueError, match="unlabelled_weight"):
        GraphGuidedLoss(model, unlabelled_weight=-1)


def test_an_unlabelled_node_in_the_labelled_mask_is_refused(batch):
    x, labels, labelled = batch
    labelled = labelled.copy()
    labelled[9] = True
    with pytest.raises(ValueError, match="can only be hidden"):
        functional.graph_loss(torch.tensor(x), torch.tensor(labels), torch.tensor(labelled), 0.7)
    with pytest.raises(ValueError, match="or -1 for a text without a label"):
        functional.graph_loss(torch.tensor(x), torch.tensor([-2] + [0] * 11), torch.tensor([False] * 12), 0.7)


def test_the_mask_is_drawn_among_the_labelled_texts_only():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1])
    for seed in range(20):
        mask = stratified_labelled_mask(labels, 0.5, torch.Generator().manual_seed(seed))
        assert not mask[labels == -1].any()
        # the labelled texts get exactly the mask they would get alone (same generator state)
        alone = stratified_labelled_mask(labels[:8], 0.5, torch.Generator().manual_seed(seed))
        assert torch.equal(mask[:8], alone)


def test_one_labelled_class_plus_unlabelled_texts_is_degenerate(tiny_model):
    from st_gloss import GraphGuidedLoss

    loss = GraphGuidedLoss(tiny_model, sigma=0.5, seed=0)
    embeddings = torch.randn(8, 16, requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = loss.compute_loss_from_embeddings(embeddings, torch.tensor([0, 0, 0, 0, -1, -1, -1, -1]))
    assert float(value) == 0.0 and value.requires_grad
    from st_gloss.losses.graph_guided import DEGENERATE_BATCH_WARNING

    assert [str(w.message) for w in caught] == [DEGENERATE_BATCH_WARNING]


def test_graph_guided_loss_with_unlabelled_texts_matches_the_functional(tiny_model):
    from st_gloss import GraphGuidedLoss

    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, -1, -1, -1, -1])
    embeddings = torch.randn(10, 16, dtype=torch.float64, requires_grad=True)
    loss = GraphGuidedLoss(tiny_model, labelled_fraction=0.5, sigma=0.6, seed=3)
    value = loss.compute_loss_from_embeddings(embeddings, labels)
    mask = stratified_labelled_mask(labels, 0.5, torch.Generator().manual_seed(3))
    expected = functional.graph_loss(embeddings, labels, mask, 0.6)
    assert float(value) == pytest.approx(float(expected), abs=1e-12)
    value.backward()
    assert (embeddings.grad[6:].abs().sum(dim=1) > 0).all()


def test_the_ce_head_and_the_memory_ignore_unlabelled_texts(tiny_model):
    from st_gloss import GraphGuidedLoss

    torch.manual_seed(0)
    loss = GraphGuidedLoss(tiny_model, num_labels=2, sigma=0.6, seed=0, memory_steps=2, embedding_dimension=16)
    embeddings = torch.randn(8, 16, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, -1, -1, -1, -1])
    parts = loss.compute_loss_from_embeddings(embeddings, labels)
    logits = loss.classifier(embeddings[:4])
    expected_ce = torch.nn.functional.cross_entropy(logits, labels[:4])
    assert float(parts["ce"]) == pytest.approx(float(0.2 * expected_ce), rel=1e-6)
    assert torch.isfinite(parts["graph"]) and torch.isfinite(parts["ce"])
    assert loss.memory.labels().tolist() == [0, 0, 1, 1]  # only the labelled texts are remembered


@pytest.mark.parametrize("name", ["ce", "supcon", "supcon+ce", "cosine"])
def test_the_other_losses_refuse_texts_without_a_label(tiny_model, name):
    from st_gloss.registry import build_loss

    loss = build_loss(name, tiny_model, num_labels=2)
    with pytest.raises(ValueError, match="cannot use texts without a label"):
        loss.compute_loss_from_embeddings(torch.randn(4, 16), torch.tensor([0, 1, -1, 0]))


def _pool_dataset(n_per_class=(10, 6, 8), n_unlabelled=40):
    from datasets import Dataset

    labels = [c for c, n in enumerate(n_per_class) for _ in range(n)] + [UNLABELLED] * n_unlabelled
    return Dataset.from_dict({"text": [f"t{i}" for i in range(len(labels))], "label": labels})


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75])
def test_the_semi_supervised_sampler_mixes_a_set_share_of_unlabelled_texts(fraction):
    from st_gloss import SemiSupervisedBatchSampler

    dataset = _pool_dataset()
    labels = dataset["label"]
    sampler = SemiSupervisedBatchSampler(dataset, batch_size=16, unlabelled_fraction=fraction, seed=1)
    per_batch = round(fraction * 16)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        seen = []
        for batch in batches:
            unlabelled = [i for i in batch if labels[i] == UNLABELLED]
            assert len(unlabelled) == per_batch and len(set(batch)) == len(batch)
            known = [labels[i] for i in batch if labels[i] != UNLABELLED]
            assert len(set(known)) >= 2  # several classes in every batch
            seen += [i for i in batch if labels[i] != UNLABELLED]
        assert sorted(seen) == [i for i, y in enumerate(labels) if y != UNLABELLED]  # each labelled text once
        drawn = [i for b in batches for i in b if labels[i] == UNLABELLED]
        # the pool is used in shuffled rounds: no text twice before every text once
        first_round = drawn[: min(len(drawn), 40)]
        assert len(set(first_round)) == len(first_round)
    again = SemiSupervisedBatchSampler(dataset, batch_size=16, unlabelled_fraction=fraction, seed=1)
    again.set_epoch(2)
    assert list(again) == batches  # deterministic given the seed and the epoch


def test_the_samplers_refuse_what_they_cannot_batch():
    from st_gloss import ClassBalancedBatchSampler, SemiSupervisedBatchSampler

    dataset = _pool_dataset()
    with pytest.raises(ValueError, match="use st_gloss.SemiSupervisedBatchSampler"):
        ClassBalancedBatchSampler(dataset, batch_size=16)
    with pytest.raises(ValueError, match="at least 4 are needed"):
        SemiSupervisedBatchSampler(dataset, batch_size=8, unlabelled_fraction=0.75)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\)"):
        SemiSupervisedBatchSampler(dataset, batch_size=8, unlabelled_fraction=1.0)


def test_the_trainer_trains_semi_supervised_gloss_with_the_sampler(tiny_model):
    from sentence_transformers import SentenceTransformerTrainer
    from tiny_model import simple_corpus

    from st_gloss import GraphGuidedLoss, SemiSupervisedBatchSampler
    from st_gloss.training import training_arguments

    texts, labels = simple_corpus(n_per_class=8, seed=0)
    pool, _ = simple_corpus(n_per_class=8, seed=5)
    from datasets import Dataset

    dataset = Dataset.from_dict({"text": texts + pool, "label": labels + [UNLABELLED] * len(pool)})
    loss = GraphGuidedLoss(tiny_model, sigma=0.5, seed=0)
    args = training_arguments("unused", epochs=1, batch_size=16, learning_rate=1e-3, warmup_ratio=0.0, seed=0,
                              show_progress_bar=False, save_strategy="no")
    args.batch_sampler = SemiSupervisedBatchSampler.with_options(unlabelled_fraction=0.5)
    before = [p.detach().clone() for p in tiny_model.parameters()]
    result = SentenceTransformerTrainer(model=tiny_model, args=args, train_dataset=dataset, loss=loss).train()
    assert np.isfinite(result.training_loss) and result.training_loss > 0
    assert result.global_step == 3  # 24 labelled texts, 8 per batch: the unlabelled pool adds no steps
    assert any(not torch.equal(a, b) for a, b in zip(before, tiny_model.parameters()))


def test_a_pool_smaller_than_its_share_is_used_whole_in_every_batch():
    from st_gloss import SemiSupervisedBatchSampler

    dataset = _pool_dataset(n_unlabelled=3)
    labels = dataset["label"]
    batches = list(SemiSupervisedBatchSampler(dataset, batch_size=16, unlabelled_fraction=0.5))
    assert all(sorted(i for i in b if labels[i] == UNLABELLED) == [24, 25, 26] for b in batches)
    assert all(len(b) <= 11 for b in batches)  # 8 labelled + the 3 unlabelled


def _train(model_path, data, output, *extra):
    from click.testing import CliRunner

    from st_gloss.cli import main

    args = ["train", str(model_path), "--data", str(data), "--output", str(output), "--epochs", "1",
            "--batch-size", "8", "--max-seq-length", "16", "--no-progress", *extra]
    return CliRunner().invoke(main, args)


def test_train_with_an_unlabelled_file_end_to_end(tiny_model_path, tiny_data, tmp_path):
    import json

    from tiny_model import simple_corpus, write_split

    texts, labels = simple_corpus(n_per_class=10, seed=7)
    pool = write_split(tmp_path, "pool", texts, labels)  # its labels are ignored
    output = tmp_path / "out"
    result = _train(tiny_model_path, tiny_data, output, "--loss", "gloss", "--unlabelled", str(pool),
                    "--unlabelled-fraction", "0.5")
    assert result.exit_code == 0, result.output
    assert "unlabelled texts: 30 from" in result.output
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["unlabelled"] == {"file": str(pool), "texts": 30, "fraction": 0.5}
    assert metrics["status"] == "finished" and metrics["data"]["sizes"]["train"] == 54
    assert metrics["curve"][0]["train_loss"] > 0
    # With an unlabelled pool the graph is knn of 10 unless told otherwise (the few-shot benchmark)
    assert metrics["loss"]["config"]["graph"] == "knn" and metrics["loss"]["config"]["num_neighbors"] == 10
    assert "on a knn graph of 10 neighbours" in result.output


@pytest.mark.parametrize(("extra", "graph", "neighbours"), [
    ((), "dense", 16),  # no pool: the paper's graph
    (("--graph", "knn"), "knn", 16),  # the loss's default neighbours
    (("--graph", "knn", "--num-neighbors", "4"), "knn", 4),
    (("--unlabelled", "POOL", "--graph", "dense"), "dense", 16),  # told otherwise
    (("--unlabelled", "POOL", "--num-neighbors", "6"), "knn", 6),
])
def test_the_graph_option_and_its_default_with_a_pool(extra, graph, neighbours, tiny_model_path, tiny_data, tmp_path):
    import json

    from tiny_model import simple_corpus, write_split

    pool = write_split(tmp_path, "pool", *simple_corpus(n_per_class=4, seed=7))
    extra = [str(pool) if x == "POOL" else x for x in extra]
    result = _train(tiny_model_path, tiny_data, tmp_path / "out", "--loss", "gloss", *extra)
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "out" / "metrics.json").read_text())["loss"]["config"]
    assert (config["graph"], config["num_neighbors"]) == (graph, neighbours)


def test_the_graph_option_is_refused_by_losses_without_a_graph(tiny_model_path, tiny_data, tmp_path):
    result = _train(tiny_model_path, tiny_data, tmp_path / "out", "--loss", "supcon", "--graph", "knn")
    assert result.exit_code == 2 and "--loss supcon does not use --graph" in result.output
    assert not (tmp_path / "out").exists()


def test_bad_unlabelled_files_and_losses_exit_2(tiny_model_path, tiny_data, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("sentence\na text\n")
    good = tmp_path / "good.csv"
    good.write_text("text\na text\nanother\n")
    cases = [
        (["--loss", "gloss", "--unlabelled", str(tmp_path / "missing.csv")], "does not exist"),
        (["--loss", "gloss", "--unlabelled", str(empty)], "is empty"),
        (["--loss", "gloss", "--unlabelled", str(wrong)], "has no column 'text'"),
        (["--loss", "supcon", "--unlabelled", str(good)], "which --loss supcon cannot use"),
        (["--loss", "gloss", "--unlabelled", str(good), "--unlabelled-fraction", "1"], "--unlabelled-fraction"),
    ]
    for extra, message in cases:
        result = _train(tiny_model_path, tiny_data, tmp_path / "out", *extra)
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output and "Traceback" not in result.output, (extra, result.output)
        assert not (tmp_path / "out").exists()


def test_the_registry_says_which_losses_take_unlabelled_texts(tiny_model):
    from st_gloss.registry import LOSSES, build_loss

    takes = {name for name, spec in LOSSES.items() if spec.accepts_unlabelled}
    assert takes == {"gloss", "gloss+ce", "gloss+memory"}
    for name in LOSSES:  # the flag the CLI reads agrees with the loss the registry builds
        assert getattr(build_loss(name, tiny_model, num_labels=3), "accepts_unlabelled", False) == (name in takes)

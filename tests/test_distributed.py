"""Multi-process G-Loss on CPU with the gloo backend: the gathered graph is the global batch's graph."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from distributed_data import ROWS_PER_RANK, problem
from launch_env import environment, free_port

from st_gloss import GraphGuidedLoss, distributed

HERE = Path(__file__).parent / "distributed"
pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built")


class FakeModel(torch.nn.Module):
    def get_embedding_dimension(self):
        return 6


def single_process_reference(options):
    """The loss and the gradients of one process that sees the whole (concatenated) batch."""
    inputs, labels, weight = problem()
    inputs = inputs.clone().requires_grad_()
    loss = GraphGuidedLoss(FakeModel(), labelled_fraction=0.5, sigma=0.8, seed=100, **options)
    value = loss.compute_loss_from_embeddings(inputs @ weight, labels)
    value.backward()
    return value.detach(), weight.grad, inputs.grad


@pytest.mark.slow  # starts two Python processes that import torch
def test_two_gloo_processes_equal_one_process_on_the_concatenated_batch(tmp_path):
    port = free_port()
    world = len(ROWS_PER_RANK)
    workers = [
        subprocess.Popen([sys.executable, str(HERE / "gather_worker.py"), str(rank), str(world), str(port),
                          str(tmp_path)], env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for rank in range(world)
    ]
    for worker in workers:
        out, _ = worker.communicate(timeout=240)
        assert worker.returncode == 0, out.decode()[-3000:]
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(world)]
    cases = {"standalone": {}, "knn_iterative": {"graph": "knn", "num_neighbors": 6, "propagation": "iterative",
                                                 "num_iterations": 400}}
    for name, options in cases.items():
        loss, weight_grad, input_grad = single_process_reference(options)
        assert loss > 0.01  # a real loss, not a degenerate zero
        starts = [0, ROWS_PER_RANK[0]]
        for rank, result in enumerate(ranks):
            got = result[name]
            # Same value on every process (same graph, same mask as the seed of rank 0)...
            torch.testing.assert_close(got["loss"], loss, atol=1e-6, rtol=0)
            # ...and, after DDP's averaging, the gradient of the single process on the whole batch.
            torch.testing.assert_close(got["weight_grad"], weight_grad, atol=1e-6, rtol=0)
            rows = slice(starts[rank], starts[rank] + ROWS_PER_RANK[rank])
            torch.testing.assert_close(got["input_grad"], input_grad[rows], atol=1e-6, rtol=0)


def test_gathering_is_a_no_op_with_one_process():
    x = torch.randn(4, 3, requires_grad=True)
    assert not distributed.is_distributed()
    assert distributed.gather_with_grad(x) is x
    assert distributed.world_size() == 1 and distributed.rank() == 0
    inputs, labels, weight = problem()
    a = GraphGuidedLoss(FakeModel(), sigma=0.8, seed=1, gather_across_devices=True)
    b = GraphGuidedLoss(FakeModel(), sigma=0.8, seed=1)
    emb = inputs @ weight
    torch.testing.assert_close(a.compute_loss_from_embeddings(emb, labels), b.compute_loss_from_embeddings(emb, labels))


@pytest.mark.slow  # torchrun: two processes that train
def test_trainer_under_torchrun_builds_one_graph_over_both_processes(tiny_model_path, tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(free_port()), str(HERE / "trainer_script.py"), str(tiny_model_path), str(tmp_path)]
    run = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    results = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    for result in results:
        assert result["world_size"] == 2
        assert len(result["graph_sizes"]) == 3  # max_steps
        assert all(size == 2 * 6 for size in result["graph_sizes"])  # two per-device batches of 6
        assert result["losses"] and all(value == value and value > 0 for value in result["losses"])
    # DDP kept the replicas identical.
    assert results[0]["checksum"] == pytest.approx(results[1]["checksum"], rel=1e-9, abs=1e-9)

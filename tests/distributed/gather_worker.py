"""Run by tests/test_distributed.py in each of two gloo processes: the gathered G-Loss and its gradients.

Usage: python gather_worker.py RANK WORLD_SIZE PORT OUTPUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distributed_data import ROWS_PER_RANK, problem  # noqa: E402

from st_gloss import GraphGuidedLoss  # noqa: E402


class FakeModel(torch.nn.Module):
    def get_embedding_dimension(self):
        return 6


def main(rank: int, world_size: int, port: int, output: Path) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    inputs, labels, weight = problem()
    start = sum(ROWS_PER_RANK[:rank])
    rows = slice(start, start + ROWS_PER_RANK[rank])
    local_inputs = inputs[rows].clone().requires_grad_()
    # Different seeds per process on purpose: the loss must adopt rank 0's for its label mask.
    torch.manual_seed(100 + rank)
    results = {}
    cases = {
        "standalone": {},
        "knn_iterative": {"graph": "knn", "num_neighbors": 6, "propagation": "iterative", "num_iterations": 400},
    }
    for name, options in cases.items():
        weight.grad = None
        local_inputs.grad = None
        loss = GraphGuidedLoss(FakeModel(), labelled_fraction=0.5, sigma=0.8, gather_across_devices=True, **options)
        value = loss.compute_loss_from_embeddings(local_inputs @ weight, labels[rows])
        value.backward()
        grad = weight.grad.clone()
        dist.all_reduce(grad)  # what DistributedDataParallel does: average the parameter gradients
        results[name] = {
            "loss": value.detach(),
            "weight_grad": grad / world_size,
            "input_grad": local_inputs.grad.clone() / world_size,
        }
    torch.save(results, output / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))

"""Run under torchrun by tests/test_distributed.py: a few SentenceTransformerTrainer steps of G-Loss on 2 CPU processes.

Usage: torchrun --nproc_per_node 2 trainer_script.py MODEL_DIR OUTPUT_DIR
Each process writes ``rank<N>.json``: the world size, the number of nodes of every graph it
built, the logged losses and a checksum of its weights after training.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tiny_model import simple_corpus  # noqa: E402

from st_gloss import ClassBalancedBatchSampler, GraphGuidedLoss, functional  # noqa: E402

BATCH = 6
STEPS = 3


def main(model_dir: str, output: Path) -> None:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    graph_sizes: list[int] = []
    real_graph_loss = functional.graph_loss

    def recording_graph_loss(embeddings, *args, **kwargs):
        graph_sizes.append(int(embeddings.shape[0]))
        return real_graph_loss(embeddings, *args, **kwargs)

    functional.graph_loss = recording_graph_loss

    model = SentenceTransformer(model_dir, device="cpu")
    texts, labels = simple_corpus(n_per_class=12)
    dataset = Dataset.from_dict({"text": texts, "label": labels})
    loss = GraphGuidedLoss(model, labelled_fraction=0.5, sigma=0.5, gather_across_devices=True)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output / "trainer"),
        max_steps=STEPS,
        per_device_train_batch_size=BATCH,
        learning_rate=1e-3,
        batch_sampler=ClassBalancedBatchSampler,
        use_cpu=True,
        ddp_backend="gloo",
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=0,
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    trainer.train()
    checksum = float(sum(p.detach().double().sum() for p in model.parameters()))
    result = {
        "world_size": torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1,
        "rank": int(os.environ.get("RANK", 0)),
        "graph_sizes": graph_sizes,
        "losses": [entry["loss"] for entry in trainer.state.log_history if "loss" in entry],
        "checksum": checksum,
    }
    (output / f"rank{result['rank']}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))

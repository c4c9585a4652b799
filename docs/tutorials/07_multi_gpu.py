"""Tutorial 7: G-Loss on several GPUs, with one graph over the batches of all of them.

Run from the repository root, one process per GPU:
``torchrun --nproc_per_node 2 docs/tutorials/07_multi_gpu.py``. Without GPUs the same command
starts CPU processes that talk over gloo; ``python docs/tutorials/07_multi_gpu.py`` runs one
process, where the gathering is a no-op.
"""

import csv

import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

from st_gloss.evaluation.evaluators import KNNEvaluator
from st_gloss.evaluation.models import load_model
from st_gloss import ClassBalancedBatchSampler, GraphGuidedLoss, distributed
from st_gloss.evaluation.samples import sample_path

N_TRAIN, N_VAL = 300, 200
BATCH = 32  # per process


def read_split(split: str, n: int) -> tuple[list[str], list[str]]:
    """The first ``n`` rows of a split of the bundled R8 sample (Reuters news, 8 classes)."""
    with open(sample_path("r8") / f"{split}.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:n]
    return [r["text"] for r in rows], [r["label"] for r in rows]


train_texts, train_labels = read_split("train", N_TRAIN)
val_texts, val_labels = read_split("test", N_VAL)
names = sorted(set(train_labels))
train = Dataset.from_dict({"text": train_texts, "label": [names.index(y) for y in train_labels]})
known = [(t, y) for t, y in zip(val_texts, val_labels) if y in names]
evaluator = KNNEvaluator(train_texts, train_labels, [t for t, _ in known], [y for _, y in known],
                         k=5, write_csv=False)

model = load_model(device="cpu", max_seq_length=128)  # the trainer moves it
loss = GraphGuidedLoss(
    model,
    labelled_fraction=0.7,
    sigma="sqrt_median",
    gather_across_devices=True,  # one graph over the batches of all processes
    memory_steps=2,  # plus the last 2 global batches, as labelled nodes
)
loss.calibrate_sigma(train["text"])

args = SentenceTransformerTrainingArguments(
    output_dir="tutorial-output/multi-gpu",
    num_train_epochs=2,
    per_device_train_batch_size=BATCH,
    learning_rate=5e-5,
    warmup_ratio=0.1,
    batch_sampler=ClassBalancedBatchSampler.with_options(balanced=True),
    use_cpu=not torch.cuda.is_available(),
    ddp_backend=None if torch.cuda.is_available() else "gloo",
    save_strategy="no",
    report_to="none",
    disable_tqdm=True,
    seed=0,
)
trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss)
main = trainer.is_world_process_zero()
if main:
    print(f"before: {evaluator(model)}")
trainer.train()
if main:
    processes = distributed.world_size()
    print(f"{processes} processes x {BATCH} texts per batch = one graph of {processes * BATCH} nodes, "
          f"plus {loss.memory.num_nodes} labelled nodes from the memory")
    print(f"after: {evaluator(model)}")
    model.save("tutorial-output/multi-gpu/final")
    print("saved to tutorial-output/multi-gpu/final")

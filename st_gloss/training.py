"""Fine-tune a SentenceTransformer on labelled texts with SentenceTransformerTrainer."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence

import torch
from torch import nn

from st_gloss.compat import warmup_arguments
from st_gloss.losses import GraphGuidedLoss
from st_gloss.samplers import ClassBalancedBatchSampler


def fine_tune(
    model,
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    loss: nn.Module | None = None,
    epochs: int = 2,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    warmup_ratio: float = 0.1,
    seed: int = 0,
    output_dir: str | None = None,
    show_progress_bar: bool = True,
):
    """Train ``model`` in place on (text, label) pairs and return the trainer.

    The loss defaults to :class:`~st_gloss.GraphGuidedLoss` with sigma calibrated on the training
    texts by the paper's rule; batches come from :class:`~st_gloss.ClassBalancedBatchSampler`.
    Nothing is written unless ``output_dir`` is given (checkpoints then go there).

    Examples:
        >>> from evaluation.models import load_model
        >>> model = load_model()  # doctest: +SKIP
        >>> fine_tune(model, ["good", "great", "bad", "awful"], [1, 1, 0, 0], batch_size=4)  # doctest: +SKIP
    """
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    if len(texts) != len(labels):
        raise ValueError(f"fine_tune got {len(texts)} texts but {len(labels)} labels")
    if loss is None:
        loss = GraphGuidedLoss(model, sigma="sqrt_median", seed=seed)
        loss.calibrate_sigma(texts, seed=seed, show_progress_bar=False)
    dataset = Dataset.from_dict({"text": list(texts), "label": [int(y) for y in labels]})
    with tempfile.TemporaryDirectory(prefix="st-gloss-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=output_dir or scratch,
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            learning_rate=learning_rate,
            **warmup_arguments(warmup_ratio),
            batch_sampler=ClassBalancedBatchSampler,
            seed=seed,
            data_seed=seed,
            save_strategy="no" if output_dir is None else "epoch",
            logging_strategy="epoch",
            report_to=[],
            dataloader_pin_memory=torch.cuda.is_available(),
            disable_tqdm=not show_progress_bar,
        )
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
        trainer.train()
    return trainer

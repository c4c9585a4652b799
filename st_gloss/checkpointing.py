"""Trainer glue for ``st-gloss train``: the per-epoch curve and the best epoch on disk.

Early stopping is transformers' own ``EarlyStoppingCallback``; the linear-probe evaluator that
can pick the epoch lives with the other evaluators ([`st_gloss.evaluation.evaluators`][st_gloss.evaluation.evaluators]).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

_NOT_LOSS_PARTS = {"loss", "learning_rate", "grad_norm", "epoch", "step"}
_NOT_VAL_METRICS = ("runtime", "samples_per_second", "steps_per_second", "sequential_score", "epoch")


# Why not the trainer's own best-checkpoint machinery (load_best_model_at_end=True,
# metric_for_best_model=...)? It requires save_strategy == eval_strategy, so every epoch writes a
# full checkpoint (weights plus optimizer, scheduler and RNG state: about three times the model)
# into the trainer's output_dir, and the best model is only copied back into the model when
# train() returns. Ctrl-C, a crash or an OOM kill in epoch 5 of 200 would then leave the output
# folder without a model, and we would still need a callback for the per-epoch curve. So the
# model is saved here, straight into the output folder, whenever the validation metric improves
# (the folder always holds the best epoch so far, with its model card); early stopping is
# transformers' EarlyStoppingCallback, which reads the trainer's metric_for_best_model and
# best_metric (kept by the trainer whatever the save strategy). Its patience counts evaluations
# without a strict improvement, which with one evaluation per epoch is our --patience.


def early_stopping(patience: int):
    """transformers' ``EarlyStoppingCallback``: stop after ``patience`` evaluations without a strict improvement.

    Needs ``metric_for_best_model`` and ``eval_strategy`` in the training arguments.

    Examples:
        >>> early_stopping(2).early_stopping_patience
        2
    """
    from transformers import EarlyStoppingCallback

    return EarlyStoppingCallback(early_stopping_patience=patience)


class BestEpochCallback(TrainerCallback):
    """Record the curve of a run and save the model at every new best epoch.

    After every evaluation (one per epoch) the callback appends an entry to `curve`:
    ``{"epoch", "train_loss", "loss_parts", "val", "train_seconds", "eval_seconds"}``. When the
    validation ``metric`` beats the best so far (strictly), the model is saved to ``output`` (with
    its model card), so that folder always holds the best epoch: Ctrl-C or a crash leaves a usable
    model. Stopping is left to ``stopper`` (`early_stopping`, listed before this callback
    in the trainer's callbacks); the callback only reports it.

    Args:
        model: the SentenceTransformer being trained.
        output: the folder of the best model.
        metric: validation metric name without the ``eval_`` prefix (``knn_accuracy``); higher is better.
        stopper: the ``EarlyStoppingCallback`` of the run (``None``: no early stopping).
        echo: receives one line per epoch.
        on_epoch: called as ``on_epoch(curve, summary)`` after each epoch (``metrics.json`` updates).
        on_best: called with no arguments right after a new best epoch is saved (``st-gloss
            train`` copies the loss's linear head there, to keep the head of the best epoch).

    Examples:
        >>> stopper = early_stopping(2)
        >>> callback = BestEpochCallback(model, Path("out"), "knn_accuracy", stopper)  # doctest: +SKIP
        >>> SentenceTransformerTrainer(..., callbacks=[stopper, callback])  # doctest: +SKIP
    """

    def __init__(
        self,
        model,
        output: Path,
        metric: str,
        stopper=None,
        echo: Callable[[str], None] = print,
        on_epoch: Callable[[list[dict[str, Any]], dict[str, Any]], None] | None = None,
        on_best: Callable[[], None] | None = None,
    ) -> None:
        self.model = model
        self.output = Path(output)
        self.metric = metric
        self.stopper = stopper
        self.echo = echo
        self.on_epoch = on_epoch
        self.on_best = on_best
        self.curve: list[dict[str, Any]] = []
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self.stopped_early = False
        self._epoch_start = time.perf_counter()
        self._epoch_end: float | None = None
        self._last_log: dict[str, float] = {}

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._epoch_start = time.perf_counter()
        self._epoch_end = None

    def on_epoch_end(self, args, state, control, **kwargs):
        self._epoch_end = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self._last_log = dict(logs)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        now = time.perf_counter()
        end = self._epoch_end if self._epoch_end is not None else now
        epoch = int(round(state.epoch or 0))
        val = {
            key[len("eval_") :]: float(value)
            for key, value in (metrics or {}).items()
            if key.startswith("eval_") and isinstance(value, (int, float)) and not key.endswith(_NOT_VAL_METRICS)
        }
        if self.metric not in val:
            raise KeyError(f"validation metric {self.metric!r} missing from the evaluation; got {sorted(val)}")
        log = self._last_log
        entry = {
            "epoch": epoch,
            "train_loss": log.get("loss"),
            "loss_parts": {k: float(v) for k, v in log.items() if k not in _NOT_LOSS_PARTS},
            "val": val,
            "train_seconds": end - self._epoch_start,
            "eval_seconds": now - end,
        }
        self.curve.append(entry)
        self._last_log = {}
        value = val[self.metric]
        improved = self.best_value is None or value > self.best_value
        if improved:
            self.best_value, self.best_epoch = value, epoch
            self.model.save(str(self.output), safe_serialization=True)
            if self.on_best is not None:
                self.on_best()
        stopper = self.stopper
        if stopper is not None and stopper.early_stopping_patience_counter >= stopper.early_stopping_patience:
            self.stopped_early = True
        loss_text = "" if entry["train_loss"] is None else f"train loss {entry['train_loss']:.4f}, "
        self.echo(
            f"epoch {epoch}: {loss_text}val {self.metric} {value:.4f}"
            f"{' (best, saved)' if improved else ''}; {entry['train_seconds']:.1f}s training, "
            f"{entry['eval_seconds']:.1f}s validation"
            + (f"; no improvement for {stopper.early_stopping_patience} epochs, stopping" if self.stopped_early else "")
        )
        if self.on_epoch is not None:
            self.on_epoch(self.curve, self.summary())
        return control

    def summary(self) -> dict[str, Any]:
        """Best epoch, its validation score, epochs run, whether it stopped early."""
        return {
            "best_epoch": self.best_epoch,
            "best_val": self.best_value,
            "epochs_run": len(self.curve),
            "stopped_early": self.stopped_early,
        }

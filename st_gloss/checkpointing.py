"""Trainer glue for ``st-gloss train``: the per-epoch curve, the best epoch on disk, early stopping.

Also a linear-probe evaluator, so that the probe can pick the best epoch like the kNN and
silhouette evaluators of the evaluation package.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from st_gloss.compat import BaseEvaluator

logger = logging.getLogger(__name__)

_NOT_LOSS_PARTS = {"loss", "learning_rate", "grad_norm", "epoch", "step"}
_NOT_VAL_METRICS = ("runtime", "samples_per_second", "steps_per_second", "sequential_score", "epoch")


class BestEpochCallback(TrainerCallback):
    """Record the curve of a run, save the model at every new best epoch, stop after ``patience``.

    After every evaluation (one per epoch) the callback appends an entry to :attr:`curve`:
    ``{"epoch", "train_loss", "loss_parts", "val", "train_seconds", "eval_seconds"}``. When the
    validation ``metric`` beats the best so far (strictly), the model is saved to ``output`` (with
    its model card), so that folder always holds the best epoch: Ctrl-C or a crash leaves a usable
    model. After ``patience`` evaluations without improvement it asks the trainer to stop.

    Args:
        model: the SentenceTransformer being trained.
        output: the folder of the best model.
        metric: validation metric name without the ``eval_`` prefix (``knn_accuracy``); higher is better.
        patience: evaluations without improvement before stopping.
        echo: receives one line per epoch.
        on_epoch: called as ``on_epoch(curve, summary)`` after each epoch (``metrics.json`` updates).

    Examples:
        >>> callback = BestEpochCallback(model, Path("out"), "knn_accuracy", patience=2)  # doctest: +SKIP
        >>> SentenceTransformerTrainer(..., callbacks=[callback])  # doctest: +SKIP
    """

    def __init__(
        self,
        model,
        output: Path,
        metric: str,
        patience: int,
        echo: Callable[[str], None] = print,
        on_epoch: Callable[[list[dict[str, Any]], dict[str, Any]], None] | None = None,
    ) -> None:
        self.model = model
        self.output = Path(output)
        self.metric = metric
        self.patience = patience
        self.echo = echo
        self.on_epoch = on_epoch
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
        elif epoch - (self.best_epoch or 0) >= self.patience:
            self.stopped_early = True
            control.should_training_stop = True
        loss_text = "" if entry["train_loss"] is None else f"train loss {entry['train_loss']:.4f}, "
        self.echo(
            f"epoch {epoch}: {loss_text}val {self.metric} {value:.4f}"
            f"{' (best, saved)' if improved else ''}; {entry['train_seconds']:.1f}s training, "
            f"{entry['eval_seconds']:.1f}s validation"
            + (f"; no improvement for {self.patience} epochs, stopping" if self.stopped_early else "")
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


class LinearProbeEvaluator(BaseEvaluator):
    """Validation accuracy of a logistic regression fit on the frozen train embeddings.

    Metrics ``{name}_accuracy`` (primary) and ``{name}_macro_f1``, from
    :func:`st_gloss.evaluation.probe.linear_probe`.

    Args:
        train: the training :class:`~st_gloss.evaluation.data.Split` (fit set).
        val: the validation split (scored).
        seed: random state of the solver.
        name: prefix of the metric names.
        batch_size: encoding batch size.
        write_csv: unused (kept for the evaluators' common signature).

    Examples:
        >>> evaluator = LinearProbeEvaluator(data["train"], data["val"])  # doctest: +SKIP
        >>> evaluator(model)  # doctest: +SKIP
        {'probe_accuracy': 0.86, 'probe_macro_f1': 0.85}
    """

    def __init__(
        self, train, val, *, seed: int = 0, name: str = "probe", batch_size: int = 64, write_csv: bool = False
    ):
        super().__init__()
        self.train, self.val = train, val
        self.seed = seed
        self.name = name
        self.batch_size = batch_size
        self.primary_metric = "accuracy"
        self.greater_is_better = True

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        from st_gloss.evaluation.encode import encode_texts
        from st_gloss.evaluation.probe import linear_probe

        train = encode_texts(model, self.train.texts, batch_size=self.batch_size, show_progress_bar=False)
        val = encode_texts(model, self.val.texts, batch_size=self.batch_size, show_progress_bar=False)
        result = linear_probe(train, self.train.labels, val, self.val.labels, seed=self.seed)
        metrics = self.prefix_name_to_metrics({"accuracy": result.accuracy, "macro_f1": result.macro_f1}, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def get_config_dict(self) -> dict[str, Any]:
        """Configuration shown in the model card."""
        return {"classifier": "logistic regression (L2, lbfgs)"}

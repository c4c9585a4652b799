"""kNN accuracy, silhouette and the linear probe as sentence-transformers evaluators.

Both follow the ``SentenceEvaluator``/``BaseEvaluator`` interface: ``evaluator(model)`` embeds
the texts with the current model and returns a dict of metrics prefixed by ``name``, with
``primary_metric`` and ``greater_is_better`` set, so ``model.fit(evaluator=...)`` and
``SentenceTransformerTrainer(evaluator=...)`` can log them and keep the best checkpoint
(``metric_for_best_model="eval_knn_accuracy"`` with the default names).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from st_gloss.compat import BaseEvaluator
from st_gloss.errors import InputError
from st_gloss.evaluation.data import LabelledData
from st_gloss.evaluation.knn import Weighting, knn_classify
from st_gloss.evaluation.silhouette import Metric, silhouette

logger = logging.getLogger(__name__)


def _label_ids(labels: Sequence, names: list | None = None) -> tuple[np.ndarray, list]:
    """Integer ids for ``labels`` (ints or strings), using ``names`` when given."""
    values = [x.item() if hasattr(x, "item") else x for x in labels]
    if names is None:
        if all(isinstance(v, int | np.integer) for v in values):
            names = list(range(max(values) + 1)) if values else []
            return np.asarray(values, dtype=np.int64), names
        names = sorted(set(values), key=str)
    ids = {name: i for i, name in enumerate(names)}
    unknown = sorted({str(v) for v in values if v not in ids})
    if unknown:
        raise InputError(f"query labels {', '.join(unknown[:5])} do not occur in the index labels; "
                         "every evaluated class needs examples in the index")
    return np.array([ids[v] for v in values], dtype=np.int64), names


class _TextEvaluator(BaseEvaluator):
    csv_headers: list[str]

    def __init__(self, name: str, batch_size: int, show_progress_bar: bool, write_csv: bool):
        super().__init__()
        self.name = name
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.write_csv = write_csv
        self.csv_file = f"{name or type(self).__name__}_results.csv"

    def _embed(self, model, texts: list[str]) -> np.ndarray:
        return model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                            show_progress_bar=self.show_progress_bar, normalize_embeddings=True)

    def _finish(self, model, metrics: dict[str, float], output_path, epoch, steps) -> dict:
        if output_path is not None and self.write_csv:
            os.makedirs(output_path, exist_ok=True)
            path = os.path.join(output_path, self.csv_file)
            new = not os.path.isfile(path)
            with open(path, "a", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                if new:
                    writer.writerow(["epoch", "steps", *metrics])
                writer.writerow([epoch, steps, *metrics.values()])
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics


class KNNEvaluator(_TextEvaluator):
    """kNN classification accuracy of query texts against an index of labelled texts.

    At each call both sets are embedded with the current model; each query gets the majority
    (or similarity-weighted) label of its ``k`` most cosine-similar index texts. Without query
    texts the index is scored leave-one-out. Metrics: ``{name}_accuracy`` (primary) and
    ``{name}_macro_f1``.

    Args:
        index_texts: labelled texts to search in (the train split).
        index_labels: their labels (ints or strings).
        query_texts: texts to classify (the validation split); ``None`` for leave-one-out.
        query_labels: their labels; every one must occur in ``index_labels``.
        k: neighbours per query.
        weighting: ``"majority"`` or ``"similarity"``.
        name: prefix of the metric names.
        batch_size: encoding batch size.
        show_progress_bar: show encoding progress.
        write_csv: append the metrics to ``{name}_results.csv`` in ``output_path``.

    Examples:
        >>> evaluator = KNNEvaluator(train_texts, train_labels, val_texts, val_labels, k=10)  # doctest: +SKIP
        >>> evaluator(model)  # doctest: +SKIP
        {'knn_accuracy': 0.91, 'knn_macro_f1': 0.88}
        >>> args = SentenceTransformerTrainingArguments(  # doctest: +SKIP
        ...     "out", eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
        ...     metric_for_best_model="eval_knn_accuracy")
    """

    def __init__(
        self,
        index_texts: Sequence[str],
        index_labels: Sequence,
        query_texts: Sequence[str] | None = None,
        query_labels: Sequence | None = None,
        *,
        k: int = 10,
        weighting: Weighting = "majority",
        name: str = "knn",
        batch_size: int = 32,
        show_progress_bar: bool = False,
        write_csv: bool = True,
    ):
        super().__init__(name, batch_size, show_progress_bar, write_csv)
        if len(index_texts) != len(index_labels):
            raise InputError(f"{len(index_texts)} index texts but {len(index_labels)} labels")
        if (query_texts is None) != (query_labels is None):
            raise InputError("give both query_texts and query_labels, or neither (leave-one-out)")
        if query_texts is not None and len(query_texts) != len(query_labels):
            raise InputError(f"{len(query_texts)} query texts but {len(query_labels)} labels")
        self.index_texts = list(index_texts)
        self.index_labels, names = _label_ids(index_labels)
        self.query_texts = None if query_texts is None else list(query_texts)
        self.query_labels = None
        if query_labels is not None:
            self.query_labels, _ = _label_ids(query_labels, names)
        self.num_classes = len(names)
        self.k = k
        self.weighting = weighting
        self.primary_metric = "accuracy"
        self.greater_is_better = True

    @classmethod
    def from_data(cls, data: LabelledData, index_split: str = "train", query_split: str = "val",
                  **kwargs) -> KNNEvaluator:
        """Build from [`LabelledData`][st_gloss.evaluation.data.LabelledData] (train as index, val as queries).

        Args:
            data: the labelled data.
            index_split: split to search in.
            query_split: split to classify.
            **kwargs: passed to the constructor (``k``, ``name``...).

        Examples:
            >>> evaluator = KNNEvaluator.from_data(load_labelled_data("r8", data_root=root))  # doctest: +SKIP
        """
        index, query = data.split(index_split), data.split(query_split)
        return cls(index.texts, index.labels.tolist(), query.texts, query.labels.tolist(), **kwargs)

    def __call__(self, model, output_path: str | None = None, epoch: int = -1,
                 steps: int = -1) -> dict[str, float]:
        index = self._embed(model, self.index_texts)
        leave_one_out = self.query_texts is None
        queries = index if leave_one_out else self._embed(model, self.query_texts)
        labels = self.index_labels if leave_one_out else self.query_labels
        result = knn_classify(index, self.index_labels, queries, labels, k=self.k,
                              weighting=self.weighting, leave_one_out=leave_one_out,
                              num_classes=self.num_classes)
        metrics = {"accuracy": result.accuracy, "macro_f1": result.macro_f1}
        logger.info("KNNEvaluator %s (epoch %s, steps %s): accuracy %.4f, macro-F1 %.4f",
                    self.name, epoch, steps, result.accuracy, result.macro_f1)
        return self._finish(model, metrics, output_path, epoch, steps)

    def get_config_dict(self) -> dict:
        """Configuration shown in the model card.

        Examples:
            >>> KNNEvaluator(["a", "b"], [0, 1]).get_config_dict()
            {'k': 10, 'weighting': 'majority'}
        """
        return {"k": self.k, "weighting": self.weighting}


class SilhouetteEvaluator(_TextEvaluator):
    """Macro and micro silhouette of the embeddings of labelled texts.

    Metrics: ``{name}_macro`` (primary: mean over classes of the per-class mean silhouette,
    as the G-Loss paper reports) and ``{name}_micro`` (mean over texts).

    Args:
        texts: labelled texts (e.g. the validation split).
        labels: their labels (ints or strings), at least two classes.
        metric: ``"cosine"`` or ``"euclidean"``.
        max_samples: above this many texts, a stratified sampled estimate (see
            [`silhouette`][st_gloss.evaluation.silhouette.silhouette]).
        seed: seed of the sample.
        name: prefix of the metric names.
        batch_size: encoding batch size.
        show_progress_bar: show encoding progress.
        write_csv: append the metrics to ``{name}_results.csv`` in ``output_path``.

    Examples:
        >>> evaluator = SilhouetteEvaluator(val_texts, val_labels)  # doctest: +SKIP
        >>> evaluator(model)  # doctest: +SKIP
        {'silhouette_macro': 0.12, 'silhouette_micro': 0.11}
    """

    def __init__(
        self,
        texts: Sequence[str],
        labels: Sequence,
        *,
        metric: Metric = "cosine",
        max_samples: int | None = 5000,
        seed: int = 0,
        name: str = "silhouette",
        batch_size: int = 32,
        show_progress_bar: bool = False,
        write_csv: bool = True,
    ):
        super().__init__(name, batch_size, show_progress_bar, write_csv)
        if len(texts) != len(labels):
            raise InputError(f"{len(texts)} texts but {len(labels)} labels")
        self.texts = list(texts)
        self.labels, _ = _label_ids(labels)
        if len(np.unique(self.labels)) < 2:
            raise InputError("the silhouette needs texts of at least two classes")
        self.metric = metric
        self.max_samples = max_samples
        self.seed = seed
        self.primary_metric = "macro"
        self.greater_is_better = True

    @classmethod
    def from_data(cls, data: LabelledData, split: str = "val", **kwargs) -> SilhouetteEvaluator:
        """Build from one split of [`LabelledData`][st_gloss.evaluation.data.LabelledData].

        Args:
            data: the labelled data.
            split: the split to measure.
            **kwargs: passed to the constructor.

        Examples:
            >>> evaluator = SilhouetteEvaluator.from_data(data, "val")  # doctest: +SKIP
        """
        part = data.split(split)
        return cls(part.texts, part.labels.tolist(), **kwargs)

    def __call__(self, model, output_path: str | None = None, epoch: int = -1,
                 steps: int = -1) -> dict[str, float]:
        embeddings = self._embed(model, self.texts)
        result = silhouette(embeddings, self.labels, metric=self.metric,
                            max_samples=self.max_samples, seed=self.seed)
        metrics = {"macro": result.macro, "micro": result.micro}
        logger.info("SilhouetteEvaluator %s (epoch %s, steps %s): macro %.4f, micro %.4f",
                    self.name, epoch, steps, result.macro, result.micro)
        return self._finish(model, metrics, output_path, epoch, steps)

    def get_config_dict(self) -> dict:
        """Configuration shown in the model card.

        Examples:
            >>> SilhouetteEvaluator(["a", "b", "c"], [0, 1, 1]).get_config_dict()
            {'metric': 'cosine', 'max_samples': 5000}
        """
        return {"metric": self.metric, "max_samples": self.max_samples}


class LinearProbeEvaluator(BaseEvaluator):
    """Validation accuracy of a logistic regression fit on the frozen train embeddings.

    Metrics ``{name}_accuracy`` (primary) and ``{name}_macro_f1``, from
    [`st_gloss.evaluation.probe.linear_probe`][st_gloss.evaluation.probe.linear_probe].

    Args:
        train: the training [`Split`][st_gloss.evaluation.data.Split] (fit set).
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


class LinearHeadEvaluator(BaseEvaluator):
    """Validation macro-F1 and accuracy of a loss's jointly trained linear head.

    The G-Loss paper's integrated mode (L = lambda * L_G + (1 - lambda) * L_CE) picks its epoch
    by this: the head that trains with the encoder, applied to the embeddings as the model
    outputs them (the input it sees in training, not re-normalised). Only the validation texts
    are encoded. Metrics ``{name}_macro_f1`` (primary) and ``{name}_accuracy``.

    Args:
        head: the loss's ``nn.Linear`` (e.g. ``GraphGuidedLoss(..., graph_weight=0.8).classifier``);
            it is read at every call, so it follows training.
        texts: labelled texts (the validation split).
        labels: their class ids, the ids the head was trained on.
        name: prefix of the metric names.
        batch_size: encoding batch size.
        write_csv: unused (kept for the evaluators' common signature).

    Examples:
        >>> from torch import nn
        >>> evaluator = LinearHeadEvaluator(nn.Linear(384, 2), ["good", "bad"], [1, 0])
        >>> evaluator.primary_metric
        'macro_f1'
        >>> evaluator(model)  # doctest: +SKIP
        {'head_macro_f1': 0.84, 'head_accuracy': 0.84}
    """

    def __init__(self, head, texts: Sequence[str], labels: Sequence[int], *, name: str = "head",
                 batch_size: int = 32, write_csv: bool = False):
        super().__init__()
        if len(texts) != len(labels):
            raise InputError(f"{len(texts)} texts but {len(labels)} labels")
        self.head = head
        self.texts = list(texts)
        self.labels = np.asarray([int(x) for x in labels], dtype=np.int64)
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= head.out_features):
            raise InputError(f"labels must be class ids in 0..{head.out_features - 1}, the head's outputs")
        self.name = name
        self.batch_size = batch_size
        self.primary_metric = "macro_f1"
        self.greater_is_better = True

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        import torch

        from st_gloss.evaluation.knn import class_scores

        embeddings = model.encode(self.texts, batch_size=self.batch_size, convert_to_tensor=True,
                                  normalize_embeddings=False, show_progress_bar=False)
        weight = self.head.weight
        with torch.no_grad():
            predictions = self.head(embeddings.to(weight.device, weight.dtype)).argmax(dim=-1).cpu().numpy()
        accuracy, macro_f1, _ = class_scores(self.labels, predictions, self.head.out_features)
        metrics = self.prefix_name_to_metrics({"macro_f1": macro_f1, "accuracy": accuracy}, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def get_config_dict(self) -> dict[str, Any]:
        """Configuration shown in the model card."""
        return {"head": f"the loss's linear head ({self.head.in_features} -> {self.head.out_features})"}

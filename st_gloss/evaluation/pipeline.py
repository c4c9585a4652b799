"""One evaluation pipeline: encode each split once, then every requested metric.

`evaluate` is what ``st-gloss eval``, the test step of ``st-gloss train``, ``st-gloss
demo`` and the benchmarks call, so a figure means the same thing wherever it is printed. It
returns an `EvaluationReport`: the per-metric results, a flat `as_dict`
view with the key names of ``metrics.json`` and the benchmark result files (``knn_accuracy``,
``probe_macro_f1``, ``silhouette_macro``...), and the wall time of every step.

`load_data` is [`load_labelled_data`][st_gloss.evaluation.data.load_labelled_data] that also accepts the
bundled samples as ``sample:mr`` and ``sample:r8``: the one spelling every command takes.
"""

from __future__ import annotations

import hashlib
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from st_gloss.errors import InputError
from st_gloss.evaluation.data import LabelledData, load_labelled_data

METRICS = ("knn", "silhouette", "probe", "mteb")
"""The metrics `evaluate` computes."""

DEFAULT_METRICS = ("knn", "silhouette", "probe")

SAMPLE_PREFIX = "sample:"
"""``sample:mr`` names the bundled MR sample; ``sample:r8`` the R8 one."""

_FLAT_KEYS = (  # metric -> (flat key, attribute): the names of metrics.json and the result files
    ("knn", "knn_accuracy", "accuracy"),
    ("knn", "knn_macro_f1", "macro_f1"),
    ("probe", "probe_accuracy", "accuracy"),
    ("probe", "probe_macro_f1", "macro_f1"),
    ("silhouette", "silhouette_macro", "macro"),
    ("silhouette", "silhouette_micro", "micro"),
)


def resolve_data_source(source: str | Path) -> str | Path:
    """The folder of a bundled sample for ``sample:NAME``; any other source unchanged.

    Examples:
        >>> resolve_data_source("sample:mr").name
        'mr_sample'
        >>> resolve_data_source("r8")
        'r8'
        >>> resolve_data_source("sample:imdb")
        Traceback (most recent call last):
        ...
        st_gloss.errors.InputError: unknown bundled sample 'imdb'; choose one of ['mr', 'r8'] (e.g. sample:mr)
    """
    from st_gloss.evaluation.samples import SAMPLES, sample_path

    text = str(source)
    if not text.startswith(SAMPLE_PREFIX):
        return source
    name = text[len(SAMPLE_PREFIX):]
    if name not in SAMPLES:
        raise InputError(f"unknown bundled sample {name!r}; choose one of {sorted(SAMPLES)} (e.g. sample:mr)")
    return sample_path(name)


def load_data(source: str | Path, **options: Any) -> LabelledData:
    """Load labelled data as [`load_labelled_data`][st_gloss.evaluation.data.load_labelled_data] does, plus
    ``sample:NAME``.

    Args:
        source: ``sample:mr``/``sample:r8``, a folder, a CSV/JSONL file, a benchmark name under
            ``data_root`` or a hub dataset.
        **options: passed on (``data_root``, ``text_column``, ``label_column``, ``on_empty``).

    Examples:
        >>> data = load_data("sample:r8")
        >>> data.name, len(data["train"]), data.num_classes
        ('r8_sample', 240, 8)
    """
    return load_labelled_data(resolve_data_source(source), **options)


def embeddings_file(folder: str | Path, model_name: str, data_name: str, split: str) -> Path:
    """Where `evaluate` streams the embeddings of one split: one folder per model.

    Examples:
        >>> embeddings_file("cache", "default", "r8", "test").parent.name
        'default-7505d64a'
    """
    return Path(folder) / _slug(model_name) / f"{_slug(data_name)}-{split}.npy"


def _slug(name: str) -> str:
    """A file-name-safe, collision-free folder name for a model or dataset name."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[-60:] or "model"
    return f"{readable}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"


@dataclass
class EvaluationReport:
    """What `evaluate` measured for one model on one split.

    Attributes:
        data: the dataset's name.
        split: the evaluated split.
        index_split: the split used as the kNN index and the probe's training set.
        leave_one_out: the evaluated split is the index split (leave-one-out kNN,
            cross-validated probe).
        n_texts: texts of the evaluated split.
        num_classes: classes of the data.
        embedding_dim: size of the embeddings.
        knn: the kNN result of the first weighting (``None`` when not requested).
        knn_by_weighting: every weighting asked for -> its kNN result.
        silhouette: the silhouette result.
        probe: the linear-probe result.
        mteb: MTEB task name -> its scores.
        seconds: wall time of each step: ``encode`` (and ``encode_<split>`` per split), ``knn``
            (``knn_similarity`` for a second weighting), ``silhouette``, ``probe``, ``mteb``.
        warnings: the warnings of the metrics (a low recall of an approximate kNN index).
        embeddings: the embeddings of the evaluated split (for plots; not in `as_dict`).
        index_embeddings: the embeddings of the index split when it was encoded (for heads fit
            on it afterwards; not in `as_dict`).

    Examples:
        >>> report = evaluate(model, data, ["knn"])  # doctest: +SKIP
        >>> report.as_dict()  # doctest: +SKIP
        {'knn_accuracy': 0.91, 'knn_macro_f1': 0.88}
    """

    data: str
    split: str
    index_split: str
    leave_one_out: bool
    n_texts: int
    num_classes: int
    embedding_dim: int
    knn: Any = None
    knn_by_weighting: dict[str, Any] = field(default_factory=dict)
    silhouette: Any = None
    probe: Any = None
    mteb: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    embeddings: np.ndarray | None = field(default=None, repr=False)
    index_embeddings: np.ndarray | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, float]:
        """The headline figures, flat: ``knn_accuracy``, ``knn_macro_f1``, ``probe_accuracy``,
        ``probe_macro_f1``, ``silhouette_macro``, ``silhouette_micro`` (those measured).

        These are the keys of the ``test`` entry of ``metrics.json`` and of the benchmark
        result files.

        Examples:
            >>> from st_gloss.evaluation.probe import ProbeResult
            >>> report = EvaluationReport("toy", "test", "train", False, 2, 2, 4,
            ...                           probe=ProbeResult(0.5, 0.4, np.zeros(2, dtype=int)))
            >>> report.as_dict()
            {'probe_accuracy': 0.5, 'probe_macro_f1': 0.4}
        """
        flat = {}
        for metric, key, attribute in _FLAT_KEYS:
            result = getattr(self, metric)
            if result is not None:
                flat[key] = getattr(result, attribute)
        return flat

    def results(self) -> dict[str, Any]:
        """Every result as JSON-safe nested dicts, as the ``results`` of an ``st-gloss eval`` report.

        Examples:
            >>> EvaluationReport("toy", "test", "train", False, 2, 2, 4).results()
            {}
        """
        results: dict[str, Any] = {}
        if self.knn is not None:
            results["knn"] = {**self.knn.to_dict(), "index_split": self.index_split,
                              "leave_one_out": self.leave_one_out}
            for weighting, result in self.knn_by_weighting.items():
                if result is not self.knn:
                    results[f"knn_{weighting}"] = result.to_dict()
        if self.silhouette is not None:
            results["silhouette"] = self.silhouette.to_dict()
        if self.probe is not None:
            results["probe"] = self.probe.to_dict()
        if self.mteb is not None:
            results["mteb"] = self.mteb
        return results


def _parse_metrics(metrics: Sequence[str] | str) -> list[str]:
    chosen = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    chosen = [m.strip().lower() for m in chosen if m.strip()]
    unknown = [m for m in chosen if m not in METRICS]
    if unknown or not chosen:
        raise InputError(f"unknown metric(s) {', '.join(unknown) or '(none)'}; choose from {','.join(METRICS)}")
    return list(dict.fromkeys(chosen))


def evaluate(
    model,
    data: LabelledData,
    metrics: Sequence[str] | str = DEFAULT_METRICS,
    *,
    split: str | None = None,
    k: int = 10,
    weighting: str | Sequence[str] = "majority",
    index="auto",
    silhouette_metric: str = "cosine",
    silhouette_max_samples: int | None = 5000,
    mteb_tasks: Sequence[str] = (),
    mteb_samples_per_label: int = 8,
    batch_size: int = 32,
    embeddings_dir: str | Path | None = None,
    chunk_size: int | None = None,
    overwrite: bool = False,
    model_name: str | None = None,
    seed: int = 0,
    progress: bool = False,
    on_warning: Callable[[str], None] | None = None,
) -> EvaluationReport:
    """Encode the evaluated split (and the index split) once and compute every requested metric.

    kNN searches the index split (``train`` when there is one; leave-one-out when the evaluated
    split is the index split itself); the linear probe is fit on the index split (5-fold
    cross-validation on the evaluated split when they are the same); the silhouette is measured
    on the evaluated split; MTEB runs a classification task built from the two splits plus the
    built-in ``mteb_tasks``.

    Args:
        model: a ``SentenceTransformer``, or a model folder/name for
            [`load_model`][st_gloss.evaluation.models.load_model].
        data: the labelled data (`load_data`).
        metrics: a subset of `METRICS` (a list, or a comma-separated string).
        split: the split to evaluate (default ``test``, or the index split when there is no test).
        k: kNN neighbours.
        weighting: ``"majority"`` or ``"similarity"``, or several (each gets a kNN result; the
            first is `EvaluationReport.knn`).
        index: ``"auto"``, ``"flat"``, ``"ivf"``, ``"hnsw"`` or an
            [`IndexOptions`][st_gloss.evaluation.index.IndexOptions].
        silhouette_metric: ``"cosine"`` or ``"euclidean"``.
        silhouette_max_samples: above this many texts, a stratified sampled estimate.
        mteb_tasks: built-in MTEB classification tasks to run as well (need the hub).
        mteb_samples_per_label: few-shot training examples per class in MTEB's probe.
        batch_size: texts per forward pass.
        embeddings_dir: stream the embeddings to ``.npy`` files here (bounded memory, resumable).
        chunk_size: texts per chunk with ``embeddings_dir``.
        overwrite: re-encode files in ``embeddings_dir`` that were written for other texts.
        model_name: the name of the model in ``embeddings_dir`` (default: ``model`` when it is a
            name).
        seed: seed of the silhouette sample, the probe, MTEB and approximate indexes.
        progress: show progress bars.
        on_warning: receives the warnings of the metrics (a low kNN recall); ``None`` issues them
            as `UserWarning`.

    Returns:
        An `EvaluationReport`.

    Raises:
        InputError: an unknown metric or split, too few texts for ``k``, MTEB without an index split.

    Examples:
        >>> data = load_data("sample:r8")
        >>> report = evaluate("default", data, ["knn", "probe"], k=10)  # doctest: +SKIP
        >>> report.as_dict()  # doctest: +SKIP
        {'knn_accuracy': 0.87, 'knn_macro_f1': 0.71, 'probe_accuracy': 0.9, 'probe_macro_f1': 0.8}
    """
    from st_gloss.evaluation.encode import DEFAULT_CHUNK_SIZE, encode_texts, encode_to_file

    chosen = _parse_metrics(metrics)
    if mteb_tasks and "mteb" not in chosen:
        chosen.append("mteb")
    weightings = [weighting] if isinstance(weighting, str) else list(dict.fromkeys(weighting))
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    if isinstance(model, (str, Path)) or model is None:
        from st_gloss.evaluation.models import load_model

        model_name = model_name or str(model or "default")
        model = load_model(model)
    index_name = data.index_split()
    if split is None:
        split = "test" if "test" in data else index_name
    evaluated = data.split(split)
    same_set = index_name == split
    if "mteb" in chosen and same_set and not mteb_tasks:
        raise InputError("MTEB classification needs a train split besides the evaluated one; "
                         "give a folder with train.csv and test.csv, or name an MTEB task")
    needs_index = not same_set and bool({"knn", "probe"} & set(chosen))

    def encode(name: str) -> np.ndarray:
        texts = data[name].texts
        if embeddings_dir is None:
            return encode_texts(model, texts, batch_size=batch_size, show_progress_bar=progress)
        path = embeddings_file(embeddings_dir, model_name or "model", data.name, name)
        return encode_to_file(model, texts, path, chunk_size=chunk_size or DEFAULT_CHUNK_SIZE,
                              batch_size=batch_size, overwrite=overwrite, show_progress_bar=progress)

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    query = encode(split)
    seconds[f"encode_{split}"] = time.perf_counter() - start
    index_vectors = None
    if needs_index:
        started = time.perf_counter()
        index_vectors = encode(index_name)
        seconds[f"encode_{index_name}"] = time.perf_counter() - started
    seconds["encode"] = time.perf_counter() - start
    report = EvaluationReport(data.name, split, index_name, same_set, len(evaluated), data.num_classes,
                              int(query.shape[1]), seconds=seconds, embeddings=query,
                              index_embeddings=index_vectors)
    common = {"num_classes": data.num_classes, "label_names": data.label_names}

    if "knn" in chosen:
        from st_gloss.evaluation.knn import knn_classify

        for number, vote in enumerate(weightings):
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)
                if same_set:
                    result = knn_classify(query, evaluated.labels, query, evaluated.labels, k=k, weighting=vote,
                                          leave_one_out=True, index=index, **common)
                else:
                    result = knn_classify(index_vectors, data[index_name].labels, query, evaluated.labels, k=k,
                                          weighting=vote, index=index, **common)
            report.warnings += [str(w.message) for w in caught]
            report.knn_by_weighting[vote] = result
            seconds["knn" if number == 0 else f"knn_{vote}"] = time.perf_counter() - start
        report.knn = report.knn_by_weighting[weightings[0]]
    if "silhouette" in chosen:
        from st_gloss.evaluation.silhouette import silhouette

        start = time.perf_counter()
        report.silhouette = silhouette(query, evaluated.labels, metric=silhouette_metric,
                                       max_samples=silhouette_max_samples, seed=seed)
        seconds["silhouette"] = time.perf_counter() - start
    if "probe" in chosen:
        from st_gloss.evaluation.probe import cross_validated_probe, linear_probe

        start = time.perf_counter()
        if same_set:
            report.probe = cross_validated_probe(query, evaluated.labels, seed=seed, **common)
        else:
            report.probe = linear_probe(index_vectors, data[index_name].labels, query, evaluated.labels,
                                        seed=seed, **common)
        seconds["probe"] = time.perf_counter() - start
    if "mteb" in chosen:
        from st_gloss.evaluation.mteb_tasks import builtin_tasks, make_classification_task, run_mteb

        start = time.perf_counter()
        tasks = []
        if not same_set:
            tasks.append(make_classification_task(data, eval_split=split, train_split=index_name,
                                                  samples_per_label=mteb_samples_per_label, seed=seed))
        tasks += builtin_tasks(list(mteb_tasks))
        report.mteb = run_mteb(model, tasks, batch_size=batch_size, show_progress_bar=progress)
        seconds["mteb"] = time.perf_counter() - start
    for message in report.warnings:
        if on_warning is not None:
            on_warning(message)
        else:
            warnings.warn(message, UserWarning, stacklevel=2)
    return report

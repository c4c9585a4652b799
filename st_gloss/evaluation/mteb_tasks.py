"""MTEB classification on local labelled data (offline) and on MTEB's own tasks (hub).

MTEB's classification score is a *few-shot logistic probe*: for each of ``n_experiments`` runs
it draws ``samples_per_label`` training examples per class (8 by default), fits a logistic
regression on their embeddings and scores it on the evaluation split; the runs are averaged.
It is therefore not comparable with the full-data [`linear_probe`][st_gloss.evaluation.probe.linear_probe].
Results are never cached (``cache=None``): a cache keyed by model name mixed up local models.
"""

from __future__ import annotations

import re
from typing import Any

from st_gloss.errors import InputError
from st_gloss.evaluation.data import LabelledData


def _task_name(name: str) -> str:
    words = re.split(r"[^0-9A-Za-z]+", name)
    return "Local" + "".join(w[:1].upper() + w[1:] for w in words if w) + "Classification"


def make_classification_task(
    data: LabelledData,
    *,
    eval_split: str = "test",
    train_split: str = "train",
    samples_per_label: int = 8,
    n_experiments: int = 10,
    language: str = "eng-Latn",
    seed: int = 42,
):
    """Wrap local labelled data as an ``mteb`` ``AbsTaskClassification`` (runs offline).

    The task's ``load_data`` builds a ``DatasetDict`` with the train split and the evaluated
    split (columns ``text`` and ``label``); nothing is downloaded.

    Args:
        data: the labelled data (from [`load_labelled_data`][st_gloss.evaluation.data.load_labelled_data]).
        eval_split: the split MTEB scores.
        train_split: the split MTEB draws its few-shot training examples from.
        samples_per_label: training examples per class in each experiment (MTEB's default 8).
        n_experiments: experiments averaged (MTEB's default 10).
        language: ISO 639-3 code and script of the texts, as MTEB names them.
        seed: MTEB's seed for drawing the training examples.

    Returns:
        An ``AbsTaskClassification`` instance, ready for `run_mteb` or ``mteb.evaluate``.

    Examples:
        >>> data = load_labelled_data("st_gloss/data/r8_sample")  # doctest: +SKIP
        >>> task = make_classification_task(data, samples_per_label=4, n_experiments=2)  # doctest: +SKIP
        >>> run_mteb(model, [task])[task.metadata.name]["accuracy"]  # doctest: +SKIP
        0.71
    """
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.classification import AbsTaskClassification
    from mteb.abstasks.task_metadata import TaskMetadata

    train, evaluated = data.split(train_split), data.split(eval_split)
    if samples_per_label < 1 or n_experiments < 1:
        raise InputError("samples_per_label and n_experiments must be positive")
    name = _task_name(data.name)
    metadata = TaskMetadata(
        name=name,
        description=f"Local labelled data {data.name} ({data.source}), evaluated on "
                    f"{eval_split!r}, few-shot training examples from {train_split!r}.",
        dataset={"path": str(data.source), "revision": "local"},
        type="Classification",
        category="t2c",
        modalities=["text"],
        eval_splits=[eval_split],
        eval_langs=[language],
        main_score="accuracy",
        reference=None,
        date=None,
        domains=[],
        task_subtypes=[],
        license=None,
        annotations_creators=None,
        dialect=[],
        sample_creation=None,
        bibtex_citation="",
    )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        self.dataset = DatasetDict({
            split.name: Dataset.from_dict({"text": split.texts, "label": split.labels.tolist()})
            for split in (train, evaluated)
        })
        self.data_loaded = True

    task_class = type(name, (AbsTaskClassification,), {
        "metadata": metadata,
        "load_data": load_data,
        "samples_per_label": samples_per_label,
        "n_experiments": n_experiments,
        "train_split": train_split,
        "__module__": __name__,
    })
    return task_class(seed=seed)


def builtin_tasks(names: list[str]):
    """Look up MTEB's own classification tasks by name (their data come from the hub).

    Args:
        names: MTEB task names, e.g. ``["Banking77Classification"]``.

    Examples:
        >>> builtin_tasks(["Banking77Classification"])  # doctest: +SKIP
    """
    import mteb

    tasks = []
    for name in names:
        try:
            task = mteb.get_task(name)
        except (KeyError, ValueError) as exc:
            raise InputError(f"MTEB has no task named {name!r}; list them with "
                             "`mteb.get_tasks(task_types=['Classification'])`") from exc
        if task.metadata.type != "Classification":
            raise InputError(f"MTEB task {name!r} is a {task.metadata.type} task; st-gloss eval "
                             "runs classification tasks only")
        tasks.append(task)
    return tasks


def run_mteb(model, tasks, *, batch_size: int = 32, show_progress_bar: bool = True) -> dict:
    """Run MTEB tasks on a SentenceTransformer without any result cache.

    Args:
        model: a ``SentenceTransformer``.
        tasks: tasks from `make_classification_task` or `builtin_tasks`.
        batch_size: encoding batch size.
        show_progress_bar: MTEB's progress bars.

    Returns:
        Task name -> ``{"accuracy", "f1", ..., "main_score", "split", "samples_per_label",
        "n_experiments"}`` (the first evaluated split and subset of each task).

    Examples:
        >>> scores = run_mteb(model, [make_classification_task(data)])  # doctest: +SKIP
    """
    import mteb

    try:
        result = mteb.evaluate(
            model,
            list(tasks),
            cache=None,
            overwrite_strategy="always",
            encode_kwargs={"batch_size": batch_size, "show_progress_bar": show_progress_bar},
            show_progress_bar=show_progress_bar,
        )
    except (ConnectionError, OSError) as exc:
        raise InputError("MTEB could not load a task's data: the Hugging Face hub is not reachable "
                         f"({type(exc).__name__}); use local data (--data) or go online") from exc
    scores = {}
    for task_result, task in zip(result.task_results, tasks):
        split, entries = next(iter(task_result.scores.items()))
        entry = entries[0]
        keep = {  # NaN (e.g. average precision of a multi-class task) becomes None for JSON
            k: (None if v != v else float(v))
            for k, v in entry.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        keep.update(split=split, samples_per_label=getattr(task, "samples_per_label", None),
                    n_experiments=getattr(task, "n_experiments", None))
        scores[task_result.task_name] = keep
    return scores

"""The demo: fine-tune the bundled MiniLM with G-Loss on a bundled sample, test metrics before/after.

``st-gloss demo`` (`st_gloss.cli.demo`) is a thin layer over `run_demo`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from st_gloss.classifier.text_classifier import TextClassifier
from st_gloss.errors import InputError


@dataclass
class Scores:
    """What the demo measures on the test split."""

    knn_accuracy: float
    knn_macro_f1: float
    macro_silhouette: float


def measure(model, data, *, k: int = 10, batch_size: int = 32) -> Scores:
    """kNN accuracy/macro-F1 (train as index, test as queries) and the macro cosine silhouette of test.

    One call of [`st_gloss.evaluation.evaluate`][st_gloss.evaluation.evaluate] (the test split, seed 0).

    Examples:
        >>> measure(model, load_data("sample:mr"))  # doctest: +SKIP
        Scores(knn_accuracy=0.66, knn_macro_f1=0.65, macro_silhouette=0.02)
    """
    from st_gloss.evaluation.pipeline import evaluate

    scores = evaluate(model, data, ("knn", "silhouette"), split="test", k=k, batch_size=batch_size).as_dict()
    return Scores(scores["knn_accuracy"], scores["knn_macro_f1"], scores["silhouette_macro"])


def demo_data_source(data: str):
    """What ``--data`` names: ``sample:mr``, or the old demo spelling ``mr``/``r8`` for the bundled samples.

    Examples:
        >>> demo_data_source("mr")
        'sample:mr'
        >>> demo_data_source("./my-data")
        './my-data'
    """
    from st_gloss.evaluation.samples import SAMPLES

    return f"sample:{data}" if data in SAMPLES else data


def run_demo(
    model_name: str | None = None,
    data: str = "sample:mr",
    *,
    epochs: int = 2,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    max_seq_length: int = 128,
    seed: int = 0,
    save_to: str | None = None,
    show_progress_bar: bool = True,
    echo=print,
) -> tuple[Scores, Scores]:
    """Measure, fine-tune with GraphGuidedLoss, measure again, classify a few new texts; return (before, after).

    After training, a logistic head is fit on the training texts' embeddings
    (`TextClassifier`) and classifies a few texts of no split (for a bundled
    sample, [`st_gloss.evaluation.samples.NEW_TEXTS`][st_gloss.evaluation.samples.NEW_TEXTS]; for other data, three test
    texts).
    With ``save_to`` the classifier is saved there, for ``st-gloss predict``.

    ``data`` is a bundled sample (``"sample:mr"``, ``"sample:r8"``; ``"mr"`` and ``"r8"`` still
    mean the samples here) or anything `st_gloss.evaluation.load_data` accepts (with train
    and test splits). ``save_to`` is checked (a new or empty folder, writable, apart from the
    model and the data) before anything is loaded.

    Examples:
        >>> before, after = run_demo()  # about 2 minutes on 2 CPU cores  # doctest: +SKIP
    """
    import math

    from st_gloss.evaluation.models import load_model, resolve_model_name
    from st_gloss.evaluation.pipeline import load_data
    from st_gloss.evaluation.report import check_writable, refuse_overlap
    from st_gloss.training import fine_tune

    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise InputError(f"--lr must be a positive finite number, got {learning_rate}")
    if not 0 <= seed < 2**32:
        raise InputError(f"--seed must lie in 0..{2**32 - 1}, got {seed}")
    inputs = {"the model": resolve_model_name(model_name)}
    if save_to is not None:
        target = Path(save_to).expanduser()
        if target.exists() and not target.is_dir():
            raise InputError(f"--save {save_to} is a file; give a new folder for the model")
        if target.is_dir() and any(target.iterdir()):
            raise InputError(f"{save_to} exists and is not empty; choose a new folder for the model")
        check_writable(target)
        refuse_overlap(target, "--save", inputs)
    dataset = load_data(demo_data_source(data))
    for split in ("train", "test"):
        if split not in dataset:
            raise InputError(f"the demo needs a train and a test split; {data} has {sorted(dataset.splits)}")
    if save_to is not None:
        refuse_overlap(save_to, "--save", {"the data": dataset.source})
    import transformers

    transformers.set_seed(seed)
    model = load_model(model_name, max_seq_length=max_seq_length)
    train = dataset["train"]
    echo(
        f"data: {data} ({len(train)} train, {len(dataset['test'])} test, {dataset.num_classes} classes); "
        f"model: {model_name or 'bundled all-MiniLM-L6-v2'}"
    )
    start = time.perf_counter()
    before = measure(model, dataset, batch_size=batch_size)
    echo(f"zero-shot evaluation: {time.perf_counter() - start:.1f}s")
    start = time.perf_counter()
    fine_tune(
        model,
        train.texts,
        train.labels.tolist(),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        show_progress_bar=show_progress_bar,
    )
    echo(f"fine-tuning with GraphGuidedLoss ({epochs} epochs): {time.perf_counter() - start:.1f}s")
    after = measure(model, dataset, batch_size=batch_size)
    echo("")
    echo(format_comparison(before, after))
    classifier = TextClassifier(model, head="logistic", labels=dataset.label_names, batch_size=batch_size, seed=seed)
    classifier.fit_embeddings(classifier.encode(train.texts), train.labels, ids=True)
    texts = new_texts(data, dataset)
    echo("\nclassifying new texts (logistic head on the fine-tuned embeddings):")
    echo(format_predictions(texts, classifier.predict_proba(texts), classifier.labels))
    if save_to is not None:
        classifier.save_pretrained(save_to)
        echo(f"\nclassifier saved to {save_to}; try: st-gloss predict {save_to} --data FILE --output predictions.csv")
    return before, after


def new_texts(data: str, dataset) -> list[str]:
    """The texts the demo classifies: the sample's [`NEW_TEXTS`][st_gloss.evaluation.samples.NEW_TEXTS], else 3 test
    texts.

    Examples:
        >>> new_texts("sample:mr", None)[0][:24]
        'a warm , funny and beaut'
    """
    from st_gloss.evaluation.samples import NEW_TEXTS

    name = demo_data_source(data).removeprefix("sample:")
    if name in NEW_TEXTS:
        return list(NEW_TEXTS[name])
    return list(dataset["test"].texts[:3])


def format_predictions(texts: list[str], probabilities, labels: list, width: int = 60) -> str:
    """One line per text: the predicted label, its probability and the text (shortened to ``width``).

    Examples:
        >>> import numpy as np
        >>> print(format_predictions(["good film"], np.array([[0.1, 0.9]]), ["negative", "positive"]))
        positive  0.90  good film
    """
    names = [str(label) for label in labels]
    column = max(len(name) for name in names)
    lines = []
    for text, row in zip(texts, probabilities):
        best = int(row.argmax())
        shown = text if len(text) <= width else text[: width - 3] + "..."
        lines.append(f"{names[best]:<{column}}  {row[best]:.2f}  {shown}")
    return "\n".join(lines)


def format_comparison(before: Scores, after: Scores) -> str:
    """A three-row table of the test metrics before and after fine-tuning."""
    rows = [
        ("kNN accuracy (k=10)", before.knn_accuracy, after.knn_accuracy),
        ("kNN macro-F1", before.knn_macro_f1, after.knn_macro_f1),
        ("macro silhouette (cosine)", before.macro_silhouette, after.macro_silhouette),
    ]
    lines = [f"{'test metric':<27}{'before':>9}{'after':>9}{'change':>9}"]
    lines += [f"{name:<27}{b:>9.4f}{a:>9.4f}{a - b:>+9.4f}" for name, b, a in rows]
    return "\n".join(lines)

"""``st-gloss predict``: label a CSV/JSONL file with a saved TextClassifier; score it when it has labels."""

from __future__ import annotations

from pathlib import Path

import click

from st_gloss.errors import InputError


class BadInput(click.ClickException):
    """Bad input: ``Error: <message>`` on one line and exit code 2, also when the command runs alone."""

    exit_code = 2


def _probability_columns(labels: list, taken: set[str]) -> tuple[list[str], bool]:
    """One column per class, named after it; ``probability_<name>`` for all when a name is taken."""
    names = [str(label) for label in labels]
    if taken.isdisjoint(names) and len(set(names)) == len(names):
        return names, False
    return [f"probability_{name}" for name in names], True


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(start + size, n)


def _scores(true_keys: list[str], predicted_keys: list[str], class_keys: list[str]):
    """Accuracy, macro-F1, the per-class table and the confusion matrix, over the label names.

    True labels the classifier does not know are appended to the classes (their rows count as
    errors). Returns ``(accuracy, macro_f1, names, precision, recall, f1, support, matrix)``.
    """
    import numpy as np
    from sklearn.metrics import confusion_matrix

    from st_gloss.evaluation.knn import class_scores

    names = list(class_keys) + sorted(set(true_keys) - set(class_keys))
    index = {name: i for i, name in enumerate(names)}
    y_true = np.array([index[k] for k in true_keys])
    y_pred = np.array([index[k] for k in predicted_keys])
    accuracy, macro_f1, table = class_scores(y_true, y_pred, len(names), names)
    precision, recall, f1 = (np.array([getattr(row, name) for row in table]) for name in ("precision", "recall", "f1"))
    support = np.array([row.support for row in table])
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(names))))
    return accuracy, macro_f1, names, precision, recall, f1, support, matrix


def _print_scores(scores, skipped: int) -> None:
    accuracy, macro_f1, names, precision, recall, f1, support, matrix = scores
    n = int(support.sum())
    click.echo(f"\naccuracy  {accuracy:.4f}  ({n} labelled rows)")
    click.echo(f"macro-F1  {macro_f1:.4f}")
    if skipped:
        click.echo(f"({skipped} row(s) without a label were not scored)")
    width = max(5, *(len(name) for name in names))
    click.echo(f"\n{'label':<{width}}  precision  recall     f1  support")
    for i, name in enumerate(names):
        click.echo(f"{name:<{width}}  {precision[i]:9.4f}  {recall[i]:6.4f}  {f1[i]:.4f}  {int(support[i]):7d}")
    cell = max(5, *(len(str(v)) for v in matrix.flat), *(len(name) for name in names))
    click.echo("\nconfusion matrix (rows: true label, columns: prediction)")
    click.echo(" " * width + "  " + " ".join(f"{name:>{cell}}" for name in names))
    for i, name in enumerate(names):
        click.echo(f"{name:<{width}}  " + " ".join(f"{int(v):>{cell}}" for v in matrix[i]))


def plot_confusion_matrix(matrix, names: list[str], path: Path) -> None:
    """Draw the confusion matrix (counts, rows = true label) to a PNG; matplotlib is imported here."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(4.0, 0.6 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("prediction")
    ax.set_ylabel("true label")
    limit = matrix.max() / 2 if matrix.size else 0
    for (i, j), value in __import__("numpy").ndenumerate(matrix):
        ax.text(j, i, str(int(value)), ha="center", va="center", color="white" if value > limit else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@click.command("predict")
@click.argument("model_path", metavar="MODEL")
@click.option("--data", "data_path", required=True, help="CSV or JSONL file with a text column (labels optional).")
@click.option("--output", "output_path", required=True, help="File for the rows with predictions (.csv or .jsonl).")
@click.option("--head", default=None, help="Which saved head to use (default: the folder's default head).")
@click.option("--text-column", default="text", show_default=True, help="Column holding the texts.")
@click.option("--label-column", default=None,
              help="Column of true labels for scoring (default: 'label', when the file has it).")
@click.option("--probabilities", is_flag=True, help="Add one probability column per class, named after the class.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Texts per forward pass.")
@click.option("--device", default=None, help="cpu, cuda, mps... (default: sentence-transformers' choice).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output (and plot) file.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@click.option("--plot", "plot_path", default=None, help="Draw the confusion matrix to this PNG (needs labels).")
def predict_command(model_path, data_path, output_path, head, text_column, label_column, probabilities,
                    batch_size, device, overwrite, progress, plot_path):
    """Predict a label for every row of a CSV/JSONL file with a classifier saved in MODEL.

    MODEL is a folder written by st-gloss train, st-gloss demo --save or
    TextClassifier.save_pretrained. The output holds the input rows plus `prediction` (the label name) and `probability`
    (of
    that label). When the input has labels, accuracy, macro-F1, a per-class table and the
    confusion matrix are printed.

    \b
    Examples:
      st-gloss predict runs/mr-gloss --data new_reviews.csv --output predicted.csv
      st-gloss predict runs/mr-gloss --data test.jsonl --output scored.jsonl --probabilities --plot cm.png
    """
    try:
        _predict(model_path, data_path, output_path, head, text_column, label_column, probabilities,
                 batch_size, device, overwrite, progress, plot_path)
    except InputError as exc:
        raise BadInput(str(exc)) from None


def _predict(model_path, data_path, output_path, head, text_column, label_column, probabilities,
             batch_size, device, overwrite, progress, plot_path):
    from st_gloss.classifier.records import check_output, is_missing, label_key, read_records
    from st_gloss.classifier.serialization import read_config

    # Every check that needs no model runs first, so bad input fails in a second.
    output = check_output(output_path, overwrite)
    plot = check_output(plot_path, overwrite, "plot file", (".png",)) if plot_path else None
    if Path(data_path).expanduser().resolve() == output.resolve():
        raise InputError(f"--output {output} is the input file; write the predictions to another file")
    folder = Path(model_path).expanduser()
    if not folder.is_dir():
        raise InputError(f"model folder {folder} does not exist; give a folder written by "
                         "TextClassifier.save_pretrained")
    config = read_config(folder)
    if head is not None and head not in config["heads"]:
        raise InputError(f"{folder} has no head {head!r}; it has: {', '.join(config['heads'])} (--head NAME)")
    explicit_label = label_column is not None
    records = read_records(data_path, text_column, label_column or "label", require_label=explicit_label)
    if plot is not None and records.label_column is None:
        raise InputError(f"--plot draws the confusion matrix, which needs true labels; {records.path} has no "
                         f"column {(label_column or 'label')!r} (pass --label-column NAME)")
    taken = set(records.columns)
    for column in ("prediction", "probability"):
        if column in taken:
            raise InputError(f"{records.path} already has a column {column!r}; rename it before predicting")
    labels = config["labels"]
    class_columns, renamed = _probability_columns(labels, taken | {"prediction", "probability"})
    if probabilities and renamed:
        click.echo("Note: a class name clashes with a column name; probability columns are named "
                   "probability_<class>", err=True)

    from tqdm.auto import tqdm

    from st_gloss.classifier.records import RecordWriter
    from st_gloss.classifier.text_classifier import TextClassifier
    from st_gloss.compat import hf_progress_bars

    with hf_progress_bars(progress):
        classifier = TextClassifier.from_pretrained(folder, head=head, device=device, batch_size=batch_size)
    columns = records.columns + ["prediction", "probability"] + (class_columns if probabilities else [])
    texts = records.texts
    predicted_all = []
    chunk = max(256, 16 * batch_size)
    column_of = {label_key(label): i for i, label in enumerate(labels)}
    with RecordWriter(output, columns) as writer, tqdm(total=len(texts), disable=not progress,
                                                      desc="predict", unit="text") as bar:
        for start, stop in _chunks(len(texts), chunk):
            names, proba = classifier.predict_embeddings(classifier.encode(texts[start:stop]))
            rows = []
            for row, name, p in zip(records.rows[start:stop], names, proba):
                out = dict(row)
                out["prediction"] = name
                out["probability"] = float(p[column_of[label_key(name)]])
                if probabilities:
                    out.update({column: float(value) for column, value in zip(class_columns, p)})
                rows.append(out)
            writer.write(rows)
            predicted_all.extend(names)
            bar.update(stop - start)
    click.echo(f"wrote {len(texts)} predictions ({classifier.default_head} head) to {output}", err=True)
    if records.label_column is None:
        return
    scored = [(label_key(t), label_key(p)) for t, p in zip(records.labels, predicted_all) if not is_missing(t)]
    if not scored:
        click.echo(f"the {records.label_column!r} column is empty in every row; nothing to score", err=True)
        return
    scores = _scores([t for t, _ in scored], [p for _, p in scored], [label_key(label) for label in labels])
    _print_scores(scores, len(records) - len(scored))
    if plot is not None:
        plot_confusion_matrix(scores[-1], scores[2], plot)
        click.echo(f"confusion matrix drawn to {plot}", err=True)

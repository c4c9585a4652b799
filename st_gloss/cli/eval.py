"""``st-gloss eval``: kNN, silhouette, linear probe and MTEB for one or more models on one dataset.

The command checks its options and output locations, loads the data, then calls
[`st_gloss.evaluation.evaluate`][st_gloss.evaluation.evaluate] once per model and prints/writes what it returns.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import click

from st_gloss.cli.options import overwrite_option, progress_option, seed_option
from st_gloss.errors import InputError

METRICS = ("knn", "silhouette", "probe", "mteb")
DEFAULT_METRICS = "knn,silhouette,probe"


def _load_data(data: str, data_root, text_column, label_column, on_empty):
    from st_gloss.evaluation.pipeline import load_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # reported below, once per split
        labelled = load_data(data, data_root=data_root, text_column=text_column,
                             label_column=label_column, on_empty=on_empty)
    for split in labelled.splits.values():
        if split.skipped:
            click.echo(f"Warning: {labelled.name} {split.name}: skipped {split.skipped} row(s) with "
                       "an empty text or label (--on-empty error refuses them)", err=True)
    return labelled


def _local_models(models: list[str]) -> dict[str, str]:
    """The models that are local folders (the bundled one included), for the overlap checks."""
    from st_gloss.evaluation.models import resolve_model_name

    return {f"the model {name}": resolve_model_name(name) for name in models}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("models", nargs=-1)
@click.option("--data", "data", required=True,
              help="Folder with train.csv/test.csv (val.csv optional), a CSV/JSONL file, a bundled "
                   "sample (sample:mr, sample:r8), a dataset name under --data-root (mr, r8, r52, "
                   "ohsumed, 20ng), or a hub dataset.")
@click.option("--data-root", type=click.Path(file_okay=False),
              help="Folder holding the named datasets [default: $ST_GLOSS_DATA].")
@click.option("--split", default=None,
              help="Split to evaluate [default: test, or the only split of a single file].")
@click.option("--metrics", default=DEFAULT_METRICS, show_default=True,
              help=f"Comma-separated subset of {','.join(METRICS)}.")
@click.option("--k", "k", default=10, show_default=True, type=click.IntRange(min=1), help="kNN neighbours.")
@click.option("--weighting", type=click.Choice(["majority", "similarity"]), default="majority",
              show_default=True, help="kNN vote.")
@click.option("--index", "index_kind", type=click.Choice(["auto", "flat", "ivf", "hnsw"]),
              default="auto", show_default=True,
              help="kNN search: exact (flat), or approximate FAISS IVF or HNSW with its recall "
                   "against exact search reported; auto is flat unless the index has over 100000 "
                   "texts and the search over 10^10 query-text pairs, HNSW then.")
@click.option("--nprobe", type=click.IntRange(min=1), default=None,
              help="IVF lists searched per query (more: higher recall, slower) [default: 64].")
@click.option("--hnsw-ef", type=click.IntRange(min=1), default=128, show_default=True,
              help="HNSW candidates searched per query, efSearch (more: higher recall, slower).")
@click.option("--embeddings-dir", type=click.Path(file_okay=False),
              help="Stream the embeddings to .npy files in this folder, one chunk at a time "
                   "(bounded memory); an interrupted run resumes, a finished file is reused.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=None,
              help="Texts encoded and written per chunk with --embeddings-dir [default: 10000].")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1),
              help="Encoding batch size.")
@click.option("--max-seq-length", type=click.IntRange(min=1), default=None,
              help="Truncate texts to this many tokens [default: the model's limit].")
@click.option("--silhouette-metric", type=click.Choice(["cosine", "euclidean"]), default="cosine",
              show_default=True, help="Distance of the silhouette.")
@click.option("--silhouette-max-samples", type=click.IntRange(min=2), default=5000, show_default=True,
              help="Above this many texts, a stratified sampled silhouette estimate.")
@click.option("--mteb-task", "mteb_tasks", multiple=True,
              help="A built-in MTEB classification task to run as well (needs the hub); repeatable.")
@click.option("--mteb-samples-per-label", type=click.IntRange(min=1), default=8, show_default=True,
              help="Few-shot training examples per class in MTEB's probe.")
@click.option("--text-column", default="text", show_default=True, help="Column that holds the texts.")
@click.option("--label-column", default="label", show_default=True, help="Column that holds the labels.")
@click.option("--on-empty", type=click.Choice(["skip", "error"]), default="skip", show_default=True,
              help="Rows with an empty text or label: skip them (with a count) or refuse the data.")
@click.option("--output", type=click.Path(dir_okay=False), help="Write every figure as JSON here.")
@overwrite_option("Replace an existing --output or --plot file and re-encode files in --embeddings-dir.")
@click.option("--plot", type=click.Path(dir_okay=False),
              help="Write a 2-D picture (PNG) of the evaluated split, one panel per model.")
@click.option("--plot-method", type=click.Choice(["tsne", "pca"]), default="tsne", show_default=True,
              help="2-D projection of --plot.")
@click.option("--device", default=None, help="cpu, cuda, mps... [default: automatic].")
@seed_option("Seed of the silhouette sample, the probe, MTEB, the IVF training sample and "
             "the queries that measure the recall.")
@progress_option("Progress bars for encoding and MTEB.")
def eval_command(models, data, data_root, split, metrics, k, weighting, index_kind, nprobe, hnsw_ef,
                 embeddings_dir, chunk_size, batch_size, max_seq_length, silhouette_metric,
                 silhouette_max_samples, mteb_tasks, mteb_samples_per_label, text_column,
                 label_column, on_empty, output, overwrite, force, plot, plot_method, device, seed,
                 progress):
    """Measure embedding quality of MODELS (default: the bundled MiniLM) on labelled data.

    Texts are encoded once per model and reused by every metric. kNN uses the train split as
    its index (leave-one-out when the evaluated split is the train split itself); the probe is
    a logistic regression fit on train. Several models are printed side by side. For millions
    of texts, --embeddings-dir streams the embeddings to disk and --index picks an approximate
    kNN index, whose recall against exact search is printed.

    \b
    Examples:
      st-gloss eval --data sample:r8
      st-gloss eval default ./my-model --data r8 --data-root ../shared/data --output r8.json
      st-gloss eval ./my-model --data big.csv --metrics knn --index ivf --embeddings-dir cache/
    """
    from st_gloss.evaluation.encode import DEFAULT_CHUNK_SIZE
    from st_gloss.evaluation.index import IndexOptions
    from st_gloss.evaluation.models import check_device, load_model
    from st_gloss.evaluation.pipeline import _parse_metrics, evaluate
    from st_gloss.evaluation.report import (
        check_output_path,
        check_writable,
        environment_info,
        index_summary,
        refuse_overlap,
        results_table,
        write_json,
    )

    overwrite = overwrite or force
    try:
        chosen = _parse_metrics(metrics)
    except InputError as exc:
        raise InputError(f"{exc} (in --metrics)") from None
    if mteb_tasks and "mteb" not in chosen:
        chosen.append("mteb")
    if chunk_size is not None and embeddings_dir is None:
        raise InputError("--chunk-size sets the chunks streamed to --embeddings-dir; "
                         "give --embeddings-dir DIR as well, or drop --chunk-size")
    if embeddings_dir is not None and Path(embeddings_dir).exists() and not Path(embeddings_dir).is_dir():
        raise InputError(f"--embeddings-dir {embeddings_dir} is a file; give a folder")
    check_device(device)
    chunk_size = chunk_size or DEFAULT_CHUNK_SIZE
    index_options = IndexOptions(kind=index_kind, nprobe=nprobe, hnsw_ef_search=hnsw_ef, seed=seed)
    models = list(models) or ["default"]
    if len(set(models)) != len(models):
        raise InputError("a model is named twice; name each model once")
    # Every output is checked (writable, not an input) before anything is loaded or computed.
    inputs = _local_models(models)
    output_path = check_output_path(output, overwrite) if output else None
    plot_path = check_output_path(plot, overwrite) if plot else None
    if embeddings_dir is not None:
        check_writable(embeddings_dir)
    labelled = _load_data(data, data_root, text_column, label_column, on_empty)
    inputs["the data"] = labelled.source
    for option, path in (("--output", output_path), ("--plot", plot_path), ("--embeddings-dir", embeddings_dir)):
        if path is not None:
            refuse_overlap(path, option, inputs)
    if split is None:
        split = "test" if "test" in labelled else labelled.index_split()
    evaluated = labelled.split(split)
    if "mteb" in chosen and split == labelled.index_split() and not mteb_tasks:
        raise InputError("MTEB classification needs a train split besides the evaluated one; "
                         "give a folder with train.csv and test.csv, or name --mteb-task")
    if not progress:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

    entries, panels = [], []
    for name in models:
        if len(models) > 1 or progress:
            click.echo(f"Evaluating {name} on {labelled.name} [{split}]...", err=True)
        start = time.perf_counter()
        model = load_model(name, device=device, max_seq_length=max_seq_length)
        loaded = time.perf_counter() - start
        report = evaluate(
            model, labelled, chosen, split=split, k=k, weighting=weighting, index=index_options,
            silhouette_metric=silhouette_metric, silhouette_max_samples=silhouette_max_samples,
            mteb_tasks=list(mteb_tasks), mteb_samples_per_label=mteb_samples_per_label,
            batch_size=batch_size, embeddings_dir=embeddings_dir, chunk_size=chunk_size,
            overwrite=overwrite, model_name=name, seed=seed, progress=progress,
            on_warning=lambda message: click.echo(f"Warning: {message}", err=True),
        )
        entries.append({
            "model": name,
            "resolved_model": inputs[f"the model {name}"],
            "embedding_dim": report.embedding_dim,
            "max_seq_length": model.max_seq_length,
            "results": report.results(),
            "seconds": {"load_model": loaded, **report.seconds},
        })
        if plot_path is not None:
            panels.append((name, report.embeddings))

    click.echo(f"{labelled.name} [{split}]: {len(evaluated)} texts, {labelled.num_classes} classes")
    click.echo(results_table(entries))
    summary = index_summary(entries)
    if summary:
        click.echo(summary)
    if plot_path is not None:
        from st_gloss.evaluation.plots import plot_embedding_spaces

        plot_embedding_spaces(panels, evaluated.labels, plot_path, label_names=labelled.label_names,
                              method=plot_method, seed=seed,
                              title=f"{labelled.name} [{split}]: {plot_method} of the embeddings")
        click.echo(f"Wrote {plot_path}")
    if output_path is not None:
        payload = {
            "command": "st-gloss eval",
            "data": {
                "name": labelled.name,
                "source": labelled.source,
                "split": split,
                "index_split": labelled.index_split(),
                "n_texts": len(evaluated),
                "classes": labelled.num_classes,
                "label_names": labelled.label_names,
                "skipped_rows": {s.name: s.skipped for s in labelled.splits.values()},
            },
            "options": {
                "metrics": chosen, "k": k, "weighting": weighting, "index": index_kind,
                "nprobe": nprobe, "hnsw_ef": hnsw_ef, "embeddings_dir": embeddings_dir,
                "chunk_size": chunk_size if embeddings_dir else None, "batch_size": batch_size,
                "max_seq_length": max_seq_length, "silhouette_metric": silhouette_metric,
                "silhouette_max_samples": silhouette_max_samples, "mteb_tasks": list(mteb_tasks),
                "mteb_samples_per_label": mteb_samples_per_label, "text_column": text_column,
                "label_column": label_column, "on_empty": on_empty, "seed": seed,
                "device": device, "plot": str(plot_path) if plot_path else None,
            },
            "environment": environment_info(),
            "models": entries,
        }
        write_json(payload, output_path)
        click.echo(f"Wrote {output_path}")

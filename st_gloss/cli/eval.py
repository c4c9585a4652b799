"""``st-gloss eval``: kNN, silhouette, linear probe and MTEB for one or more models on one dataset."""

from __future__ import annotations

import hashlib
import re
import time
import warnings
from pathlib import Path

import click

from st_gloss.errors import InputError

METRICS = ("knn", "silhouette", "probe", "mteb")
DEFAULT_METRICS = "knn,silhouette,probe"


def _parse_metrics(value: str) -> list[str]:
    chosen = [m.strip().lower() for m in value.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in METRICS]
    if unknown or not chosen:
        raise InputError(f"unknown metric(s) {', '.join(unknown) or '(none)'} in --metrics; "
                         f"choose from {','.join(METRICS)}")
    return list(dict.fromkeys(chosen))


def _load_data(data: str, data_root, text_column, label_column, on_empty):
    from st_gloss.evaluation.data import load_labelled_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # reported below, once per split
        labelled = load_labelled_data(data, data_root=data_root, text_column=text_column,
                                      label_column=label_column, on_empty=on_empty)
    for split in labelled.splits.values():
        if split.skipped:
            click.echo(f"Warning: {labelled.name} {split.name}: skipped {split.skipped} row(s) with "
                       "an empty text or label (--on-empty error refuses them)", err=True)
    return labelled


def _slug(name: str) -> str:
    """A file-name-safe, collision-free folder name for a model or dataset name."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[-60:] or "model"
    return f"{readable}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"


def _encoder(model, labelled, model_name: str, *, batch_size: int, progress: bool,
             embeddings_dir: str | None, chunk_size: int, force: bool):
    """A function split name -> embeddings: in memory, or streamed to ``embeddings_dir``."""
    from st_gloss.evaluation.encode import encode_texts, encode_to_file

    def encode(split_name: str):
        texts = labelled[split_name].texts
        if embeddings_dir is None:
            return encode_texts(model, texts, batch_size=batch_size, show_progress_bar=progress)
        path = Path(embeddings_dir) / _slug(model_name) / f"{_slug(labelled.name)}-{split_name}.npy"
        return encode_to_file(model, texts, path, chunk_size=chunk_size, batch_size=batch_size,
                              overwrite=force, show_progress_bar=progress)

    return encode


def _knn_with_warnings(*args, **kwargs):
    """``knn_classify``, with its warnings (a low recall) echoed as one-line messages."""
    from st_gloss.evaluation.knn import knn_classify

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        result = knn_classify(*args, **kwargs)
    for warning in caught:
        click.echo(f"Warning: {warning.message}", err=True)
    return result


def evaluate_model(model_name: str, labelled, *, split: str, metrics: list[str], k: int,
                   weighting: str, batch_size: int, max_seq_length: int | None,
                   silhouette_metric: str, silhouette_max_samples: int, mteb_tasks: list[str],
                   mteb_samples_per_label: int, device: str | None, seed: int, progress: bool,
                   index_options=None, embeddings_dir: str | None = None,
                   chunk_size: int = 10_000, force: bool = False):
    """Every requested metric for one model; returns (report entry, test embeddings)."""
    from st_gloss.evaluation.models import load_model, resolve_model_name

    timings: dict[str, float] = {}
    start = time.perf_counter()
    model = load_model(model_name, device=device, max_seq_length=max_seq_length)
    timings["load_model"] = time.perf_counter() - start
    index_name = labelled.index_split()
    same_set = index_name == split
    evaluated = labelled.split(split)
    needs_index = not same_set and ({"knn", "probe"} & set(metrics))

    encode = _encoder(model, labelled, model_name, batch_size=batch_size, progress=progress,
                      embeddings_dir=embeddings_dir, chunk_size=chunk_size, force=force)
    start = time.perf_counter()
    query = encode(split)
    index = encode(index_name) if needs_index else None
    timings["encode"] = time.perf_counter() - start

    results: dict[str, dict] = {}
    common = {"num_classes": labelled.num_classes, "label_names": labelled.label_names}
    if "knn" in metrics:
        start = time.perf_counter()
        knn_options = {"k": k, "weighting": weighting, "index": index_options or "auto", **common}
        if same_set:
            result = _knn_with_warnings(query, evaluated.labels, query, evaluated.labels,
                                        leave_one_out=True, **knn_options)
        else:
            result = _knn_with_warnings(index, labelled[index_name].labels, query, evaluated.labels,
                                        **knn_options)
        results["knn"] = {**result.to_dict(), "index_split": index_name,
                          "leave_one_out": same_set}
        timings["knn"] = time.perf_counter() - start
    if "silhouette" in metrics:
        from st_gloss.evaluation.silhouette import silhouette

        start = time.perf_counter()
        result = silhouette(query, evaluated.labels, metric=silhouette_metric,
                            max_samples=silhouette_max_samples, seed=seed)
        results["silhouette"] = result.to_dict()
        timings["silhouette"] = time.perf_counter() - start
    if "probe" in metrics:
        from st_gloss.evaluation.probe import cross_validated_probe, linear_probe

        start = time.perf_counter()
        if same_set:
            result = cross_validated_probe(query, evaluated.labels, seed=seed, **common)
        else:
            result = linear_probe(index, labelled[index_name].labels, query, evaluated.labels,
                                  seed=seed, **common)
        results["probe"] = result.to_dict()
        timings["probe"] = time.perf_counter() - start
    if "mteb" in metrics:
        from st_gloss.evaluation.mteb_tasks import builtin_tasks, make_classification_task, run_mteb

        start = time.perf_counter()
        tasks = []
        if not same_set:
            tasks.append(make_classification_task(labelled, eval_split=split,
                                                  train_split=index_name,
                                                  samples_per_label=mteb_samples_per_label,
                                                  seed=seed))
        tasks += builtin_tasks(mteb_tasks)
        results["mteb"] = run_mteb(model, tasks, batch_size=batch_size,
                                   show_progress_bar=progress)
        timings["mteb"] = time.perf_counter() - start

    entry = {
        "model": model_name,
        "resolved_model": resolve_model_name(model_name),
        "embedding_dim": int(query.shape[1]),
        "max_seq_length": model.max_seq_length,
        "results": results,
        "seconds": timings,
    }
    return entry, query


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("models", nargs=-1)
@click.option("--data", "data", required=True,
              help="Folder with train.csv/test.csv (val.csv optional), a CSV/JSONL file, a dataset "
                   "name under --data-root (mr, r8, r52, ohsumed, 20ng), or a hub dataset.")
@click.option("--data-root", type=click.Path(file_okay=False),
              help="Folder holding the named datasets [default: $ST_GLOSS_DATA].")
@click.option("--split", default=None,
              help="Split to evaluate [default: test, or the only split of a single file].")
@click.option("--metrics", default=DEFAULT_METRICS, show_default=True,
              help=f"Comma-separated subset of {','.join(METRICS)}.")
@click.option("--k", "k", default=10, show_default=True, type=int, help="kNN neighbours.")
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
@click.option("--batch-size", default=32, show_default=True, type=int, help="Encoding batch size.")
@click.option("--max-seq-length", type=int, default=None,
              help="Truncate texts to this many tokens [default: the model's limit].")
@click.option("--silhouette-metric", type=click.Choice(["cosine", "euclidean"]), default="cosine",
              show_default=True)
@click.option("--silhouette-max-samples", type=int, default=5000, show_default=True,
              help="Above this many texts, a stratified sampled silhouette estimate.")
@click.option("--mteb-task", "mteb_tasks", multiple=True,
              help="A built-in MTEB classification task to run as well (needs the hub); repeatable.")
@click.option("--mteb-samples-per-label", type=int, default=8, show_default=True,
              help="Few-shot training examples per class in MTEB's probe.")
@click.option("--text-column", default="text", show_default=True)
@click.option("--label-column", default="label", show_default=True)
@click.option("--on-empty", type=click.Choice(["skip", "error"]), default="skip", show_default=True,
              help="Rows with an empty text or label: skip them (with a count) or refuse the data.")
@click.option("--output", type=click.Path(dir_okay=False), help="Write every figure as JSON here.")
@click.option("--force", is_flag=True,
              help="Overwrite an existing --output or --plot file and re-encode files in "
                   "--embeddings-dir.")
@click.option("--plot", type=click.Path(dir_okay=False),
              help="Write a 2-D picture (PNG) of the evaluated split, one panel per model.")
@click.option("--plot-method", type=click.Choice(["tsne", "pca"]), default="tsne", show_default=True)
@click.option("--device", default=None, help="cpu, cuda, mps... [default: automatic].")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed of the silhouette sample, the probe, MTEB, the IVF training sample and "
                   "the queries that measure the recall.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress bars for encoding and MTEB.")
def eval_command(models, data, data_root, split, metrics, k, weighting, index_kind, nprobe, hnsw_ef,
                 embeddings_dir, chunk_size, batch_size, max_seq_length, silhouette_metric,
                 silhouette_max_samples, mteb_tasks, mteb_samples_per_label, text_column,
                 label_column, on_empty, output, force, plot, plot_method, device, seed, progress):
    """Measure embedding quality of MODELS (default: the bundled MiniLM) on labelled data.

    Texts are encoded once per model and reused by every metric. kNN uses the train split as
    its index (leave-one-out when the evaluated split is the train split itself); the probe is
    a logistic regression fit on train. Several models are printed side by side. For millions
    of texts, --embeddings-dir streams the embeddings to disk and --index picks an approximate
    kNN index, whose recall against exact search is printed.

    \b
    Examples:
      st-gloss eval default ./my-model --data r8 --data-root ../shared/data --output r8.json
      st-gloss eval ./my-model --data big.csv --metrics knn --index ivf --embeddings-dir cache/
    """
    from st_gloss.evaluation.encode import DEFAULT_CHUNK_SIZE
    from st_gloss.evaluation.index import IndexOptions
    from st_gloss.evaluation.report import (
        check_output_path,
        environment_info,
        index_summary,
        results_table,
        write_json,
    )

    chosen = _parse_metrics(metrics)
    if k < 1:
        raise InputError(f"--k must be at least 1, got {k}")
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    if mteb_samples_per_label < 1:
        raise InputError(f"--mteb-samples-per-label must be at least 1, got {mteb_samples_per_label}")
    if mteb_tasks and "mteb" not in chosen:
        chosen.append("mteb")
    if chunk_size is not None and embeddings_dir is None:
        raise InputError("--chunk-size sets the chunks streamed to --embeddings-dir; "
                         "give --embeddings-dir DIR as well, or drop --chunk-size")
    if embeddings_dir is not None and Path(embeddings_dir).exists() and not Path(embeddings_dir).is_dir():
        raise InputError(f"--embeddings-dir {embeddings_dir} is a file; give a folder")
    chunk_size = chunk_size or DEFAULT_CHUNK_SIZE
    index_options = IndexOptions(kind=index_kind, nprobe=nprobe, hnsw_ef_search=hnsw_ef, seed=seed)
    output_path = check_output_path(output, force) if output else None
    plot_path = check_output_path(plot, force) if plot else None
    if not progress:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    models = list(models) or ["default"]
    if len(set(models)) != len(models):
        raise InputError("a model is named twice; name each model once")

    labelled = _load_data(data, data_root, text_column, label_column, on_empty)
    if split is None:
        split = "test" if "test" in labelled else labelled.index_split()
    evaluated = labelled.split(split)
    if "mteb" in chosen and split == labelled.index_split() and not mteb_tasks:
        raise InputError("MTEB classification needs a train split besides the evaluated one; "
                         "give a folder with train.csv and test.csv, or name --mteb-task")

    entries, panels = [], []
    for name in models:
        if len(models) > 1 or progress:
            click.echo(f"Evaluating {name} on {labelled.name} [{split}]...", err=True)
        entry, embeddings = evaluate_model(
            name, labelled, split=split, metrics=chosen, k=k, weighting=weighting,
            batch_size=batch_size, max_seq_length=max_seq_length,
            silhouette_metric=silhouette_metric, silhouette_max_samples=silhouette_max_samples,
            mteb_tasks=list(mteb_tasks), mteb_samples_per_label=mteb_samples_per_label,
            device=device, seed=seed, progress=progress, index_options=index_options,
            embeddings_dir=embeddings_dir, chunk_size=chunk_size, force=force,
        )
        entries.append(entry)
        if plot_path is not None:
            panels.append((name, embeddings))

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

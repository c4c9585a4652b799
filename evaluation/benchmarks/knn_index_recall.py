"""Approximate kNN indexes against exact search: FAISS flat vs IVF vs HNSW, side by side.

Synthetic clustered unit vectors shaped like sentence embeddings (384 dims): 100 classes whose
centres lie in a 32-dimensional latent space, points spread around them so that classes overlap
(exact kNN accuracy about 0.9, nearest-neighbour cosine about 0.75), mapped to 384 dims by a
fixed random projection plus a little isotropic noise, then L2-normalised. The queries are
held-out points drawn the same way. For each index size the three index types of
``st_gloss.evaluation.index`` are built and searched with the package's own code (``build_index``,
``BuiltIndex.search``, ``recall_at_k``, ``knn.vote``): build time (training and adding), the
time to search all queries, recall@k against the exact flat search, and the kNN accuracy
(majority vote) of the queries. IVF is searched at several ``nprobe``, HNSW at several
``efSearch``, on one build each. A second table varies how clustered the vectors are (the
spread around the class centres) at one size, with each index at its default parameters:
a fine-tuned model's embeddings are tighter than a baseline's, and an index whose recall
depended on that would bias a comparison between them.

Run from the repository root::

    python -m evaluation.benchmarks.knn_index_recall \\
        --output evaluation/results/knn_index_recall.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from st_gloss.evaluation.index import (
    AUTO_FLAT_MAX_PAIRS,
    AUTO_FLAT_MAX_VECTORS,
    DEFAULT_NPROBE,
    IndexOptions,
    build_index,
    recall_at_k,
    resolve_kind,
)
from st_gloss.evaluation.knn import vote

LATENT_DIMS = 32
CLASS_SPREAD = 1.2  # standard deviation around a class centre, in latent units (centres ~ N(0, 1))
NOISE = 0.2  # isotropic noise added after the projection (the projected points have norm ~1-2)


class Generator:
    """Seeded clustered unit vectors with class labels (the same classes for index and queries)."""

    def __init__(self, dim: int, classes: int, seed: int, spread: float = CLASS_SPREAD):
        self.rng = np.random.default_rng(seed)
        self.dim, self.classes, self.spread = dim, classes, spread
        self.projection = (self.rng.standard_normal((LATENT_DIMS, dim)) / np.sqrt(LATENT_DIMS)).astype(np.float32)
        self.centres = self.rng.standard_normal((classes, LATENT_DIMS)).astype(np.float32)

    def draw(self, n: int, chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
        vectors = np.empty((n, self.dim), dtype=np.float32)
        labels = self.rng.integers(0, self.classes, n)
        for start in range(0, n, chunk):
            rows = labels[start:start + chunk]
            latent = self.centres[rows] + self.spread * self.rng.standard_normal(
                (len(rows), LATENT_DIMS), dtype=np.float32)
            x = latent @ self.projection
            x += NOISE * self.rng.standard_normal(x.shape, dtype=np.float32)
            vectors[start:start + len(rows)] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return vectors, labels


def _accuracy(ids, index_labels, query_labels, classes):
    return float(np.mean(vote(index_labels[ids], np.ones(ids.shape), classes) == query_labels))


def run_size(n: int, generator: Generator, queries, query_labels, args, sweep: bool = True) -> list[dict]:
    vectors, labels = generator.draw(n)
    rows = []

    def measure(name, params, built, build_seconds):
        start = time.perf_counter()
        sims, ids = built.search(queries, args.k)
        seconds = time.perf_counter() - start
        rows.append({"size": n, "index": name, "params": params, "build": build_seconds,
                     "query": seconds, "sims": sims,
                     "accuracy": _accuracy(ids, labels, query_labels, generator.classes)})
        print(f"{n:>9} {name:<5} {params:<34} build {build_seconds:7.2f} s  "
              f"query {seconds:7.3f} s", flush=True)

    flat = build_index(vectors, "flat")
    measure("flat", "exact", flat, flat.build_seconds)
    ivf = build_index(vectors, IndexOptions("ivf", seed=args.seed))
    for nprobe in sorted({*args.nprobe, ivf.params["nprobe"]}) if sweep else [ivf.params["nprobe"]]:
        ivf.index.nprobe = min(nprobe, ivf.params["nlist"])
        default = " (default)" if nprobe == ivf.params["nprobe"] else ""
        measure("ivf", f"nlist={ivf.params['nlist']} nprobe={ivf.index.nprobe}{default}", ivf,
                ivf.build_seconds)
    hnsw = build_index(vectors, IndexOptions("hnsw", hnsw_m=args.hnsw_m,
                                             hnsw_ef_construction=args.hnsw_ef_construction,
                                             seed=args.seed))
    for ef in sorted({*args.hnsw_ef, IndexOptions.hnsw_ef_search}) if sweep else [IndexOptions.hnsw_ef_search]:
        hnsw.params["ef_search"] = ef
        default = " (default)" if ef == IndexOptions.hnsw_ef_search else ""
        measure("hnsw", f"M={args.hnsw_m} efC={args.hnsw_ef_construction} ef={ef}{default}", hnsw,
                hnsw.build_seconds)
    exact = rows[0]["sims"]
    for row in rows:
        row["recall"] = recall_at_k(row.pop("sims"), exact)
    return rows


def _ints(text: str) -> list[int]:
    return [int(value) for value in text.split(",") if value.strip()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,200000", help="index sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--nprobe", default="8,16,32,64,128", help="IVF nprobe values searched")
    parser.add_argument("--hnsw-ef", default="32,64,128,256", help="HNSW efSearch values searched")
    parser.add_argument("--hnsw-m", type=int, default=IndexOptions.hnsw_m)
    parser.add_argument("--hnsw-ef-construction", type=int, default=IndexOptions.hnsw_ef_construction)
    parser.add_argument("--spreads", default="0.6,1.2,1.6",
                        help="class spreads of the second table (empty: no second table)")
    parser.add_argument("--spread-size", type=int, default=30_000, help="index size of the second table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, help="write the Markdown table here")
    args = parser.parse_args(argv)
    args.nprobe, args.hnsw_ef = _ints(args.nprobe), _ints(args.hnsw_ef)

    import faiss

    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
               f"faiss {faiss.__version__} ({faiss.omp_get_max_threads()} threads), numpy {np.__version__}")
    print(machine, flush=True)
    load_start = os.getloadavg()[0]
    total = time.perf_counter()
    generator = Generator(args.dim, args.classes, args.seed)
    queries, query_labels = generator.draw(args.queries)
    rows = []
    for size in _ints(args.sizes):
        rows += run_size(size, generator, queries, query_labels, args)
    spread_rows = []
    for spread in (float(value) for value in args.spreads.split(",") if value.strip()):
        other = Generator(args.dim, args.classes, args.seed, spread=spread)
        other_queries, other_labels = other.draw(args.queries)
        for row in run_size(args.spread_size, other, other_queries, other_labels, args, sweep=False):
            spread_rows.append({**row, "spread": spread})
    total = time.perf_counter() - total
    load_end = os.getloadavg()[0]
    load = f"load average {load_start:.1f} at the start and {load_end:.1f} at the end"
    if max(load_start, load_end) > (os.cpu_count() or 1):
        load += f" (above {os.cpu_count()}: other work shared the cores, so the times are inflated)"

    header = (f"| index vectors | auto picks (these queries / leave-one-out) | index | parameters | build s "
              f"| query s ({args.queries} queries) | recall@{args.k} vs flat | kNN accuracy |")
    lines = [header, "|---:|---|---|---|---:|---:|---:|---:|"]
    for row in rows:
        auto = f"{resolve_kind('auto', row['size'], args.queries)} / {resolve_kind('auto', row['size'], row['size'])}"
        lines.append(f"| {row['size']} | {auto} | {row['index']} | {row['params']} "
                     f"| {row['build']:.1f} | {row['query']:.2f} | {row['recall']:.4f} | {row['accuracy']:.4f} |")
    table = "\n".join(lines)
    spread_table = ""
    if spread_rows:
        spread_lines = [f"| class spread | index | parameters | build s | query s | recall@{args.k} vs flat "
                        "| kNN accuracy |", "|---:|---|---|---:|---:|---:|---:|"]
        for row in spread_rows:
            spread_lines.append(f"| {row['spread']} | {row['index']} | {row['params']} | {row['build']:.1f} "
                                f"| {row['query']:.2f} | {row['recall']:.4f} | {row['accuracy']:.4f} |")
        spread_table = "\n".join(spread_lines)
    print("\n" + table + "\n\n" + spread_table + f"\n\ntotal {total:.0f} s")
    if args.output:
        command = "python -m evaluation.benchmarks.knn_index_recall " + shlex.join(
            sys.argv[1:] if argv is None else argv)
        text = f"""# Approximate kNN indexes: recall against exact search

Made with:

```
{command.strip()}
```

{machine}; {total:.0f} s in all, {load}. Synthetic clustered unit vectors, {args.dim} dims,
{args.classes} classes overlapping in a {LATENT_DIMS}-dimensional latent space (see the script's
docstring); {args.queries} held-out queries, k = {args.k}, seed {args.seed}. *build* is training plus
adding the vectors (one build per index type and size; `nprobe` and `efSearch` only change the
search); *query* is searching all queries at once; *recall@{args.k} vs flat* is the fraction of the
exact {args.k} nearest neighbours that the index returned (`st_gloss.evaluation.index.recall_at_k`); *kNN
accuracy* is the majority vote of those neighbours. `auto` searches exactly up to
{AUTO_FLAT_MAX_VECTORS} index vectors, and above as long as the search scores at most
{AUTO_FLAT_MAX_PAIRS:.0e} (query, vector) pairs; HNSW then. IVF uses `nlist` = 4 sqrt(n) and by
default `nprobe` = {DEFAULT_NPROBE}; HNSW `M` = {IndexOptions.hnsw_m}, `efConstruction` =
{IndexOptions.hnsw_ef_construction} and by default `efSearch` = {IndexOptions.hnsw_ef_search}.

{table}
"""
        if spread_table:
            text += f"""
How clustered the vectors are, at {args.spread_size} index vectors and each index's defaults (class
spread {CLASS_SPREAD} is the table above; smaller is tighter clusters, as after fine-tuning):

{spread_table}
"""
        args.output.write_text(text, encoding="utf-8")
        print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

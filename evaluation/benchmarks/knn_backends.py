"""Exact kNN search: FAISS IndexFlatIP vs scikit-learn brute force vs torch matmul + topk.

Random float32 vectors (384 dims, like MiniLM), L2-normalised; 1000 queries against 10k and
100k index vectors, k = 10. Each backend's time includes building its index/model and the
search, best of ``--repeats`` runs; the neighbour lists are checked against FAISS.

Run from the repository root::

    python -m evaluation.benchmarks.knn_backends
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def faiss_search(index_vectors, queries, k):
    import faiss

    index = faiss.IndexFlatIP(index_vectors.shape[1])
    index.add(index_vectors)
    return index.search(queries, k)[1]


def sklearn_search(index_vectors, queries, k):
    from sklearn.neighbors import NearestNeighbors

    model = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(index_vectors)
    return model.kneighbors(queries, return_distance=False)


def torch_search(index_vectors, queries, k, chunk_size=1024):
    import torch

    index = torch.from_numpy(index_vectors)
    results = []
    with torch.inference_mode():
        for start in range(0, len(queries), chunk_size):
            scores = torch.from_numpy(queries[start:start + chunk_size]) @ index.T
            results.append(scores.topk(k, dim=1).indices.numpy())
    return np.concatenate(results)


BACKENDS = {"faiss IndexFlatIP": faiss_search, "sklearn brute (cosine)": sklearn_search,
            "torch matmul+topk": torch_search}


def unit(rng, n, dim):
    x = rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import faiss
    import sklearn
    import torch

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), faiss {faiss.__version__} "
          f"({faiss.omp_get_max_threads()} threads), scikit-learn {sklearn.__version__}, "
          f"numpy {np.__version__}")
    print(f"{args.queries} queries, {args.dim} dims, k={args.k}, best of {args.repeats}; "
          "seconds (build + search)\n")
    rng = np.random.default_rng(0)
    queries = unit(rng, args.queries, args.dim)
    header = f"{'index vectors':>13}  " + "  ".join(f"{name:>22}" for name in BACKENDS)
    print(header + "  same neighbours as faiss")
    for size in (int(s) for s in args.sizes.split(",")):
        index_vectors = unit(rng, size, args.dim)
        times, neighbours = {}, {}
        for name, search in BACKENDS.items():
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                neighbours[name] = search(index_vectors, queries, args.k)
                best = min(best, time.perf_counter() - start)
            times[name] = best
        reference = neighbours["faiss IndexFlatIP"]
        agree = {name: float(np.mean(np.sort(ids, 1) == np.sort(reference, 1)))
                 for name, ids in neighbours.items()}
        cells = "  ".join(f"{times[name]:>22.3f}" for name in BACKENDS)
        agreement = ", ".join(f"{agree[name]:.4f}" for name in list(BACKENDS)[1:])
        print(f"{size:>13}  {cells}  {agreement}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

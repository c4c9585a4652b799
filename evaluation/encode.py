"""Encode texts once, as float32 L2-normalised vectors, and reuse them for every metric."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from evaluation.data import LabelledData


def encode_texts(model, texts: list[str], *, batch_size: int = 32,
                 show_progress_bar: bool = True) -> np.ndarray:
    """Embed ``texts`` with a SentenceTransformer: ``(n, dim)`` float32, L2-normalised rows.

    Args:
        model: a ``SentenceTransformer``.
        texts: the documents.
        batch_size: texts per forward pass.
        show_progress_bar: show sentence-transformers' progress bar.

    Examples:
        >>> from evaluation.models import load_model
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


def encode_splits(model, data: LabelledData, splits: Iterable[str], *, batch_size: int = 32,
                  show_progress_bar: bool = True) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Embed each named split of ``data`` once.

    Args:
        model: a ``SentenceTransformer``.
        data: the labelled data.
        splits: split names (duplicates are encoded once).
        batch_size: texts per forward pass.
        show_progress_bar: show a progress bar per split.

    Returns:
        ``(embeddings, seconds)``: split name -> vectors, and split name -> wall time.

    Examples:
        >>> vectors, seconds = encode_splits(model, data, ["train", "test"])  # doctest: +SKIP
    """
    embeddings, seconds = {}, {}
    for name in dict.fromkeys(splits):
        start = time.perf_counter()
        embeddings[name] = encode_texts(model, data[name].texts, batch_size=batch_size,
                                        show_progress_bar=show_progress_bar)
        seconds[name] = time.perf_counter() - start
    return embeddings, seconds

"""Stratified, seeded index selections: carve a validation split, draw a smaller subset.

Pure functions of the label array, so that every loss and every seed of a benchmark sees the same
rows when it asks for the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _class_members(labels: np.ndarray, rng: np.random.Generator) -> dict[int, np.ndarray]:
    return {int(c): rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)}


def stratified_holdout(labels: Sequence[int], fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices into (kept, held out), holding out ``fraction`` of each class.

    Each class gives ``round(fraction * n_c)`` rows, but always keeps at least one row for
    training (a class of one row gives none). Both index arrays are sorted.

    Args:
        labels: integer class id per row.
        fraction: share of each class to hold out, in (0, 1).
        seed: seed of the shuffle.

    Examples:
        >>> kept, held = stratified_holdout([0] * 10 + [1] * 10, 0.1, seed=0)
        >>> len(kept), len(held), sorted(np.asarray([0] * 10 + [1] * 10)[held].tolist())
        (18, 2, [0, 1])
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must lie strictly between 0 and 1, got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for members in _class_members(labels, rng).values():
        n = min(int(round(fraction * len(members))), len(members) - 1)
        held.extend(members[:n].tolist())
    held_out = np.sort(np.asarray(held, dtype=np.int64))
    kept = np.setdiff1d(np.arange(len(labels)), held_out)
    return kept, held_out


def stratified_subset(labels: Sequence[int], size: int, seed: int = 0, min_per_class: int = 2) -> np.ndarray:
    """Sorted indices of about ``size`` rows, drawn per class in proportion to the class sizes.

    Every class keeps ``min(min_per_class, n_c)`` rows even when its share rounds to fewer, so a
    subset of a skewed dataset still holds each class (the total may then exceed ``size``).
    Asking for at least as many rows as there are returns all of them.

    Args:
        labels: integer class id per row.
        size: number of rows wanted.
        seed: seed of the draw.
        min_per_class: rows every class keeps.

    Examples:
        >>> rows = stratified_subset([0] * 90 + [1] * 10, 20, seed=0)
        >>> len(rows), int((np.asarray([0] * 90 + [1] * 10)[rows] == 1).sum())
        (20, 2)
    """
    labels = np.asarray(labels)
    if size >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    members = _class_members(labels, rng)
    counts = np.array([len(m) for m in members.values()], dtype=float)
    exact = counts * size / counts.sum()
    take = np.floor(exact).astype(int)
    # Largest remainders get the rows that rounding down left over.
    for i in np.argsort(-(exact - take), kind="stable")[: size - int(take.sum())]:
        take[i] += 1
    take = np.minimum(np.maximum(take, np.minimum(min_per_class, counts.astype(int))), counts.astype(int))
    chosen = [m[:t] for m, t in zip(members.values(), take)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)

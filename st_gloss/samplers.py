"""Batch samplers that give G-Loss what it needs: several examples of several classes per batch."""

from __future__ import annotations

import functools
import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from st_gloss.compat import DefaultBatchSampler

DEFAULT_LABEL_COLUMNS = ["label", "labels", "score"]


def default_samples_per_class(batch_size: int, num_classes: int) -> int:
    """Examples of one class per group when none is given.

    ``batch_size // num_classes`` when a batch has room for two examples of every class, so every
    class is in every batch (6 classes in batches of 16: groups of 2, all 6 classes per batch);
    otherwise ``max(4, ceil(batch_size / num_classes))``, so each class in a batch can be scored
    (52 classes in batches of 32: groups of 4, 8 classes per batch).

    Examples:
        >>> default_samples_per_class(16, 6), default_samples_per_class(64, 2), default_samples_per_class(32, 52)
        (2, 32, 4)
    """
    if batch_size >= 2 * num_classes:
        return batch_size // num_classes
    return max(4, math.ceil(batch_size / num_classes))


class ClassBalancedBatchSampler(DefaultBatchSampler):
    """Batches made of groups of ``samples_per_class`` examples of the same class.

    G-Loss propagates labels inside a batch: a class needs at least two examples in the batch to be
    scored (one keeps its label, one is hidden), and the graph says more when several classes meet.
    A plain random batch of a dataset with many classes (R52: 52 classes) holds mostly singletons.
    This sampler shuffles each class, cuts it into groups of ``samples_per_class`` and fills every
    batch with whole groups.

    Two modes:

    - ``balanced=False`` (default): every example once per epoch; batches keep the dataset's class
      frequencies. Use it when classes are roughly balanced (MR, 20NG). Batches are of near-equal
      size (no small last batch), every class with examples left is in every batch that has room
      for a group of each, and a last batch of one class swaps one example with the batch before,
      so it can still be scored.
    - ``balanced=True``: each batch draws its groups from classes chosen uniformly, cycling
      through each class's examples (small classes repeat within an epoch); an epoch has as many
      batches as the dataset has examples divided by the batch size. Use it for skewed classes
      (R8, R52, Ohsumed) so rare classes are seen and scored.

    Pass the class (or `with_options` for non-default options) as ``batch_sampler`` of
    `SentenceTransformerTrainingArguments`; the trainer supplies the
    dataset, batch size, label column, generator and seed, and calls ``set_epoch`` every epoch.

    Args:
        dataset: a ``datasets.Dataset`` with a label column.
        batch_size: examples per batch (at least 4).
        drop_last: make every batch ``batch_size`` long and leave the rest of the epoch out
            (``balanced=False`` only); by default batches are of near-equal size instead.
        valid_label_columns: candidate names of the label column; the first present is used.
        generator: random generator (seeded with ``seed + epoch`` at every epoch).
        seed: base seed.
        samples_per_class: examples of one class per group; default
            [`default_samples_per_class`][st_gloss.samplers.default_samples_per_class] (every class in
            every batch when the batch has room for two of each), at most ``batch_size // 2`` so
            that a batch always spans two classes.
        balanced: draw classes uniformly (see above).

    Examples:
        >>> from datasets import Dataset
        >>> ds = Dataset.from_dict({"text": [str(i) for i in range(12)], "label": [0] * 6 + [1] * 6})
        >>> sampler = ClassBalancedBatchSampler(ds, batch_size=4, drop_last=False, samples_per_class=2)
        >>> [sorted(ds[b]["label"]) for b in sampler][:2]
        [[0, 0, 1, 1], [0, 0, 1, 1]]
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool = False,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
        *,
        samples_per_class: int | None = None,
        balanced: bool = False,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )
        if batch_size < 4:
            raise ValueError(
                f"ClassBalancedBatchSampler needs batch_size >= 4 (two classes x two examples), got {batch_size}"
            )
        labels = _label_column(dataset, valid_label_columns or DEFAULT_LABEL_COLUMNS)
        unlabelled = sum(1 for label in labels if _is_unlabelled(label))
        if unlabelled:
            raise ValueError(
                f"ClassBalancedBatchSampler: the dataset has {unlabelled} texts without a label (-1), which it "
                "would batch as one more class; use st_gloss.SemiSupervisedBatchSampler, which mixes them into "
                "every batch beside the labelled texts"
            )
        groups: dict[Any, list[int]] = defaultdict(list)
        for index, label in enumerate(labels):
            groups[label].append(index)
        if len(groups) < 2:
            raise ValueError(
                f"ClassBalancedBatchSampler needs at least two classes in the dataset, found {len(groups)}"
            )
        self.groups = dict(sorted(groups.items(), key=lambda item: str(item[0])))
        self.balanced = balanced
        self.num_examples = len(labels)
        self._stratified = False
        if samples_per_class is None:
            # The batches of a small dataset are smaller than batch_size (near-equal sizes): size the groups for them.
            effective = batch_size if drop_last or balanced else max(self._batch_sizes())
            samples_per_class = default_samples_per_class(max(4, effective), len(self.groups))
            self._stratified = not (drop_last or balanced) and effective >= 2 * len(self.groups)
        if samples_per_class < 2:
            raise ValueError(f"samples_per_class must be at least 2, got {samples_per_class}")
        self.samples_per_class = min(samples_per_class, batch_size // 2)
        self._label_of = labels

    @classmethod
    def with_options(cls, *, samples_per_class: int | None = None, balanced: bool = False):
        """A factory with non-default options, for the trainer's ``batch_sampler`` argument.

        Examples:
            >>> factory = ClassBalancedBatchSampler.with_options(balanced=True)
            >>> # SentenceTransformerTrainingArguments(..., batch_sampler=factory)
        """
        return functools.partial(cls, samples_per_class=samples_per_class, balanced=balanced)

    def _fresh_generator(self) -> torch.Generator:
        generator = self.generator or torch.Generator()
        if self.seed is not None:
            generator.manual_seed(int(self.seed) + int(self.epoch))
        return generator

    def __iter__(self) -> Iterator[list[int]]:
        generator = self._fresh_generator()
        if self.balanced:
            yield from self._balanced_batches(generator)
        else:
            yield from self._epoch_batches(generator)

    def _epoch_batches(self, generator: torch.Generator) -> Iterator[list[int]]:
        sizes = self._batch_sizes()
        if self._stratified:
            batches = self._stratified_batches(sizes, generator)
        else:
            queues = self._class_queues(generator)
            batches = [self._fill(queues, size, generator) for size in sizes]
        if not self.drop_last and len(batches) > 1:
            self._mix_tail(batches[-2], batches[-1])
        yield from batches

    def _class_queues(self, generator: torch.Generator) -> list[list[list[int]]]:
        """Per class, its examples shuffled and cut into groups of ``samples_per_class``."""
        m = self.samples_per_class
        queues: list[list[list[int]]] = []
        for indices in self.groups.values():
            shuffled = [indices[i] for i in torch.randperm(len(indices), generator=generator)]
            pieces = [shuffled[i : i + m] for i in range(0, len(shuffled), m)]
            if len(pieces) > 1 and len(pieces[-1]) == 1:  # never leave a lone example of a class
                pieces[-2].extend(pieces.pop())
            queues.append(pieces)
        return queues

    def _batch_sizes(self) -> list[int]:
        """The size of every batch of an epoch: full batches with ``drop_last``; otherwise
        ``ceil(N / batch_size)`` batches of near-equal size, so that no small last batch holds one
        or two classes (40 texts in batches of 32 are two batches of 20, not 32 + 8)."""
        if self.drop_last:
            return [self.batch_size] * max(1, self.num_examples // self.batch_size)
        count = math.ceil(self.num_examples / self.batch_size)
        size, extra = divmod(self.num_examples, count)
        return [size + 1] * extra + [size] * (count - extra)

    def _stratified_batches(self, sizes: list[int], generator: torch.Generator) -> list[list[int]]:
        """Batches that each hold a share of every class (when a batch has room for two of each).

        A class with at least two examples per batch puts ``floor(n_c / n)`` of them in every
        batch and one more in the batches with the most room; a smaller class is cut into pairs
        (a triple when odd), each in a different batch, the emptiest first.
        """
        n = len(sizes)
        room = list(sizes)
        batches: list[list[int]] = [[] for _ in sizes]
        classes = [list(indices) for indices in self.groups.values()]
        classes = [classes[i] for i in torch.randperm(len(classes), generator=generator).tolist()]
        classes = [[c[i] for i in torch.randperm(len(c), generator=generator).tolist()] for c in classes]

        def emptiest(exclude=()):
            order = torch.randperm(n, generator=generator).tolist()  # random among equals
            return sorted((j for j in order if j not in exclude), key=lambda j: -room[j])

        for examples in (c for c in classes if len(c) < 2 * n):
            units = [examples[i : i + 2] for i in range(0, len(examples), 2)]
            if len(units) > 1 and len(units[-1]) == 1:
                units[-2].extend(units.pop())
            taken: set[int] = set()
            for unit in units:
                j = (emptiest(taken) or emptiest())[0]
                batches[j].extend(unit)
                room[j] -= len(unit)
                taken.add(j)
        for examples in (c for c in classes if len(c) >= 2 * n):
            base, extra = divmod(len(examples), n)
            for j in range(n):
                batches[j].extend(examples[j * base : (j + 1) * base])
                room[j] -= base
            for position, j in enumerate(emptiest()[:extra]):
                batches[j].append(examples[n * base + position])
                room[j] -= 1
        for _ in range(4 * n):  # even out the sizes: move one example of the most repeated class
            full, light = max(range(n), key=lambda j: len(batches[j])), min(range(n), key=lambda j: len(batches[j]))
            if len(batches[full]) - len(batches[light]) <= 1:
                break
            counts = Counter(self._label_of[i] for i in batches[full])
            there = {self._label_of[i] for i in batches[light]}
            # a class with three or more here, one the light batch holds first, the most repeated next
            label = min((c for c, n_c in counts.items() if n_c >= 3), default=None,
                        key=lambda c: (c not in there, -counts[c], str(c)))
            if label is None:
                break
            moved = next(i for i in reversed(batches[full]) if self._label_of[i] == label)
            batches[full].remove(moved)
            batches[light].append(moved)
        return batches

    @staticmethod
    def _fill(queues: list[list[list[int]]], size: int, generator: torch.Generator) -> list[int]:
        """One batch of ``size`` examples taken as whole groups from the class queues.

        Classes not yet in the batch come first, the one with the most groups left before the
        others (ties broken at random), so that every class with examples left is in the batch
        when the batch has room for a group of each, and all classes run out together.
        """
        batch: list[int] = []
        used: set[int] = set()
        while len(batch) < size and any(queues):
            fresh = [c for c, q in enumerate(queues) if q and c not in used]
            candidates = fresh or [c for c, q in enumerate(queues) if q]
            most = max(len(queues[c]) for c in candidates)
            tied = [c for c in candidates if len(queues[c]) == most]
            c = tied[int(torch.randint(len(tied), (1,), generator=generator))]
            group = queues[c].pop(0)
            take = size - len(batch)
            if len(group) > take:
                if len(group) - take == 1 and c in used and take > 1:
                    take -= 1  # leave two for the next batch, not a lone example
                queues[c].insert(0, group[take:])
                group = group[:take]
            batch.extend(group)
            used.add(c)
        return batch

    def _mix_tail(self, previous: list[int], tail: list[int]) -> None:
        """Give a single-class final batch one example of another class from the batch before."""
        if len({self._label_of[i] for i in tail}) > 1:
            return
        for position, index in enumerate(previous):
            if self._label_of[index] != self._label_of[tail[0]]:
                previous[position], tail[0] = tail[0], index
                return

    def _balanced_batches(self, generator: torch.Generator) -> Iterator[list[int]]:
        queues = {label: _CyclicQueue(indices, generator) for label, indices in self.groups.items()}
        labels = list(queues)
        m = self.samples_per_class
        for _ in range(len(self)):
            batch: list[int] = []
            while len(batch) < self.batch_size:
                for c in torch.randperm(len(labels), generator=generator).tolist():
                    batch.extend(queues[labels[c]].take(min(m, self.batch_size - len(batch))))
                    if len(batch) == self.batch_size:
                        break
            yield batch

    def __len__(self) -> int:
        if self.balanced:
            return max(1, self.num_examples // self.batch_size)
        return len(self._batch_sizes())


class SemiSupervisedBatchSampler(DefaultBatchSampler):
    """Batches of labelled texts of several classes plus a set share of texts without a label (-1).

    For semi-supervised G-Loss: the labelled part of every batch is drawn as
    `ClassBalancedBatchSampler` draws it (whole groups of one class, every labelled text once per
    epoch), and ``round(unlabelled_fraction * batch_size)`` texts labelled -1 fill the rest, drawn
    in shuffled rounds from the unlabelled pool (each once before any repeats, none twice in a
    batch; a pool smaller than that share is used whole in every batch, and the batch is smaller). An epoch is one
    pass over the labelled texts, so adding unlabelled texts adds graph nodes, not steps.

    Pass the class (or `with_options`) as ``batch_sampler`` of
    `SentenceTransformerTrainingArguments`, with a loss that takes label -1
    (`GraphGuidedLoss`).

    Args:
        dataset: a ``datasets.Dataset`` whose label column holds class labels and -1.
        batch_size: texts per batch; the labelled part must hold at least 4.
        drop_last: drop the last, smaller labelled batch of an epoch.
        valid_label_columns: candidate names of the label column; the first present is used.
        generator: random generator (seeded with ``seed + epoch`` at every epoch).
        seed: base seed.
        unlabelled_fraction: share of each batch given to texts without a label, in [0, 1).
        samples_per_class: as in `ClassBalancedBatchSampler`, for the labelled part.
        balanced: as in `ClassBalancedBatchSampler`, for the labelled part.

    Examples:
        >>> from datasets import Dataset
        >>> ds = Dataset.from_dict({"text": [str(i) for i in range(16)], "label": [0] * 4 + [1] * 4 + [-1] * 8})
        >>> sampler = SemiSupervisedBatchSampler(ds, batch_size=8, unlabelled_fraction=0.5, samples_per_class=2)
        >>> [sorted(ds[b]["label"]) for b in sampler]
        [[-1, -1, -1, -1, 0, 0, 1, 1], [-1, -1, -1, -1, 0, 0, 1, 1]]
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool = False,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
        *,
        unlabelled_fraction: float = 0.5,
        samples_per_class: int | None = None,
        balanced: bool = False,
    ) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)
        if not (isinstance(unlabelled_fraction, (int, float)) and not isinstance(unlabelled_fraction, bool)
                and 0.0 <= unlabelled_fraction < 1.0):
            raise ValueError(f"unlabelled_fraction must lie in [0, 1), got {unlabelled_fraction!r}")
        labels = _label_column(dataset, valid_label_columns or DEFAULT_LABEL_COLUMNS)
        self.unlabelled = [i for i, label in enumerate(labels) if _is_unlabelled(label)]
        self.labelled = [i for i, label in enumerate(labels) if not _is_unlabelled(label)]
        self.unlabelled_per_batch = round(unlabelled_fraction * batch_size) if self.unlabelled else 0
        labelled_batch = batch_size - self.unlabelled_per_batch
        self.unlabelled_per_batch = min(self.unlabelled_per_batch, len(self.unlabelled))
        if labelled_batch < 4:
            raise ValueError(
                f"SemiSupervisedBatchSampler: batch_size {batch_size} with unlabelled_fraction {unlabelled_fraction} "
                f"leaves {labelled_batch} labelled texts per batch; at least 4 are needed (two classes x two "
                "texts): raise the batch size or lower the fraction"
            )
        if not self.labelled:
            raise ValueError("SemiSupervisedBatchSampler: the dataset has no labelled texts (every label is -1)")
        self.unlabelled_fraction = float(unlabelled_fraction)
        self._inner = ClassBalancedBatchSampler(
            dataset.select(self.labelled), batch_size=labelled_batch, drop_last=drop_last,
            valid_label_columns=valid_label_columns, generator=generator, seed=seed,
            samples_per_class=samples_per_class, balanced=balanced,
        )

    @classmethod
    def with_options(cls, *, unlabelled_fraction: float = 0.5, samples_per_class: int | None = None,
                     balanced: bool = False):
        """A factory with non-default options, for the trainer's ``batch_sampler`` argument.

        Examples:
            >>> factory = SemiSupervisedBatchSampler.with_options(unlabelled_fraction=0.75)
        """
        return functools.partial(cls, unlabelled_fraction=unlabelled_fraction, samples_per_class=samples_per_class,
                                 balanced=balanced)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self._inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        self._inner.set_epoch(self.epoch)
        generator = torch.Generator().manual_seed(int(self.seed or 0) + int(self.epoch) + 7919)
        pool = _CyclicQueue(self.unlabelled, generator) if self.unlabelled else None
        for batch in self._inner:
            mapped = [self.labelled[i] for i in batch]
            if pool is not None:
                mapped += pool.take_distinct(self.unlabelled_per_batch)
            yield mapped

    def __len__(self) -> int:
        return len(self._inner)


def _is_unlabelled(label: Any) -> bool:
    try:
        return int(label) == -1
    except (TypeError, ValueError):
        return False


class _CyclicQueue:
    """Hands out a class's indices in shuffled rounds, reshuffling when a round is used up."""

    def __init__(self, indices: Sequence[int], generator: torch.Generator) -> None:
        self.indices = list(indices)
        self.generator = generator
        self.order: list[int] = []

    def take(self, n: int) -> list[int]:
        out: list[int] = []
        while len(out) < n:
            if not self.order:
                self.order = [self.indices[i] for i in torch.randperm(len(self.indices), generator=self.generator)]
            out.append(self.order.pop())
        return out

    def take_distinct(self, n: int) -> list[int]:
        """`take`, but a round that runs out mid-call hands out the texts not yet in this call first."""
        out: list[int] = []
        while len(out) < n:
            if not self.order:
                shuffled = [self.indices[i] for i in torch.randperm(len(self.indices), generator=self.generator)]
                taken = set(out)
                self.order = [i for i in shuffled if i in taken] + [i for i in shuffled if i not in taken]
            out.append(self.order.pop())
        return out


def _label_column(dataset: Any, candidates: list[str]) -> list[Any]:
    names = getattr(dataset, "column_names", None) or []
    for name in candidates:
        if name in names:
            return list(dataset[name])
    raise ValueError(
        f"ClassBalancedBatchSampler found no label column: looked for {candidates}, the dataset has {names}; "
        "name the class column 'label'"
    )

"""ClassBalancedBatchSampler: what every batch holds, in both modes."""

from __future__ import annotations

from collections import Counter

import pytest
from datasets import Dataset

from st_gloss import ClassBalancedBatchSampler


def dataset(counts):
    labels = [c for c, n in enumerate(counts) for _ in range(n)]
    return Dataset.from_dict({"text": [str(i) for i in range(len(labels))], "label": labels})


def label_counts(ds, batch):
    return Counter(ds[batch]["label"])


@pytest.mark.parametrize("n", [300, 301, 290])
def test_epoch_mode_covers_every_example_once_and_no_batch_is_single_class(n):
    ds = dataset([n // 2, n - n // 2])
    sampler = ClassBalancedBatchSampler(ds, batch_size=32, drop_last=False, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(n))
    for batch in batches:
        counts = label_counts(ds, batch)
        assert len(counts) >= 2 and min(counts.values()) >= 1


def test_epoch_mode_groups_classes_so_many_classes_are_scored():
    ds = dataset([20] * 16)  # 16 classes: random batches of 16 would be mostly singletons
    sampler = ClassBalancedBatchSampler(ds, batch_size=16, drop_last=True, seed=0)
    for batch in sampler:
        counts = label_counts(ds, batch)
        assert all(v >= 2 for v in counts.values()) and len(counts) >= 2


def test_balanced_mode_draws_rare_classes_as_often_as_common_ones():
    ds = dataset([500, 20, 20, 20])
    sampler = ClassBalancedBatchSampler(ds, batch_size=16, drop_last=False, seed=0, samples_per_class=4, balanced=True)
    totals = Counter()
    for batch in sampler:
        assert len(batch) == 16
        totals.update(label_counts(ds, batch))
    assert len(sampler) == 560 // 16
    assert max(totals.values()) / min(totals.values()) < 1.5


def test_epochs_are_reproducible_and_differ():
    ds = dataset([40, 40, 40])
    sampler = ClassBalancedBatchSampler(ds, batch_size=12, drop_last=False, seed=3)
    first = list(sampler)
    assert first == list(sampler)
    sampler.set_epoch(1)
    assert first != list(sampler)


def test_with_options_is_a_trainer_factory():
    factory = ClassBalancedBatchSampler.with_options(samples_per_class=3, balanced=True)
    sampler = factory(
        dataset([10, 10]), batch_size=6, drop_last=False, valid_label_columns=["label"], generator=None, seed=0
    )
    assert sampler.samples_per_class == 3 and sampler.balanced


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="two classes"):
        ClassBalancedBatchSampler(dataset([10]), batch_size=8)
    with pytest.raises(ValueError, match="batch_size >= 4"):
        ClassBalancedBatchSampler(dataset([10, 10]), batch_size=2)
    no_label = Dataset.from_dict({"text": ["a", "b"], "category": [0, 1]})
    with pytest.raises(ValueError, match="no label column"):
        ClassBalancedBatchSampler(no_label, batch_size=4)


@pytest.mark.parametrize("counts,batch_size", [([8] * 6, 16), ([8] * 8, 16), ([16] * 8, 16), ([8, 7, 7, 7, 7, 7], 32),
                                                ([5] * 3, 8), ([30, 30, 30, 30], 32)])
def test_few_label_batches_hold_every_class_and_have_near_equal_sizes(counts, batch_size):
    # The few-label gap of issue 13: groups of max(4, B / C) put only B / 4 classes in a batch,
    # and 43 texts in batches of 32 made a last batch of 11 texts of one or two classes.
    ds = dataset(counts)
    sampler = ClassBalancedBatchSampler(ds, batch_size=batch_size, drop_last=False, seed=0)
    for epoch in range(5):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == -(-sum(counts) // batch_size)
        assert sorted(i for b in batches for i in b) == list(range(sum(counts)))
        sizes = [len(b) for b in batches]
        assert max(sizes) <= batch_size and max(sizes) - min(sizes) <= 1
        for batch in batches:
            per_class = label_counts(ds, batch)
            assert len(per_class) == len(counts), (epoch, sizes, per_class)
            assert min(per_class.values()) >= 2


def test_drop_last_gives_full_batches_only():
    ds = dataset([21, 21])
    sampler = ClassBalancedBatchSampler(ds, batch_size=8, drop_last=True, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 42 // 8
    assert all(len(b) == 8 for b in batches) and len({i for b in batches for i in b}) == 40


def test_default_group_size_fits_every_class_when_the_batch_has_room():
    from st_gloss.samplers import default_samples_per_class

    assert default_samples_per_class(16, 6) == 2 and default_samples_per_class(16, 8) == 2
    assert default_samples_per_class(64, 8) == 8 and default_samples_per_class(64, 2) == 32
    assert default_samples_per_class(32, 52) == 4 and default_samples_per_class(16, 10) == 4

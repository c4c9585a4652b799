"""One registry of the training losses: a name (``gloss``, ``supcon+ce``...) -> a loss builder.

A new loss is one :func:`register` call: the ``st-gloss train`` command, the benchmark runner and
the tests all read :data:`LOSSES`.

Examples:
    >>> sorted(LOSSES)[:3]
    ['batch-all-triplet', 'batch-hard-triplet', 'ce']
    >>> LOSSES["gloss+ce"].options
    ('labelled_fraction', 'sigma', 'memory_steps', 'graph_weight')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

LossOptions = dict[str, Any]
Builder = Callable[[Any, int, LossOptions], Any]  # returns a torch.nn.Module

OPTION_NAMES = ("labelled_fraction", "sigma", "graph_weight", "temperature", "margin", "memory_steps")
"""Every loss option the registry knows; a loss takes a subset (:attr:`LossSpec.options`)."""

DEFAULT_OPTIONS: LossOptions = {
    "labelled_fraction": 0.7,
    "sigma": "sqrt_median",
    "graph_weight": 0.8,
    "temperature": 0.1,
    "margin": 0.5,
    "memory_steps": None,
}
"""Defaults shared by every loss that takes the option. The triplet margin is 0.5, not
sentence-transformers' 5: MiniLM's embeddings are unit vectors, so Euclidean distances lie in
[0, 2] and a margin of 5 would keep every triplet active forever. ``memory_steps`` defaults per
loss: 0 for ``gloss`` and ``gloss+ce``, 4 for ``gloss+memory``."""


@dataclass(frozen=True)
class LossSpec:
    """One registered loss.

    Attributes:
        name: the name used on the command line (``gloss+ce``).
        build: ``build(model, num_labels, options) -> nn.Module``; ``options`` holds every name of
            :data:`OPTION_NAMES`, filled with defaults.
        options: the options this loss reads; the others are refused on the command line.
        description: one line for ``--help`` and the docs.
        calibrates_sigma: the built loss has ``calibrate_sigma`` and wants it called on the training texts.
    """

    name: str
    build: Builder
    options: tuple[str, ...]
    description: str
    calibrates_sigma: bool = False


LOSSES: dict[str, LossSpec] = {}
"""The registered losses by name."""


def register(spec: LossSpec) -> LossSpec:
    """Add a loss to :data:`LOSSES` (a name may be registered once).

    Examples:
        >>> from st_gloss.losses import InBatchCosineSimilarityLoss
        >>> build = lambda model, num_labels, options: InBatchCosineSimilarityLoss(model)
        >>> register(LossSpec("my-cosine", build, (), "demo"))  # doctest: +SKIP
    """
    unknown = set(spec.options) - set(OPTION_NAMES)
    if unknown:
        raise ValueError(f"loss {spec.name!r} declares unknown options {sorted(unknown)}; known: {OPTION_NAMES}")
    if spec.name in LOSSES:
        raise ValueError(f"a loss named {spec.name!r} is already registered")
    LOSSES[spec.name] = spec
    return spec


def build_loss(name: str, model, num_labels: int, **options: Any) -> nn.Module:
    """Build the loss called ``name`` for ``model`` and a ``num_labels``-class dataset.

    Options the loss does not read raise :class:`ValueError`, so a typo or a misplaced option
    never passes silently; options left out take :data:`DEFAULT_OPTIONS`.

    Args:
        name: a key of :data:`LOSSES`.
        model: the SentenceTransformer to fine-tune.
        num_labels: number of classes (used by the losses with a linear head).
        **options: loss options (``labelled_fraction``, ``sigma``, ``graph_weight``,
            ``temperature``, ``margin``); ``None`` values mean "default".

    Examples:
        >>> loss = build_loss("supcon", model, num_labels=2, temperature=0.05)  # doctest: +SKIP
    """
    spec = get_spec(name)
    given = {key: value for key, value in options.items() if value is not None}
    refused = sorted(set(given) - set(spec.options))
    if refused:
        readable = ", ".join(refused)
        takes = ", ".join(spec.options) or "no options"
        raise ValueError(f"loss {name!r} does not use {readable}; it takes {takes}")
    return spec.build(model, num_labels, {**DEFAULT_OPTIONS, **given})


def get_spec(name: str) -> LossSpec:
    """The :class:`LossSpec` of ``name``; :class:`ValueError` listing the names otherwise."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]


def loss_names() -> list[str]:
    """The registered names, in registration order."""
    return list(LOSSES)


def _sigma(value: Any) -> float | str:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return float(value)


def _gloss(model, num_labels: int, o: LossOptions) -> nn.Module:
    from st_gloss.losses import GraphGuidedLoss

    return GraphGuidedLoss(
        model, labelled_fraction=o["labelled_fraction"], sigma=_sigma(o["sigma"]), memory_steps=_steps(o, 0)
    )


def _gloss_memory(model, num_labels: int, o: LossOptions) -> nn.Module:
    from st_gloss.losses import GraphGuidedLoss

    return GraphGuidedLoss(
        model, labelled_fraction=o["labelled_fraction"], sigma=_sigma(o["sigma"]), memory_steps=_steps(o, 4)
    )


def _steps(o: LossOptions, default: int) -> int:
    return default if o.get("memory_steps") is None else int(o["memory_steps"])


def _gloss_ce(model, num_labels: int, o: LossOptions) -> nn.Module:
    from st_gloss.losses import GraphGuidedLoss

    return GraphGuidedLoss(
        model,
        labelled_fraction=o["labelled_fraction"],
        sigma=_sigma(o["sigma"]),
        num_labels=num_labels,
        graph_weight=o["graph_weight"],
        memory_steps=_steps(o, 0),
    )


def _ce(model, num_labels: int, o: LossOptions) -> nn.Module:
    from st_gloss.losses import LinearHeadCrossEntropyLoss

    return LinearHeadCrossEntropyLoss(model, num_labels=num_labels)


def _supcon(model, num_labels: int, o: LossOptions) -> nn.Module:
    from st_gloss.losses import SupervisedContrastiveLoss

    return SupervisedContrastiveLoss(model, temperature=o["temperature"])


def _supcon_ce(model, num_labels: int, o: LossOptions) -> nn.Module:
    from st_gloss.losses import SupervisedContrastiveLoss

    return SupervisedContrastiveLoss(
        model, temperature=o["temperature"], num_labels=num_labels, contrastive_weight=o["graph_weight"]
    )


def _batch_all(model, num_labels: int, o: LossOptions) -> nn.Module:
    from st_gloss.compat import st_losses

    return st_losses.BatchAllTripletLoss(model, margin=float(o["margin"]))


def _batch_hard(model, num_labels: int, o: LossOptions) -> nn.Module:
    from st_gloss.compat import st_losses

    return st_losses.BatchHardTripletLoss(model, margin=float(o["margin"]))


def _cosine(model, num_labels: int, o: LossOptions) -> nn.Module:
    from st_gloss.losses import InBatchCosineSimilarityLoss

    return InBatchCosineSimilarityLoss(model)


_GLOSS_OPTIONS = ("labelled_fraction", "sigma", "memory_steps")
for _spec in (
    LossSpec("gloss", _gloss, _GLOSS_OPTIONS, "G-Loss alone (standalone mode)", calibrates_sigma=True),
    LossSpec(
        "gloss+ce",
        _gloss_ce,
        (*_GLOSS_OPTIONS, "graph_weight"),
        "G-Loss + linear-head cross-entropy, one forward pass (integrated mode)",
        calibrates_sigma=True,
    ),
    LossSpec("ce", _ce, (), "cross-entropy of a linear head on the sentence embedding"),
    LossSpec("supcon", _supcon, ("temperature",), "supervised contrastive loss (Khosla et al. 2020)"),
    LossSpec(
        "supcon+ce",
        _supcon_ce,
        ("temperature", "graph_weight"),
        "SupCon + linear-head cross-entropy; graph_weight is the SupCon weight",
    ),
    LossSpec("batch-all-triplet", _batch_all, ("margin",), "sentence-transformers' BatchAllTripletLoss"),
    LossSpec("batch-hard-triplet", _batch_hard, ("margin",), "sentence-transformers' BatchHardTripletLoss"),
    LossSpec("cosine", _cosine, (), "MSE of in-batch pair cosine similarity vs. same-class indicator"),
    LossSpec(
        "gloss+memory",
        _gloss_memory,
        _GLOSS_OPTIONS,
        "G-Loss whose graph also holds the last memory_steps batches (default 4) as labelled nodes",
        calibrates_sigma=True,
    ),
):
    register(_spec)


def describe(names: Sequence[str] | None = None) -> str:
    """A ``name: description`` line per loss, for help texts."""
    return "\n".join(f"{n}: {LOSSES[n].description}" for n in (names or LOSSES))

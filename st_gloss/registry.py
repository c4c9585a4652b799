"""One registry of the training losses: a name (``gloss``, ``supcon+ce``...) -> a loss builder.

A new loss is one `register` call: the ``st-gloss train`` command, the benchmark runner and
the tests all read `LOSSES`.

Examples:
    >>> sorted(LOSSES)[:3]
    ['batch-all-triplet', 'batch-hard-triplet', 'ce']
    >>> LOSSES["gloss+ce"].options
    ('labelled_fraction', 'sigma', 'memory_steps', 'graph', 'num_neighbors', 'graph_weight')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

LossOptions = dict[str, Any]
Builder = Callable[[Any, int, LossOptions], Any]  # returns a torch.nn.Module

OPTION_NAMES = ("labelled_fraction", "sigma", "graph_weight", "temperature", "margin", "memory_steps", "graph",
                "num_neighbors")
"""Every loss option the registry knows; a loss takes a subset (`LossSpec.options`)."""

DEFAULT_OPTIONS: LossOptions = {
    "labelled_fraction": 0.7,
    "sigma": "sqrt_median",
    "graph_weight": 0.8,
    "temperature": 0.1,
    "margin": 0.5,
    "memory_steps": None,
    "graph": "dense",
    "num_neighbors": None,
}
"""Defaults shared by every loss that takes the option. The triplet margin is 0.5, not
sentence-transformers' 5: MiniLM's embeddings are unit vectors, so Euclidean distances lie in
[0, 2] and a margin of 5 would keep every triplet active forever. ``memory_steps`` defaults per
loss: 0 for ``gloss`` and ``gloss+ce``, 4 for ``gloss+memory``. ``graph`` is the paper's fully
connected graph; ``"knn"`` links each node to its ``num_neighbors`` nearest (``None``: the loss's
default, 16); ``st-gloss train --unlabelled`` picks ``"knn"`` with 10 unless told otherwise."""


@dataclass(frozen=True)
class LossSpec:
    """One registered loss.

    Attributes:
        name: the name used on the command line (``gloss+ce``).
        build: ``build(model, num_labels, options) -> nn.Module``; ``options`` holds every name of
            `OPTION_NAMES`, filled with defaults.
        options: the options this loss reads; the others are refused on the command line.
        description: one line for ``--help`` and the docs.
        calibrates_sigma: the built loss has ``calibrate_sigma`` and wants it called on the training texts.
        accepts_unlabelled: the loss takes texts labelled -1 (without a label) as graph nodes.
    """

    name: str
    build: Builder
    options: tuple[str, ...]
    description: str
    calibrates_sigma: bool = False
    accepts_unlabelled: bool = False


LOSSES: dict[str, LossSpec] = {}
"""The registered losses by name."""


def register(spec: LossSpec) -> LossSpec:
    """Add a loss to `LOSSES` (a name may be registered once).

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


def build_loss(name: str, model, num_labels: int, **options: Any):
    """Build the loss called ``name`` for ``model`` and a ``num_labels``-class dataset.

    Options the loss does not read raise `ValueError`, so a typo or a misplaced option
    never passes silently; options left out take `DEFAULT_OPTIONS`.

    Args:
        name: a key of `LOSSES`.
        model: the SentenceTransformer to fine-tune.
        num_labels: number of classes (used by the losses with a linear head).
        **options: loss options (`OPTION_NAMES`: ``labelled_fraction``, ``sigma``,
            ``graph_weight``, ``temperature``, ``margin``, ``memory_steps``, ``graph``,
            ``num_neighbors``); ``None`` values mean "default".

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
    """The `LossSpec` of ``name``; `ValueError` listing the names otherwise."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]


def _sigma(value: Any) -> float | str:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return float(value)


_CONVERT: dict[str, Callable[[Any], Any]] = {"sigma": _sigma, "memory_steps": int, "margin": float,
                                             "num_neighbors": int}
"""Options turned into the type the loss wants (``--sigma 0.5`` arrives as a string)."""


@dataclass(frozen=True)
class Recipe:
    """A builder described by data: which class, which options become which keyword arguments.

    ``Recipe("st_gloss.losses:SupervisedContrastiveLoss", (("temperature", "temperature"),
    ("graph_weight", "contrastive_weight")), num_labels=True)`` builds
    ``SupervisedContrastiveLoss(model, temperature=..., contrastive_weight=..., num_labels=...)``.

    Attributes:
        target: ``module:Class``; the module ``st_losses`` is sentence-transformers' losses
            package (through `st_gloss.compat`).
        arguments: ``(option, keyword)`` pairs, in the order the options are listed.
        num_labels: pass the dataset's class count as ``num_labels`` (losses with a linear head).
        defaults: per-loss defaults of options whose shared default is ``None`` (``memory_steps``).

    Examples:
        >>> Recipe("st_gloss.losses:InBatchCosineSimilarityLoss").options
        ()
    """

    target: str
    arguments: tuple[tuple[str, str], ...] = ()
    num_labels: bool = False
    defaults: tuple[tuple[str, Any], ...] = ()

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(option for option, _ in self.arguments)

    def __call__(self, model, num_labels: int, options: LossOptions):
        import importlib

        module, name = self.target.split(":")
        if module == "st_losses":
            from st_gloss.compat import st_losses as loaded
        else:
            loaded = importlib.import_module(module)
        values = dict(options)
        for option, default in self.defaults:
            if values.get(option) is None:
                values[option] = default
        # An option still None has no registry default: the loss's own default applies (num_neighbors).
        kwargs = {keyword: _CONVERT.get(option, lambda v: v)(values[option]) for option, keyword in self.arguments
                  if values[option] is not None}
        if self.num_labels:
            kwargs["num_labels"] = num_labels
        return getattr(loaded, name)(model, **kwargs)


_GLOSS = "st_gloss.losses:GraphGuidedLoss"
_GLOSS_ARGUMENTS = (("labelled_fraction", "labelled_fraction"), ("sigma", "sigma"), ("memory_steps", "memory_steps"),
                    ("graph", "graph"), ("num_neighbors", "num_neighbors"))
_SUPCON = "st_gloss.losses:SupervisedContrastiveLoss"

_BUILTIN = (  # name, recipe, description, calibrates sigma
    ("gloss", Recipe(_GLOSS, _GLOSS_ARGUMENTS, defaults=(("memory_steps", 0),)),
     "G-Loss alone (standalone mode)", True),
    ("gloss+ce", Recipe(_GLOSS, (*_GLOSS_ARGUMENTS, ("graph_weight", "graph_weight")), num_labels=True,
                        defaults=(("memory_steps", 0),)),
     "G-Loss + linear-head cross-entropy, one forward pass (integrated mode)", True),
    ("ce", Recipe("st_gloss.losses:LinearHeadCrossEntropyLoss", num_labels=True),
     "cross-entropy of a linear head on the sentence embedding", False),
    ("supcon", Recipe(_SUPCON, (("temperature", "temperature"),)),
     "supervised contrastive loss (Khosla et al. 2020)", False),
    ("supcon+ce", Recipe(_SUPCON, (("temperature", "temperature"), ("graph_weight", "contrastive_weight")),
                         num_labels=True),
     "SupCon + linear-head cross-entropy; graph_weight is the SupCon weight", False),
    ("batch-all-triplet", Recipe("st_losses:BatchAllTripletLoss", (("margin", "margin"),)),
     "sentence-transformers' BatchAllTripletLoss", False),
    ("batch-hard-triplet", Recipe("st_losses:BatchHardTripletLoss", (("margin", "margin"),)),
     "sentence-transformers' BatchHardTripletLoss", False),
    ("cosine", Recipe("st_gloss.losses:InBatchCosineSimilarityLoss"),
     "MSE of in-batch pair cosine similarity vs. same-class indicator", False),
    ("gloss+memory", Recipe(_GLOSS, _GLOSS_ARGUMENTS, defaults=(("memory_steps", 4),)),
     "G-Loss whose graph also holds the last memory_steps batches (default 4) as labelled nodes", True),
)
for _name, _recipe, _description, _calibrates in _BUILTIN:
    # The G-Loss recipes (those that calibrate sigma) take texts without a label; the others refuse -1.
    register(LossSpec(_name, _recipe, _recipe.options, _description, calibrates_sigma=_calibrates,
                      accepts_unlabelled=_recipe.target == _GLOSS))


def describe(names: Sequence[str] | None = None) -> str:
    """A ``name: description`` line per loss, for help texts."""
    return "\n".join(f"{n}: {LOSSES[n].description}" for n in (names or LOSSES))

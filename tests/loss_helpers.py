"""Test data and reference formulas shared by the loss tests (a helper module, not a test module).

Imported as ``from loss_helpers import ...``: ``tests/conftest.py`` puts this folder on ``sys.path``,
as it does for ``tiny_model``. Test modules import from here, never from each other.
"""

from __future__ import annotations

import numpy as np
import torch

from st_gloss.masking import stratified_labelled_mask


class FakeModel(torch.nn.Module):
    """Stands in for a SentenceTransformer where only the embedding size matters."""

    def __init__(self, dimension: int = 4) -> None:
        super().__init__()
        self.dimension = dimension

    def get_embedding_dimension(self):
        return self.dimension


def clusters(seed=0, n=6, classes=3, dim=4, dtype=torch.float32):
    """``classes`` Gaussian clusters of ``n`` points each (torch), with their labels 0..classes-1.

    Examples:
        >>> x, y = clusters(n=2, classes=2)
        >>> tuple(x.shape), y.tolist()
        ((4, 4), [0, 0, 1, 1])
    """
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g) * 2
    x = torch.cat([c + 0.5 * torch.randn(n, dim, generator=g) for c in centres]).to(dtype)
    return x, torch.arange(classes).repeat_interleave(n)


def clustered(n_per_class=6, num_classes=3, dim=8, spread=0.35, seed=0):
    """Gaussian clusters as numpy arrays ``(x, y)``, float64 embeddings and int labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_classes, dim))
    x = np.concatenate([c + spread * rng.normal(size=(n_per_class, dim)) for c in centres])
    y = np.repeat(np.arange(num_classes), n_per_class)
    return x, y


def fixed_mask(y, seed=0, fraction=0.5):
    """The stratified labelled mask of ``y`` drawn with a seeded generator, as a numpy bool array."""
    return stratified_labelled_mask(torch.as_tensor(y), fraction, torch.Generator().manual_seed(seed)).numpy()


def numpy_harmonic(x, y, mask, sigma, num_classes):
    """Zhu & Ghahramani's harmonic solution, written out in numpy."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    w = np.exp(-d2 / (2 * sigma**2))
    np.fill_diagonal(w, 0.0)
    p = w / w.sum(axis=1, keepdims=True)
    u, lab = ~mask, mask
    y_l = np.eye(num_classes)[y[lab]]
    return np.linalg.solve(np.eye(u.sum()) - p[np.ix_(u, u)], p[np.ix_(u, lab)] @ y_l)


def numpy_symmetric_transition(x, sigma):
    """The authors' normalisation: D^-1/2 W D^-1/2, then columns, then rows sum to one."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    w = np.exp(-d2 / (2 * sigma**2))
    np.fill_diagonal(w, 0.0)
    d = w.sum(axis=1)
    a = w / np.sqrt(np.outer(d, d))
    a = a / a.sum(axis=0, keepdims=True)
    return a / a.sum(axis=1, keepdims=True)

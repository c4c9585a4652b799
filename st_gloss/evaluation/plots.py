"""A 2-D picture of an embedding space: t-SNE (or PCA), one colour per class, saved as PNG.

Uses matplotlib's Agg canvas directly, so it never touches the global backend and works
without a display.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from st_gloss.errors import InputError
from st_gloss.evaluation.knn import _as_labels, normalize_embeddings
from st_gloss.evaluation.silhouette import stratified_sample


def project_2d(embeddings, *, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """Project ``(n, dim)`` embeddings to ``(n, 2)`` with t-SNE (cosine) or PCA.

    Args:
        embeddings: array or tensor.
        method: ``"tsne"`` (neighbourhoods; about 30 s for 2000 points on 2 cores) or
            ``"pca"`` (linear; instant).
        seed: random state of t-SNE.

    Examples:
        >>> project_2d(np.random.default_rng(0).normal(size=(50, 8)), method="pca").shape
        (50, 2)
    """
    vectors = normalize_embeddings(embeddings)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(vectors)
    if method == "tsne":
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        perplexity = float(min(30.0, max(2.0, (len(vectors) - 1) / 3)))
        tsne = TSNE(n_components=2, metric="cosine", init="pca", perplexity=perplexity,
                    random_state=seed)
        # One OpenMP thread: on busy machines the Barnes-Hut threads spin-wait for each other
        # (a 90-point map took minutes instead of a second), and the result stays reproducible.
        with threadpool_limits(limits=1, user_api="openmp"):
            return tsne.fit_transform(vectors)
    raise InputError(f"projection method must be 'tsne' or 'pca', got {method!r}")


def plot_embedding_spaces(
    panels: Sequence[tuple[str, object]],
    labels,
    path: str | os.PathLike,
    *,
    label_names: Sequence[str] | None = None,
    method: str = "tsne",
    max_points: int = 2000,
    seed: int = 0,
    title: str | None = None,
) -> str:
    """Save a PNG with one 2-D scatter panel per model, points coloured by class.

    Above ``max_points`` a stratified seeded sample is drawn (the same points in every panel).

    Args:
        panels: ``(panel title, embeddings)`` pairs; all embeddings of the same texts.
        labels: label id per text.
        path: the PNG file to write.
        label_names: class names for the legend (shown up to 20 classes).
        method: ``"tsne"`` or ``"pca"``.
        max_points: points drawn per panel.
        seed: seed of the sample and of t-SNE.
        title: figure title.

    Returns:
        The path written.

    Examples:
        >>> plot_embedding_spaces([("MiniLM", test_embeddings)], test_labels, "space.png")  # doctest: +SKIP
        'space.png'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not panels:
        raise InputError("nothing to plot: give at least one set of embeddings")
    n = len(panels[0][1])
    labels = _as_labels(labels, "labels", n)
    rows = stratified_sample(labels, max_points, seed) if n > max_points else np.arange(n)
    classes = np.unique(labels[rows])
    figure = Figure(figsize=(6 * len(panels), 5.5), dpi=110)
    FigureCanvasAgg(figure)
    import matplotlib

    cmap = matplotlib.colormaps["tab20" if len(classes) > 10 else "tab10"]
    colours = [cmap(i % cmap.N) for i in range(len(classes))]
    for position, (panel_title, embeddings) in enumerate(panels, start=1):
        if len(embeddings) != n:
            raise InputError("every panel must embed the same texts (same number of rows)")
        points = project_2d(np.asarray(normalize_embeddings(embeddings))[rows], method=method,
                            seed=seed)
        axes = figure.add_subplot(1, len(panels), position)
        for colour, label in zip(colours, classes):
            mask = labels[rows] == label
            name = label_names[label] if label_names is not None else str(label)
            axes.scatter(points[mask, 0], points[mask, 1], s=6, alpha=0.7, color=colour, label=name)
        axes.set_title(panel_title, fontsize=10)
        axes.set_xticks([])
        axes.set_yticks([])
    if len(classes) <= 20:
        figure.axes[-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7,
                               markerscale=2, frameon=False)
    figure.suptitle(title or f"{'t-SNE' if method == 'tsne' else 'PCA'} of {len(rows)} texts, coloured by class")
    figure.tight_layout()
    figure.savefig(os.fspath(path))
    return os.fspath(path)

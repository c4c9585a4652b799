"""The 2-D picture: a PNG with one panel per model."""

from __future__ import annotations

import numpy as np
import pytest

from st_gloss.errors import InputError
from st_gloss.evaluation.plots import plot_embedding_spaces, project_2d


def test_tsne_picture_with_two_panels(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 90)
    points = rng.normal(size=(90, 16)) + np.eye(16)[labels] * 4
    path = plot_embedding_spaces([("a", points), ("b", points[:, ::-1])], labels, tmp_path / "s.png",
                                 label_names=["x", "y", "z"], max_points=60)
    data = (tmp_path / "s.png").read_bytes()
    assert path.endswith("s.png") and data[:4] == b"\x89PNG" and len(data) > 10_000
    assert project_2d(points, method="pca").shape == (90, 2)


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="tsne' or 'pca"):
        project_2d(np.zeros((5, 3)), method="umap")
    with pytest.raises(InputError, match="same texts"):
        plot_embedding_spaces([("a", np.ones((4, 2))), ("b", np.ones((3, 2)))], [0, 1, 0, 1],
                              tmp_path / "x.png", method="pca")

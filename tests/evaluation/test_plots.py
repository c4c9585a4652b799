"""The 2-D picture: a PNG with one panel per model."""

from __future__ import annotations

import numpy as np
import pytest

from st_gloss.errors import InputError
from st_gloss.evaluation.plots import plot_embedding_spaces, project_2d


def _class_pixels(path, rgb, alpha=0.7) -> int:
    """Pixels of the PNG painted in ``rgb`` at the scatter's alpha over the white background."""
    from matplotlib.image import imread

    image = imread(str(path))[..., :3]
    blended = alpha * np.asarray(rgb[:3]) + (1 - alpha)
    return int((np.abs(image - blended).max(axis=2) < 0.02).sum())


def test_tsne_picture_with_two_panels_one_colour_per_class(tmp_path):
    import matplotlib

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 90)
    points = rng.normal(size=(90, 16)) + np.eye(16)[labels] * 4
    path = plot_embedding_spaces([("a", points), ("b", points[:, ::-1])], labels, tmp_path / "s.png",
                                 label_names=["x", "y", "z"], max_points=60)
    data = (tmp_path / "s.png").read_bytes()
    assert path.endswith("s.png") and data[:4] == b"\x89PNG"
    # Three classes: the first three tab10 colours are drawn, the fourth and fifth are not.
    tab10 = matplotlib.colormaps["tab10"]
    painted = [_class_pixels(path, tab10(i)) for i in range(5)]
    assert all(count > 50 for count in painted[:3]) and painted[3:] == [0, 0], painted


def test_pca_projection_equals_an_svd_of_the_normalised_embeddings():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(40, 6)) * [5, 3, 1, 1, 1, 1]
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    centred = unit - unit.mean(axis=0)
    _, _, directions = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ directions[:2].T
    got = project_2d(points, method="pca")
    signs = np.sign((got * expected).sum(axis=0))  # each axis is defined up to its sign
    np.testing.assert_allclose(got * signs, expected, atol=1e-5)  # float32 normalisation


def test_tsne_keeps_separated_classes_apart():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1, 2], 20)
    points = rng.normal(size=(60, 16)) * 0.1 + np.eye(16)[labels] * 4
    xy = project_2d(points, method="tsne")
    # Every point's nearest neighbour in the picture is of its own class.
    distances = np.linalg.norm(xy[:, None] - xy[None], axis=2) + np.eye(60) * 1e9
    assert (labels[distances.argmin(axis=1)] == labels).all()


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="tsne' or 'pca"):
        project_2d(np.zeros((5, 3)), method="umap")
    with pytest.raises(InputError, match="same texts"):
        plot_embedding_spaces([("a", np.ones((4, 2))), ("b", np.ones((3, 2)))], [0, 1, 0, 1],
                              tmp_path / "x.png", method="pca")

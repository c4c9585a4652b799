"""Tutorial 5: what sigma and the labelled fraction do to one batch, before any training.

For one batch of embeddings from the untrained model, this prints the sigma of each rule, then the
G-Loss and the accuracy of the propagated labels on the hidden texts for several sigmas and
labelled fractions. It trains nothing: it shows how the options shape the graph the loss sees.

Run from the repository root: ``python docs/tutorials/05_choosing_options.py``.
"""

import csv

import torch

from st_gloss.evaluation.models import load_model
from st_gloss.functional import graph_loss, propagate_labels
from st_gloss.masking import stratified_labelled_mask
from st_gloss.evaluation.samples import sample_path
from st_gloss.sigma import dicm_sigma, sqrt_median_sigma

BATCH = 128

with open(sample_path("r8") / "train.csv", newline="", encoding="utf-8") as handle:
    rows = list(csv.DictReader(handle))
names = sorted({r["label"] for r in rows})
# A batch with the same number of texts of every class, as ClassBalancedBatchSampler would draw.
per_class = BATCH // len(names)
batch = [r for name in names for r in [row for row in rows if row["label"] == name][:per_class]]
labels = torch.tensor([names.index(r["label"]) for r in batch])

model = load_model(device="cpu", max_seq_length=128)
embeddings = model.encode([r["text"] for r in batch], convert_to_tensor=True, normalize_embeddings=True).cpu()

rules = {"sqrt_median": float(sqrt_median_sigma(embeddings)), "dicm": float(dicm_sigma(embeddings, labels))}
print(f"batch of {len(batch)} texts, {len(names)} classes")
for rule, value in rules.items():
    print(f"sigma rule {rule:>11}: {value:.3f}")


def probe(sigma: float, labelled_fraction: float) -> tuple[float, float]:
    """G-Loss of the batch and the accuracy of the propagated labels on its hidden texts."""
    mask = stratified_labelled_mask(labels, labelled_fraction, torch.Generator().manual_seed(0))
    loss = graph_loss(embeddings, labels, mask, sigma, num_classes=len(names))
    probabilities = propagate_labels(embeddings, labels, mask, sigma, len(names))
    accuracy = (probabilities.argmax(dim=1) == labels[~mask]).float().mean()
    return float(loss), float(accuracy)


print("\nsigma          loss   hidden-label accuracy   (labelled fraction 0.7)")
for name, sigma in [*rules.items(), ("0.05", 0.05), ("0.2", 0.2), ("0.8", 0.8)]:
    loss, accuracy = probe(sigma, 0.7)
    print(f"{name:>11}  {loss:7.3f}   {accuracy:.3f}")

print("\nlabelled fraction   loss   hidden-label accuracy   (sigma sqrt_median)")
for fraction in (0.3, 0.5, 0.7, 0.9):
    loss, accuracy = probe(rules["sqrt_median"], fraction)
    print(f"{fraction:>17}  {loss:6.3f}   {accuracy:.3f}")

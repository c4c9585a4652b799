"""Tutorial 8: train a classifier, predict new texts, save it and load it back.

Run from the repository root: ``python docs/tutorials/08_classify.py``.
"""

import numpy as np

from st_gloss import TextClassifier
from st_gloss.evaluation import load_data
from st_gloss.evaluation.models import load_model
from st_gloss.training import TrainConfig, train

# 1. Train: G-Loss with a linear head (the paper's integrated mode) on the bundled MR sample.
#    The output folder keeps the best epoch as a classifier: model, label names, heads.
config = TrainConfig(data="sample:mr", loss="gloss+ce", output="tutorial-output/classifier", epochs=2,
                     overwrite=True, show_progress_bar=False)
metrics = train(config, echo=lambda line: None)
print(f"best epoch {metrics['best_epoch']}; heads {metrics['classifier']['heads']}, "
      f"default {metrics['classifier']['default_head']}")
for head in metrics["classifier"]["heads"]:
    print(f"test accuracy of the {head} head: {metrics['test'][f'head_{head}_accuracy']:.3f}")

# 2. Load it and classify new texts: label names come back, probabilities follow classifier.labels.
classifier = TextClassifier.from_pretrained("tutorial-output/classifier")
texts = [
    "a tender, funny and wonderfully acted film",
    "two hours of clichés and wooden dialogue",
]
labels = classifier.predict(texts)
probabilities = classifier.predict_proba(texts)
for text, label, row in zip(texts, labels, probabilities):
    print(f"{label:<9} {row.max():.2f}  {text}")
print("propagation head:", classifier.predict(texts, head="propagation"))

# 3. Any SentenceTransformer gets a head: fit a logistic head on frozen embeddings, save, load.
data = load_data("sample:mr")
train_split, test_split = data["train"], data["test"]
names = [data.label_names[i] for i in train_split.labels]
plain = TextClassifier(load_model(), head="logistic").fit(train_split.texts, names)
plain.save_pretrained("tutorial-output/untrained-logistic")
again = TextClassifier.from_pretrained("tutorial-output/untrained-logistic")
truth = np.array([data.label_names[i] for i in test_split.labels])
for name, model in (("untrained model + logistic head", again), ("G-Loss model, default head", classifier)):
    accuracy = float(np.mean(np.array(model.predict(test_split.texts)) == truth))
    print(f"{name}: test accuracy {accuracy:.3f}")

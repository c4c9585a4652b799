from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

from evaluation.models import load_model
from st_gloss import ClassBalancedBatchSampler, GraphGuidedLoss

model = load_model()  # bundled all-MiniLM-L6-v2
train = Dataset.from_dict(
    {
        "text": ["a gripping film", "dull and long", "loved it", "a waste of time"] * 8,
        "label": [1, 0, 1, 0] * 8,
    }
)
loss = GraphGuidedLoss(model, labelled_fraction=0.7, sigma="sqrt_median")
loss.calibrate_sigma(train["text"])  # fix sigma on the training set, as the paper does
args = SentenceTransformerTrainingArguments(
    output_dir="gloss-model",
    num_train_epochs=1,
    per_device_train_batch_size=16,
    batch_sampler=ClassBalancedBatchSampler,
)
trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss)
trainer.train()
model.save("gloss-model/final")

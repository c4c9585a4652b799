"""A tiny random BERT sentence-transformer, built on the fly so tests need no download."""

from __future__ import annotations

import inspect
from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Enough real words that the bundled samples do not tokenize to all-[UNK].
WORDS = (
    "the a an and or of to in on for with is was are be it this that film movie story good bad "
    "great best worst funny dull boring love hate fun not no very too much more less one two "
    "oil price trade bank rate share profit loss said year market company dlrs pct mln stock "
    "he she they we you i its his her their who what cat dog sport game team won lost play "
    "money interest ship grain crude earn acq rise fall up down new old"
).split()


def build_tiny_model(path: str | Path, hidden_size: int = 32, max_seq_length: int = 32):
    """Write a 2-layer random BERT with its tokenizer to ``path`` and load it as a SentenceTransformer."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?'-")
    vocab = SPECIAL + chars + ["##" + c for c in chars] + WORDS
    vocab = list(dict.fromkeys(vocab))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters:  # transformers >= 5
        tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    else:
        tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(str(path))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=128,  # the tutorials ask for 128 tokens
    )
    BertModel(config).save_pretrained(str(path))
    model = SentenceTransformer(str(path), device="cpu")
    model.max_seq_length = max_seq_length
    return model


def simple_corpus(n_per_class: int = 8, seed: int = 0) -> tuple[list[str], list[int]]:
    """Short texts of three classes whose words are in the tiny vocabulary."""
    import random

    rng = random.Random(seed)
    topics = [
        "film movie story funny great love best fun".split(),
        "oil price trade bank rate share profit market".split(),
        "cat dog sport game team won lost play".split(),
    ]
    texts, labels = [], []
    for label, words in enumerate(topics):
        for _ in range(n_per_class):
            texts.append(" ".join(rng.choice(words) for _ in range(6)))
            labels.append(label)
    return texts, labels


def write_split(folder: str | Path, split: str, texts, labels) -> Path:
    """Write ``folder/<split>.csv`` with a ``text,label`` header; the path."""
    import csv

    path = Path(folder) / f"{split}.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels))
    return path

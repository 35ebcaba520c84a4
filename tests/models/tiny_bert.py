"""A tiny BERT built from a config and saved locally with a small WordPiece vocabulary written here (no model hub).

The vocabulary holds BERT's special tokens, punctuation, letters and digits (alone and as ``##`` continuations, so
any word of letters and digits splits into pieces) and the most frequent words of the given texts.
"""

from __future__ import annotations

import collections
import string
from pathlib import Path

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def vocabulary(texts: list[str], n_words: int = 300) -> list[str]:
    chars = list(string.ascii_lowercase + string.digits)
    counts = collections.Counter(w for t in texts for w in t.lower().split() if w.isalpha() and len(w) > 1)
    words = [w for w, _ in counts.most_common(n_words)]
    return [*SPECIALS, *string.punctuation, *chars, *(f"##{c}" for c in chars), *words]


def build_tiny_bert(folder: Path, texts: list[str], *, hidden: int = 32, seed: int = 0) -> Path:
    """Save a one-layer BERT of width ``hidden`` and its tokenizer (vocab.txt) in ``folder``; returns the folder."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary(texts)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True, model_max_length=128).save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    return folder

"""A tiny, randomly initialised transformers CLIPModel and its character tokenizer, built offline from a config."""

from __future__ import annotations

import string
from typing import Any

import torch
from tests.requirements import require_module


def char_vocab(alphabet: str = string.ascii_lowercase + string.digits + ".,:") -> dict[str, int]:
    """One token per character (word-final and not) plus CLIP's start and end tokens."""
    vocab: dict[str, int] = {}
    for suffix in ("", "</w>"):
        for c in alphabet:
            vocab[c + suffix] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


def build_tiny_clip(width: int = 32, image_size: int = 32, max_len: int = 24, projection_dim: int = 16) -> Any:
    """``(CLIPModel, CLIPTokenizer)``: two layers per tower of ``width`` units, seeded."""
    transformers = require_module("transformers")
    vocab = char_vocab()
    tokenizer = transformers.CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_len)
    towers = dict(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2, num_attention_heads=2)
    cfg = transformers.CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            max_position_embeddings=max_len,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
            **towers,
        ),
        vision_config=dict(image_size=image_size, patch_size=8, **towers),
        projection_dim=projection_dim,
    )
    torch.manual_seed(0)
    return transformers.CLIPModel(cfg).eval(), tokenizer

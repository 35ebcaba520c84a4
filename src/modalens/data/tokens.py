"""Token modalities from texts: word pieces through a tokenizer, and the map from pieces back to words.

A token modality (:class:`~modalens.data.dataset.Modality` with ``tokens=``) holds token ids ``[N, T]`` with an
attention mask. :func:`tokenize` builds one from raw texts with any transformers tokenizer (BERT's WordPiece, CLIP's
BPE, SentencePiece ...): each text is split on whitespace into words, the words are tokenized together
(``is_split_into_words=True``), and the tokenizer's ``word_ids()`` say which word each piece belongs to. A word's
attribution is then the sum of its pieces' (:mod:`modalens.interactions.attribution`).

Tokenizers are duck-typed: nothing here imports transformers unless a folder name is given instead of a tokenizer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modalens.data.dataset import DatasetError, Modality, TokenSpec


def load_tokenizer(tokenizer: Any) -> Any:
    """A tokenizer object as given, or loaded from a local folder with transformers' ``AutoTokenizer`` (offline)."""
    if isinstance(tokenizer, str | os.PathLike):
        folder = Path(tokenizer).expanduser()
        if not folder.is_dir():
            raise DatasetError(f"tokenizer: folder {folder} does not exist (give a local tokenizer folder or object)")
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise DatasetError("tokenizer: loading a tokenizer folder needs transformers") from exc
        try:
            return AutoTokenizer.from_pretrained(str(folder))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"tokenizer: {folder} holds no readable tokenizer ({exc})") from exc
    if not callable(tokenizer) or not hasattr(tokenizer, "convert_ids_to_tokens"):
        raise DatasetError(
            f"tokenizer: expected a transformers tokenizer (or a folder of one), got {type(tokenizer).__name__}"
        )
    return tokenizer


def token_spec(tokenizer: Any) -> TokenSpec:
    """The :class:`TokenSpec` of a transformers tokenizer: padding, ``[MASK]`` and the special ids.

    Special ids are the tokenizer's ``[CLS]``/``[SEP]``/BOS/EOS/padding/``[MASK]`` and additional special tokens;
    ``[UNK]`` is not special (it stands for a real word). A tokenizer without a padding token pads with its EOS.
    """
    tok = load_tokenizer(tokenizer)

    def tid(name: str) -> int | None:
        value = getattr(tok, name, None)
        return int(value) if isinstance(value, int | np.integer) and not isinstance(value, bool) else None

    specials = {tid(k) for k in ("cls_token_id", "sep_token_id", "bos_token_id", "eos_token_id", "mask_token_id")}
    extra = getattr(tok, "additional_special_tokens_ids", None) or []
    specials |= {int(i) for i in extra}
    pad = tid("pad_token_id")
    if pad is None:
        pad = tid("eos_token_id")
    if pad is None:
        raise DatasetError(f"tokenizer {type(tok).__name__} has neither a padding nor an end-of-text token")
    unk = tid("unk_token_id")
    if unk is not None and unk not in {
        tid(k) for k in ("cls_token_id", "sep_token_id", "bos_token_id", "eos_token_id")
    }:
        specials.discard(unk)
    specials.discard(None)
    size = len(tok) if hasattr(tok, "__len__") else getattr(tok, "vocab_size", None)
    name = getattr(tok, "name_or_path", None) or type(tok).__name__
    return TokenSpec(
        pad_id=pad,
        mask_id=tid("mask_token_id"),
        special_ids=tuple(sorted(i for i in specials if i is not None)),
        vocab_size=int(size) if size else None,
        tokenizer=Path(str(name)).name or str(name),
    )


def tokenize(
    texts: Sequence[str],
    tokenizer: Any,
    *,
    name: str = "text",
    kind: str = "text",
    max_length: int | None = None,
) -> Modality:
    """A token modality from raw texts: ids, attention mask, pieces, piece -> word map and words.

    Parameters
    ----------
    texts
        N raw texts; each is split on whitespace into words.
    tokenizer
        A transformers tokenizer (fast or slow) or a local folder holding one.
    name, kind
        The modality's name and kind.
    max_length
        Truncate longer texts to this many tokens (special tokens included); default: the tokenizer's
        ``model_max_length`` when it is a sane number, else no truncation.

    Returns
    -------
    Modality
        ``values`` int64 ``[N, T]`` (T = the longest text, padded with the padding id), ``mask`` the attention
        mask, ``words`` the pieces, ``word_index`` and ``word_texts`` the whitespace words (a word cut off by
        truncation is left out).
    """
    tok = load_tokenizer(tokenizer)
    spec = token_spec(tok)
    if isinstance(texts, str):
        raise DatasetError("texts: expected a list of strings, got a single str")
    limit = max_length
    if limit is None:
        model_max = getattr(tok, "model_max_length", None)
        limit = int(model_max) if isinstance(model_max, int) and 0 < model_max < 100_000 else None
    rows: list[tuple[list[int], list[int]]] = []
    word_lists: list[list[str]] = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DatasetError(f"texts[{i}]: expected a string, got {type(text).__name__}")
        words = text.split()
        ids, owners = _encode_words(tok, words, limit)
        kept = sorted({w for w in owners if w >= 0})
        renumber = {w: k for k, w in enumerate(kept)}
        rows.append((ids, [renumber[w] if w >= 0 else -1 for w in owners]))
        word_lists.append([words[w] for w in kept])
    t = max([len(ids) for ids, _ in rows] + [1])
    n = len(rows)
    values = np.full((n, t), spec.pad_id, dtype=np.int64)
    mask = np.zeros((n, t), dtype=bool)
    index = np.full((n, t), -1, dtype=np.int64)
    for i, (ids, owners) in enumerate(rows):
        values[i, : len(ids)] = ids
        mask[i, : len(ids)] = True
        index[i, : len(ids)] = owners
    # a piece that the tokenizer counts as a word's but whose id is special (rare) plays no part
    index[spec.is_special(values)] = -1
    pieces = [[str(p) for p in tok.convert_ids_to_tokens(row.tolist())] for row in values]
    pieces = [[p if real else "" for p, real in zip(row, m, strict=True)] for row, m in zip(pieces, mask, strict=True)]
    index, word_lists = _compact(index, word_lists)
    return Modality(
        name=name,
        kind=kind,
        values=values,
        mask=mask,
        words=pieces,
        tokens=spec,
        word_index=index,
        word_texts=word_lists,
    )


def _encode_words(tok: Any, words: list[str], limit: int | None) -> tuple[list[int], list[int]]:
    """Token ids of one text's words and, per piece, the word it belongs to (-1 for special tokens)."""
    options: dict[str, Any] = {"is_split_into_words": True, "add_special_tokens": True}
    if limit is not None:
        options.update(truncation=True, max_length=limit)
    try:
        enc = tok(words, **options)
        ids = [int(i) for i in enc["input_ids"]]
        owners = enc.word_ids()
        return ids, [-1 if w is None else int(w) for w in owners]
    except (ValueError, TypeError, AttributeError, NotImplementedError):
        pass  # a slow tokenizer without word_ids(): tokenize word by word
    ids, owners = [], []
    for w, word in enumerate(words):
        pieces = tok.convert_tokens_to_ids(tok.tokenize(word))
        ids.extend(int(p) for p in pieces)
        owners.extend([w] * len(pieces))
    full = [int(i) for i in tok.build_inputs_with_special_tokens(ids)]
    special = tok.get_special_tokens_mask(full, already_has_special_tokens=True)
    out, k = [], 0
    for flag in special:
        if flag:
            out.append(-1)
        else:
            out.append(owners[k])
            k += 1
    if limit is not None and len(full) > limit:
        full, out = full[: limit - 1] + full[-1:], out[: limit - 1] + out[-1:]
    return full, out


def _compact(index: np.ndarray, words: list[list[str]]) -> tuple[np.ndarray, list[list[str]]]:
    """Renumber each instance's words 0, 1, 2 ... over the pieces still playing (drops words with no piece)."""
    out = np.full(index.shape, -1, dtype=np.int64)
    texts = []
    for i, row in enumerate(index):
        seen: dict[int, int] = {}
        for s in np.flatnonzero(row >= 0):
            seen.setdefault(int(row[s]), len(seen))
            out[i, s] = seen[int(row[s])]
        texts.append([words[i][w] for w in seen])
    return out, texts


def pieces_of(ids: np.ndarray, tokenizer: Any) -> list[list[str]]:
    """The word pieces of ``[N, T]`` token ids, through the tokenizer (``convert_ids_to_tokens``)."""
    tok = load_tokenizer(tokenizer)
    return [[str(p) for p in tok.convert_ids_to_tokens([int(i) for i in row])] for row in np.asarray(ids)]

"""Write a dataset in MMSA's pickle layout, so that MMSA's own data loader and models read it.

MMSA (thuiar/MMSA) reads one pickled dict of splits (``train``, ``valid``, ``test``), each a dict of arrays:
``raw_text``, ``id``, ``text`` (features ``[N, L, D]``) and/or ``text_bert`` (``[N, 3, L]``: token ids, attention
mask, segment ids), ``audio`` ``[N, T_a, D_a]``, ``vision`` ``[N, T_v, D_v]``, ``regression_labels`` ``[N]`` and,
for its unaligned files, ``audio_lengths`` and ``vision_lengths`` (the first ``length`` steps are real).
:func:`save_mmsa` writes that layout from a :class:`~modalens.data.dataset.MultimodalDataset`;
:func:`~modalens.data.mmsa.load_mmsa` reads it back (``save_dataset(ds, "x.pkl")`` calls this module too).

Text
----
- A token modality (ids with a :class:`~modalens.data.dataset.TokenSpec`) becomes ``text_bert``: its ids, its step
  mask as the attention mask and its segment ids (0 without them). No ``text`` features are written.
- A feature modality becomes ``text``. With ``tokenizer=`` its words are also tokenized into ``text_bert``, for
  MMSA's BERT-based models. MMSA's files hold one text step per piece in both fields (``text`` are BERT's states
  of the pieces), so the features are then spread onto the pieces: each piece carries its word's features, special
  tokens and padding zeros. This needs the modality's words (one per real step).

Audio and vision are written as they are; their lengths when every instance's real steps come first (else the file
is in the aligned layout, without lengths, and the loader finds padding from all-zero steps). Per-instance ``meta``
columns become extra fields, as MMSA's own extra fields (``annotations`` ...) load into ``meta``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modalens._core.atomic import write_atomically
from modalens.data.dataset import DatasetError, Modality, MultimodalDataset

RESERVED = frozenset(
    {
        "raw_text",
        "id",
        "text",
        "text_bert",
        "audio",
        "vision",
        "audio_lengths",
        "vision_lengths",
        "regression_labels",
        "classification_labels",
    }
)


def save_mmsa(
    dataset: MultimodalDataset,
    path: str | os.PathLike,
    *,
    text: str = "text",
    audio: str = "audio",
    vision: str = "vision",
    tokenizer: Any = None,
    max_length: int | None = None,
    splits: Sequence[str] | None = None,
) -> Path:
    """Write ``dataset`` as an MMSA pickle (module docstring); returns the path.

    Parameters
    ----------
    dataset
        A dataset with labels, ids and splits (or ``splits=``) and the three modalities.
    path
        The ``.pkl`` file to write (atomically).
    text, audio, vision
        The dataset's names for MMSA's three modalities.
    tokenizer
        A transformers tokenizer (or a local folder of one) to write ``text_bert`` from a feature text modality's
        words; ignored for a token modality, which is written as ``text_bert`` itself.
    max_length
        With ``tokenizer``: pad (and truncate) ``text_bert`` to this many pieces, as MMSA's files do (50 for
        MOSI/MOSEI); default the longest instance.
    splits
        A split name per instance (``train``, ``valid``, ``test``) when the dataset has none, or to override them.
    """
    target = Path(path)
    n = len(dataset)
    if dataset.labels is None:
        raise DatasetError(f"{target}: MMSA's files hold labels (regression_labels); the dataset has none")
    names = list(splits) if splits is not None else dataset.splits
    if names is None:
        raise DatasetError(
            f"{target}: MMSA's files hold splits (train, valid, test); the dataset has none, so give splits="
        )
    names = [str(s) for s in names]
    if len(names) != n:
        raise DatasetError(f"{target}: splits= has {len(names)} names for {n} instances")
    for role, name in (("text", text), ("audio", audio), ("vision", vision)):
        if name not in dataset.modalities:
            raise DatasetError(
                f"{target}: the dataset has no modality {name!r} for MMSA's {role} (it has {list(dataset.modalities)})"
            )
        if role != "text" and dataset[name].values.ndim != 3:
            raise DatasetError(f"{target}: MMSA's {role} holds features [N, T, D]; {name!r} does not")

    fields: dict[str, np.ndarray] = {}
    words = _text_fields(dataset[text], tokenizer, max_length, target, fields)
    texts = dataset.texts if dataset.texts is not None else [" ".join(w) for w in words]
    fields["raw_text"] = np.array([str(t) for t in texts], dtype=object)
    fields["id"] = np.array([str(i) for i in dataset.ids], dtype=object)
    for role, name in (("audio", audio), ("vision", vision)):
        modality = dataset[name]
        fields[role] = np.ascontiguousarray(modality.values, dtype=np.float32)
        mask = modality.step_mask()
        lengths = mask.sum(axis=1)
        if (mask == (np.arange(mask.shape[1])[None, :] < lengths[:, None])).all():
            fields[f"{role}_lengths"] = lengths.astype(np.int64)
    if dataset.label_kind == "classification":
        fields["classification_labels"] = np.asarray(dataset.labels, dtype=np.int64)
    else:
        fields["regression_labels"] = np.asarray(dataset.labels, dtype=np.float32)
    if dataset.meta is not None:
        for column in dataset.meta.columns:
            values = dataset.meta[column].to_numpy()
            if str(column) in RESERVED or values.dtype.kind not in "biufOU":
                continue
            if values.dtype.kind in "OU":
                if not all(isinstance(v, str) for v in values):
                    continue
                values = values.astype(object)
            fields[str(column)] = values

    order = [s for s in ("train", "valid", "test") if s in names] + sorted(set(names) - {"train", "valid", "test"})
    split_of = np.asarray(names)
    data = {s: {k: v[split_of == s] for k, v in fields.items()} for s in order}
    payload = pickle.dumps(data, protocol=4)

    def write(tmp: str) -> None:
        Path(tmp).write_bytes(payload)

    return write_atomically(target, write, suffix=".pkl")


def _text_fields(
    modality: Modality, tokenizer: Any, max_length: int | None, target: Path, fields: dict[str, np.ndarray]
) -> list[list[str]]:
    """Fill ``text`` and/or ``text_bert``; return each instance's words (for ``raw_text`` when the dataset has none)."""
    mask = modality.step_mask()
    if modality.tokens is not None:
        ids = np.asarray(modality.values, dtype=np.int64)
        segments = np.zeros_like(ids) if modality.segment_ids is None else np.asarray(modality.segment_ids)
        fields["text_bert"] = np.stack([ids, mask.astype(np.int64), segments], axis=1).astype(np.float32)
        if modality.word_texts is not None:
            return [list(w) for w in modality.word_texts]
        rows = modality.words or [[""] * ids.shape[1]] * len(ids)
        return [
            [w for w, keep in zip(row, real, strict=True) if keep and w] for row, real in zip(rows, mask, strict=True)
        ]
    values = np.asarray(modality.values, dtype=np.float32)
    if values.ndim != 3:
        raise DatasetError(f"{target}: MMSA's text holds features [N, L, D] or token ids; {modality.name!r} does not")
    words = [
        [w for w, keep in zip(row, real, strict=True) if keep]
        for row, real in zip(modality.words or [[""] * values.shape[1]] * len(values), mask, strict=True)
    ]
    if tokenizer is None:
        fields["text"] = values
        return words
    from modalens.data.tokens import tokenize

    for i, row in enumerate(words):
        bad = [w for w in row if not w or w != w.strip() or len(w.split()) != 1]
        if bad or not row:
            raise DatasetError(
                f"{target}: to write text_bert, modality {modality.name!r} needs one word per real step; instance "
                f"{i} has {'no words' if not row else f'steps without a single word: {bad[:3]}'}"
            )
    pieces = tokenize([" ".join(row) for row in words], tokenizer, name=modality.name, max_length=max_length)
    ids, attention, index = pieces.values, pieces.step_mask(), pieces.word_index
    for i, row in enumerate(words):
        kept = pieces.word_texts[i]
        if kept != row[: len(kept)]:  # a word without pieces would shift the map from pieces to steps
            raise DatasetError(
                f"{target}: instance {i}: the tokenizer gave no pieces for some word of {row[:8]}; cannot place the "
                "text features on the pieces"
            )
    if max_length is not None and ids.shape[1] < max_length:
        pad = max_length - ids.shape[1]
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=pieces.tokens.pad_id)
        attention = np.pad(attention, ((0, 0), (0, pad)))
        index = np.pad(index, ((0, 0), (0, pad)), constant_values=-1)
    spread = np.zeros((len(values), ids.shape[1], values.shape[2]), np.float32)
    for i in range(len(values)):
        steps = np.flatnonzero(mask[i])
        playing = np.flatnonzero(index[i] >= 0)
        spread[i, playing] = values[i, steps[index[i, playing]]]
    fields["text"] = spread
    fields["text_bert"] = np.stack([ids, attention.astype(np.int64), np.zeros_like(ids)], axis=1).astype(np.float32)
    return words

"""Loader for the MMSA pickle format (CMU-MOSI, CMU-MOSEI, CH-SIMS as ``aligned_50.pkl`` / ``unaligned_50.pkl``).

An MMSA file is a pickled dict of splits (``train``, ``valid``, ``test``), each a dict of arrays:

- ``text`` ``[N, T_t, D_t]`` word/token features; ``text_bert`` ``[N, 3, T_t]`` (token ids, attention mask, segment
  ids) when the features came from BERT;
- ``audio`` ``[N, T_a, D_a]``, ``vision`` ``[N, T_v, D_v]``;
- ``raw_text`` ``[N]`` utterances, ``id`` ``[N]`` clip ids (``video$_$clip``);
- ``regression_labels`` ``[N]`` (or ``[N, 1]``), ``classification_labels``, CH-SIMS' ``regression_labels_T/A/V``;
- unaligned files only: ``audio_lengths``, ``vision_lengths`` ``[N]``.

The file is read through :mod:`modalens.data.safe_pickle`, so a hostile pickle raises instead of running code.

Step masks
----------
Which steps are padding is not stored uniformly, so the loader takes the best evidence the file has, per modality:

1. ``<modality>_lengths`` (unaligned files): the first ``length`` steps are real. MMSA's own models feed these
   lengths to ``pack_padded_sequence``, which reads real steps at the start of each sequence.
2. ``text_bert`` for the text modality: its attention-mask row (BERT features of padding tokens are not zero, so
   the zero rule below would be wrong for them).
3. Otherwise leading and trailing all-zero steps are padding. The CMU-SDK's ``get_tensors`` pads on the left by
   default and MMSA's own ``__truncate`` skips leading all-zero steps, so front padding is expected; the rule works
   for either side. All-zero steps inside a sequence stay real.

Token ids
---------
``text_field="text_bert"`` loads the text as a **token modality** (:class:`~modalens.data.dataset.TokenSpec`):
``text_bert[:, 0]`` are the token ids, ``text_bert[:, 1]`` the attention mask (the step mask) and ``text_bert[:, 2]``
the segment ids (kept as ``segment_ids``). Ids must be whole, non-negative numbers, the mask 0 or 1. With
``tokenizer=`` (a transformers tokenizer or a local folder of one, e.g. ``bert-base-uncased`` for MOSI/MOSEI) the
pieces are named through it and grouped into words by its ``##`` marks; its special ids are used. Without one the
special ids are BERT's (``[PAD]`` 0, ``[CLS]`` 101, ``[SEP]`` 102, ``[MASK]`` 103 -- the same in the English and
Chinese BERT vocabularies MMSA uses; ``token_spec=`` gives others), and ``raw_text``'s words are placed on the pieces
where their counts match (each piece then a word).

Words
-----
``raw_text`` is split on whitespace. ``words="auto"`` attaches the tokens to the text steps of an instance only where
the alignment is unambiguous: the number of tokens equals the number of real text steps, or (with ``text_bert``)
equals it minus the ``[CLS]``/``[SEP]`` pair. BERT word pieces otherwise make the mapping unknowable without the
tokenizer, and those instances get no words. ``meta["words_aligned"]`` records which instances got them.

Non-finite values
-----------------
MMSA's own loader sets ``-inf`` in ``audio`` to 0 (COVAREP writes ``-inf`` for log-energy of silence). modalens
refuses NaN/inf by default and names the file, split, field and first bad index; ``nonfinite="zero"`` does what
MMSA does (for every modality, NaN and ±inf) and records the count per modality in
``dataset.load_report["nonfinite_replaced"]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from modalens.data.dataset import MODALITY_KINDS, DatasetError, Modality, MultimodalDataset, TokenSpec
from modalens.data.limits import Budget, Limits, resolve
from modalens.data.safe_pickle import safe_load
from modalens.data.tokens import load_tokenizer

# COVAREP's feature order (its feature_extraction script concatenates them in this order); CMU-MOSEI audio, D = 74.
COVAREP_FEATURES: tuple[str, ...] = (
    "F0",
    "VUV",
    "NAQ",
    "QOQ",
    "H1H2",
    "PSP",
    "MDQ",
    "peakSlope",
    "Rd",
    "Rd_conf",
    "creak",
    *(f"MCEP_{i}" for i in range(25)),
    *(f"HMPDM_{i}" for i in range(25)),
    *(f"HMPDD_{i}" for i in range(13)),
)

NonFinite = Literal["error", "zero"]
SPLIT_ORDER = ("train", "valid", "test")
MAX_LIST_ITEMS = 1_000_000  # a field given as nested lists, not an array: at most this many items are read
_INF_HINT = "MMSA sets -inf audio to 0 when it loads; pass nonfinite='zero' to do the same"


def feature_names_for(modality: str, kind: str, d: int, declared: Sequence[str] | None = None) -> list[str]:
    """Feature names for a modality: declared names when they fit, COVAREP's for 74-d audio, else generic.

    Facet (CMU-MOSEI vision, 35-d) gets generic names: the public grouping of its features lists 33 names and no
    column order, so naming them would be a guess.
    """
    if declared is not None and len(declared) == d and len(set(map(str, declared))) == d:
        return [str(x) for x in declared]
    if kind == "audio" and d == len(COVAREP_FEATURES):
        return list(COVAREP_FEATURES)
    return [f"{modality}_{i}" for i in range(d)]


def guess_kind(name: str) -> str:
    """The modality kind for a modality or sequence name (``audio``, ``COVAREP`` -> audio, ...); tabular if unknown."""
    low = name.lower()
    if low in MODALITY_KINDS:
        return low
    for kind, keys in (
        ("text", ("text", "word", "glove", "bert", "lang")),
        ("audio", ("audio", "covarep", "opensmile", "acoustic", "wav2vec", "speech")),
        ("vision", ("vision", "visual", "video", "facet", "openface", "face")),
        ("image", ("image", "img")),
    ):
        if any(k in low for k in keys):
            return kind
    return "tabular"


def fix_nonfinite(values: np.ndarray, policy: NonFinite, where: str, hint: str = "") -> tuple[np.ndarray, int]:
    """Apply the non-finite policy to a float array; return the (possibly repaired) array and the count fixed."""
    bad = ~np.isfinite(values)
    count = int(bad.sum())
    if not count:
        return values, 0
    if policy == "zero":
        values = values.copy()
        values[bad] = 0.0
        return values, count
    if policy != "error":
        raise DatasetError(f"nonfinite must be 'error' or 'zero', got {policy!r}")
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    raise DatasetError(
        f"{where}: expected finite values; {count} NaN/inf entries, first at index {first}"
        + (f" ({hint})" if hint else "")
    )


def trim_zero_mask(values: np.ndarray) -> np.ndarray:
    """``[N, T]`` mask that is False on leading and trailing all-zero steps of ``[N, T, D]`` values."""
    nonzero = np.any(values != 0, axis=2)
    t = values.shape[1]
    any_real = nonzero.any(axis=1)
    first = np.where(any_real, nonzero.argmax(axis=1), t)
    last = np.where(any_real, t - 1 - nonzero[:, ::-1].argmax(axis=1), -1)
    steps = np.arange(t)[None, :]
    return (steps >= first[:, None]) & (steps <= last[:, None])


def load_mmsa(
    path: str | os.PathLike,
    *,
    split: str | None = None,
    modalities: Sequence[str] = ("text", "audio", "vision"),
    text_field: str = "text",
    label_field: str = "regression_labels",
    label_kind: Literal["regression", "classification"] | None = None,
    nonfinite: NonFinite = "error",
    words: Literal["auto"] | None = "auto",
    name: str | None = None,
    limits: Limits | None = None,
    tokenizer: Any = None,
    token_spec: TokenSpec | None = None,
) -> MultimodalDataset:
    """Load an MMSA pickle (CMU-MOSI, CMU-MOSEI, CH-SIMS) as a :class:`MultimodalDataset`.

    Parameters
    ----------
    path
        The ``.pkl`` file (``aligned_50.pkl``, ``unaligned_50.pkl`` ...).
    split
        Load only this split (``train``, ``valid``, ``test``); all splits when None, in that order.
    modalities
        Which modalities to load; each is the split field of the same name, except ``text`` which reads
        ``text_field``.
    text_field
        The field the text modality reads: ``text`` (features ``[N, T, D]``) or ``text_bert`` (token ids, attention
        mask and segment ids ``[N, 3, T]``: a token modality, see the module docstring).
    label_field
        ``regression_labels`` (floats, sentiment in [-3, 3]) or ``classification_labels``.
    label_kind
        Overrides the kind inferred from ``label_field``.
    nonfinite
        ``"error"`` (default) refuses NaN/inf; ``"zero"`` replaces them with 0, as MMSA's loader does for audio.
    words
        ``"auto"`` attaches ``raw_text`` tokens to text steps where the alignment is unambiguous (see module
        docstring); None never does.
    name
        Dataset name; defaults to the parent folder and file stem (``MOSI/aligned_50``).
    limits
        Size limits checked before anything is allocated (:class:`~modalens.data.limits.Limits`; default from
        ``MODALENS_MAX_BYTES`` / ``MODALENS_MAX_ARRAY_BYTES`` or 8 GiB per array, 16 GiB in all).
    tokenizer
        With ``text_field="text_bert"``: the tokenizer the ids came from (object or local folder), naming the pieces
        and grouping them into words.
    token_spec
        With ``text_field="text_bert"`` and no tokenizer: the special ids (default BERT's, :data:`BERT_TOKENS`).

    Returns
    -------
    MultimodalDataset
        With ``splits`` from the dict keys, ``ids`` from ``id``, ``texts`` from ``raw_text``, step masks, and every
        other per-instance 1-D field (``classification_labels``, ``regression_labels_T`` ...) in ``meta``. The
        number of non-finite values replaced per modality is in ``dataset.load_report``.

    Raises
    ------
    DatasetError
        Naming the file, split, field and the expected shape when anything is missing or malformed (complex or
        non-numeric values, non-integer lengths, null or non-string ids, non-string split or field names).
    LimitError
        An array claims more bytes than ``limits`` allow.
    UnsafePickleError
        The pickle asks for anything but numpy arrays and builtin containers.
    """
    source = Path(path)
    if text_field not in ("text", "text_bert") and not isinstance(text_field, str):
        raise DatasetError(f"{source}: text_field must be a field name, got {text_field!r}")
    tokens = None
    if text_field == "text_bert":
        tok = None if tokenizer is None else load_tokenizer(tokenizer)
        tokens = (tok, token_spec if token_spec is not None else (BERT_TOKENS if tok is None else _spec_of(tok)))
    elif tokenizer is not None or token_spec is not None:
        raise DatasetError(f"{source}: tokenizer= and token_spec= go with text_field='text_bert'")
    budget = resolve(limits).budget(source)
    data = safe_load(source, budget=budget)
    if not isinstance(data, dict) or not data:
        raise DatasetError(f"{source}: expected a dict of splits (train/valid/test), got {type(data).__name__}")
    split_names = _split_names(source, data, split)
    if label_kind is None:
        label_kind = "classification" if "classification" in label_field else "regression"

    parts = [
        _read_split(source, s, data[s], modalities, text_field, label_field, label_kind, nonfinite, words, budget)
        for s in split_names
    ]
    mods = []
    report: dict[str, Any] = {"nonfinite_replaced": {}}
    for m in modalities:
        steps = {p["split"]: p["values"][m].shape[1:] for p in parts}
        if len(set(steps.values())) > 1:
            raise DatasetError(f"{source}: field {_field(m, text_field)!r} has different [T, D] across splits: {steps}")
        kind = guess_kind(m)
        values = _concat([p["values"][m] for p in parts])
        mask = _concat([p["masks"][m] for p in parts])
        token_lists = None
        if kind == "text" and words == "auto" and any(p["words"] is not None for p in parts):
            blank = [""] * values.shape[1]  # a split without raw_text has no words
            token_lists = [w for p in parts for w in (p["words"] or [blank] * len(p["ids"]))]
        report["nonfinite_replaced"][m] = int(sum(p["fixed"][m] for p in parts))
        if tokens is not None and _field(m, text_field) == "text_bert":
            mods.append(_token_modality(source, m, values, mask, parts, token_lists, *tokens))
            continue
        mods.append(
            Modality(
                name=m,
                kind=kind,
                values=values,
                mask=mask,
                feature_names=feature_names_for(m, kind, values.shape[2]),
                words=token_lists,
            )
        )
    meta = pd.concat([p["meta"] for p in parts], ignore_index=True)
    ids = [i for p in parts for i in p["ids"]]
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise DatasetError(f"{source}: field 'id' must be unique across splits; {dup!r} repeats")
    texts = None if any(p["texts"] is None for p in parts) else [t for p in parts for t in p["texts"]]
    try:
        dataset = MultimodalDataset(
            mods,
            np.concatenate([p["labels"] for p in parts]),
            label_kind=label_kind,
            ids=ids,
            splits=[p["split"] for p in parts for _ in p["ids"]],
            texts=texts,
            meta=meta if len(meta.columns) else None,
            name=name or f"{source.parent.name}/{source.stem}".lstrip("/"),
        )
    except DatasetError as exc:
        raise DatasetError(f"{source}: {exc}") from exc
    dataset.load_report = report  # type: ignore[attr-defined]
    return dataset


BERT_TOKENS = TokenSpec(pad_id=0, mask_id=103, special_ids=(101, 102), tokenizer="BERT ids (MMSA default)")
"""The special ids of the BERT vocabularies MMSA's ``text_bert`` comes from (``[PAD]`` 0, ``[CLS]`` 101, ``[SEP]``
102, ``[MASK]`` 103; bert-base-uncased and bert-base-chinese agree)."""


def _spec_of(tokenizer: Any) -> TokenSpec:
    from modalens.data.tokens import token_spec

    return token_spec(tokenizer)


def _token_modality(
    source: Path,
    name: str,
    ids: np.ndarray,
    mask: np.ndarray,
    parts: list[dict[str, Any]],
    aligned: list[list[str]] | None,
    tokenizer: Any,
    spec: TokenSpec,
) -> Modality:
    """The text modality from ``text_bert``: ids, attention mask, segment ids; pieces from the tokenizer if given,
    else ``raw_text``'s words where they align one to one with the pieces."""
    segments = _concat([p["segments"][name] for p in parts])
    if spec.vocab_size is not None and ids.size and ids.max() >= spec.vocab_size:
        i, t = (int(x) for x in np.argwhere(ids >= spec.vocab_size)[0])
        raise DatasetError(
            f"{source}: field 'text_bert': token id {int(ids[i, t])} at [{i}, 0, {t}] is outside the tokenizer's "
            f"vocabulary of {spec.vocab_size}"
        )
    pieces = aligned
    if tokenizer is not None:
        pieces = [
            [
                str(p) if real else ""
                for p, real in zip(tokenizer.convert_ids_to_tokens(row.tolist()), keep, strict=True)
            ]
            for row, keep in zip(ids, mask, strict=True)
        ]
    try:
        return Modality(name=name, kind="text", values=ids, mask=mask, words=pieces, tokens=spec, segment_ids=segments)
    except DatasetError as exc:
        raise DatasetError(f"{source}: field 'text_bert': {exc}") from exc


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    # one split: no copy (MOSEI text alone is gigabytes)
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _field(modality: str, text_field: str) -> str:
    return text_field if modality == "text" else modality


def _split_names(source: Path, data: dict, split: str | None) -> list[str]:
    for key in data:
        if not isinstance(key, str):
            raise DatasetError(f"{source}: split names must be strings, got {_brief(key)} ({type(key).__name__})")
    keys = list(data)
    if split is not None:
        if split not in data:
            raise DatasetError(f"{source}: no split {split!r}; the file has {keys}")
        return [split]
    ordered = [s for s in SPLIT_ORDER if s in data] + [k for k in keys if k not in SPLIT_ORDER]
    for s in ordered:
        if not isinstance(data[s], dict):
            raise DatasetError(f"{source}: split {s!r} must be a dict of arrays, got {type(data[s]).__name__}")
    return ordered


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _as_array(where: str, value: Any, budget: Budget, expected: str) -> np.ndarray:
    """A field as an array; nested lists (not what MMSA writes) are sized before numpy stacks them."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, list | tuple):
        total, seen, todo = 0, 0, [value]
        while todo:
            item = todo.pop()
            seen += 1
            if seen > MAX_LIST_ITEMS:
                raise DatasetError(
                    f"{where}: expected an array {expected}, got nested lists of more than {MAX_LIST_ITEMS} items"
                )
            if isinstance(item, list | tuple):
                todo.extend(item)
                total += 8 * len(item)
            else:
                total += int(getattr(item, "nbytes", 8))
            if total > budget.limits.max_array_bytes:
                budget.check(where.split(": ", 1)[-1], total)
        budget.check(where.split(": ", 1)[-1], total)
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise DatasetError(f"{where}: expected an array {expected} ({exc})") from exc


def _numeric(
    source: Path, split: str, field: str, value: Any, ndim: int | None, expected: str, budget: Budget
) -> np.ndarray:
    where = f"{source}: split {split!r} field {field!r}"
    arr = _as_array(where, value, budget, expected)
    if np.iscomplexobj(arr):
        raise DatasetError(f"{where}: expected real numbers {expected}, got complex dtype {arr.dtype}")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DatasetError(f"{where}: expected a numeric array {expected}, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise DatasetError(f"{where}: expected shape {expected}, got {arr.shape}")
    return arr


def _read_split(
    source: Path,
    split: str,
    part: dict,
    modalities: Sequence[str],
    text_field: str,
    label_field: str,
    label_kind: str,
    nonfinite: NonFinite,
    words: str | None,
    budget: Budget,
) -> dict[str, Any]:
    """Validate one split and turn it into arrays, masks, words, ids and meta."""
    where = f"{source}: split {split!r}"
    for key in part:
        if not isinstance(key, str):
            raise DatasetError(f"{where}: field names must be strings, got {_brief(key)} ({type(key).__name__})")
    if label_field not in part:
        raise DatasetError(f"{where}: missing field {label_field!r}; the split has {sorted(map(str, part))}")
    labels = _numeric(source, split, label_field, part[label_field], None, "[N]", budget)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DatasetError(f"{where} field {label_field!r}: expected shape [N] or [N, 1], got {labels.shape}")
    n = labels.shape[0]
    if label_kind == "regression":
        labels, _ = fix_nonfinite(labels.astype(np.float32), "error", f"{where} field {label_field!r}")

    values, masks, fixed, segments = {}, {}, {}, {}
    for m in modalities:
        field = _field(m, text_field)
        if field not in part:
            raise DatasetError(
                f"{where}: missing field {field!r} (modality {m!r}); the split has {sorted(map(str, part))}"
            )
        if field == "text_bert":
            values[m], masks[m], segments[m] = _bert_ids(source, split, part[field], n, budget)
            fixed[m] = 0
            continue
        arr = _numeric(source, split, field, part[field], 3, f"[N={n}, T, D]", budget)
        if arr.shape[0] != n:
            raise DatasetError(f"{where} field {field!r}: expected shape [N={n}, T, D], got {arr.shape}")
        arr, fixed[m] = fix_nonfinite(
            arr.astype(np.float32, copy=False), nonfinite, f"{where} field {field!r}", _INF_HINT
        )
        values[m] = arr
        masks[m] = _mask(source, split, part, m, arr, budget)

    raw = part.get("raw_text")
    texts = None if raw is None else _strings(source, split, "raw_text", raw, n)
    ids = _strings(source, split, "id", part["id"], n) if "id" in part else [f"{split}/{i}" for i in range(n)]
    token_lists, aligned = None, None
    if words == "auto" and texts is not None:
        text_mods = [m for m in modalities if guess_kind(m) == "text"]
        if text_mods:
            token_lists, aligned = _align_words(texts, masks[text_mods[0]], "text_bert" in part)

    used = {_field(m, text_field) for m in modalities} | {label_field, "raw_text", "id"}
    meta = pd.DataFrame(index=range(n))
    for key, value in part.items():
        if key in used or key.endswith("_lengths"):
            continue
        arr = _as_array(f"{where} field {key!r}", value, budget, f"[N={n}]")
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.shape != (n,) or not (np.issubdtype(arr.dtype, np.number) or arr.dtype.kind in "OUS"):
            continue  # not a per-instance column (text_bert, a [N, T, D] field not asked for ...)
        if arr.dtype.kind in "biuf":
            meta[key] = arr
        elif arr.dtype.kind != "O" or all(isinstance(v, _TEXT_ATOMS) or v is None for v in arr):
            meta[key] = [None if v is None else _text(v) for v in arr]
    if aligned is not None:
        meta["words_aligned"] = aligned
    return {
        "split": split,
        "values": values,
        "masks": masks,
        "labels": labels,
        "ids": ids,
        "texts": texts,
        "words": token_lists,
        "meta": meta,
        "fixed": fixed,
        "segments": segments,
    }


def _bert_ids(
    source: Path, split: str, value: Any, n: int, budget: Budget
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``text_bert`` ``[N, 3, T]`` as token ids, attention mask and segment ids, each ``[N, T]``, checked."""
    where = f"{source}: split {split!r} field 'text_bert'"
    bert = _numeric(source, split, "text_bert", value, 3, f"[N={n}, 3, T]", budget)
    if bert.shape[:2] != (n, 3):
        raise DatasetError(
            f"{where}: expected shape [N={n}, 3, T] (ids, attention mask, segment ids), got {bert.shape}"
        )
    if bert.dtype.kind == "f":
        bad = ~np.isfinite(bert) | (bert != np.round(bert))
        if bad.any():
            i, row, t = (int(x) for x in np.argwhere(bad)[0])
            raise DatasetError(f"{where}: expected whole numbers, got {bert[i, row, t]} at [{i}, {row}, {t}]")
    if bert.size and bert.min() < 0:
        i, row, t = (int(x) for x in np.argwhere(bert < 0)[0])
        raise DatasetError(f"{where}: expected non-negative ids and flags, got {bert[i, row, t]} at [{i}, {row}, {t}]")
    attention = bert[:, 1, :]
    if attention.size and attention.max() > 1:
        i, t = (int(x) for x in np.argwhere(attention > 1)[0])
        raise DatasetError(
            f"{where}: the attention mask (row 1) must be 0 or 1, got {attention[i, t]} at [{i}, 1, {t}]"
        )
    return bert[:, 0, :].astype(np.int64), attention > 0, bert[:, 2, :].astype(np.int64)


def _mask(source: Path, split: str, part: dict, modality: str, values: np.ndarray, budget: Budget) -> np.ndarray:
    """Step mask for one modality from the best evidence in the split (see module docstring)."""
    n, t, _ = values.shape
    key = f"{modality}_lengths"
    if key in part:
        lengths = _numeric(source, split, key, part[key], None, f"[N={n}]", budget).reshape(-1)
        if lengths.dtype.kind == "f" and not (np.isfinite(lengths) & (lengths == np.round(lengths))).all():
            bad = int(np.flatnonzero(~(np.isfinite(lengths) & (lengths == np.round(lengths))))[0])
            raise DatasetError(
                f"{source}: split {split!r} field {key!r}: expected whole-number lengths, got {lengths[bad]} "
                f"at index {bad}"
            )
        if lengths.shape != (n,) or (lengths < 0).any() or (lengths > t).any():
            raise DatasetError(
                f"{source}: split {split!r} field {key!r}: expected [N={n}] lengths in [0, {t}], got shape "
                f"{lengths.shape} with range [{lengths.min() if lengths.size else '-'}, "
                f"{lengths.max() if lengths.size else '-'}]"
            )
        return np.arange(t)[None, :] < lengths.astype(np.int64)[:, None]
    if guess_kind(modality) == "text" and "text_bert" in part:
        bert = _numeric(source, split, "text_bert", part["text_bert"], 3, f"[N={n}, 3, {t}]", budget)
        if bert.shape != (n, 3, t):
            raise DatasetError(
                f"{source}: split {split!r} field 'text_bert': expected shape [N={n}, 3, {t}], got {bert.shape}"
            )
        return bert[:, 1, :] > 0
    return trim_zero_mask(values)


_TEXT_ATOMS = (str, bytes, np.str_, np.bytes_, int, np.integer, float, np.floating)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _strings(source: Path, split: str, field: str, value: Any, n: int) -> list[str]:
    where = f"{source}: split {split!r} field {field!r}"
    if isinstance(value, np.ndarray):
        arr = value.reshape(-1) if value.ndim == 2 and value.shape[1] == 1 else value
        if arr.ndim != 1:
            raise DatasetError(f"{where}: expected [N={n}] strings, got shape {value.shape}")
    elif isinstance(value, list | tuple):
        arr = value
    else:
        raise DatasetError(f"{where}: expected [N={n}] strings, got {type(value).__name__}")
    if len(arr) != n:
        raise DatasetError(f"{where}: expected [N={n}] strings, got {len(arr)}")
    for i, v in enumerate(arr):
        if v is None:
            raise DatasetError(f"{where}: entry {i} is null (None); expected [N={n}] strings")
        if not isinstance(v, _TEXT_ATOMS) or isinstance(v, bool):
            raise DatasetError(f"{where}: entry {i} is a {type(v).__name__}; expected [N={n}] strings")
    return [_text(v) for v in arr]


def _align_words(texts: list[str], mask: np.ndarray, has_special: bool) -> tuple[list[list[str]], list[bool]]:
    """Place whitespace tokens on real text steps where counts match exactly (see module docstring)."""
    t = mask.shape[1]
    out, aligned = [], []
    for text, row in zip(texts, mask, strict=True):
        tokens = text.split()
        real = np.flatnonzero(row)
        slots = None
        if len(tokens) == len(real):
            slots = real
        elif has_special and len(tokens) == len(real) - 2:
            slots = real[1:-1]
        steps = [""] * t
        if slots is not None:
            for pos, tok in zip(slots, tokens, strict=True):
                steps[pos] = tok
        out.append(steps)
        aligned.append(slots is not None)
    return out, aligned

"""The multimodal data model every part of modalens reads.

A :class:`MultimodalDataset` holds N instances, each with any number of named modalities. A modality is one of

- **features**: a float32 array ``[N, T, D]`` (T steps -- words, frames -- of D named features);
- **tokens** (``tokens=TokenSpec(...)``): int64 token ids ``[N, T]`` (T word pieces), with the ids of the padding,
  ``[MASK]`` and other special tokens, the piece -> word map ``word_index`` ``[N, T]`` (-1 for special tokens and
  padding) and the words themselves (``word_texts``);
- **patches** (``patches=PatchGrid(...)``): an image cut into a ``rows x cols`` grid, float32 ``[N, P, D]`` with one
  step per patch (row-major) holding its ``height x width x channels`` pixels in [0, 1].

Each has an optional boolean step mask ``[N, T]`` telling which steps are real. Sequence-free inputs (an image
embedding, a tabular row) use ``T = 1``. Validation happens once, on construction, and every error names the field
that was wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from modalens._core.errors import ModalensError

ModalityKind = Literal["text", "audio", "vision", "image", "tabular"]
MODALITY_KINDS: tuple[str, ...] = ("text", "audio", "vision", "image", "tabular")
LabelKind = Literal["regression", "classification"]


class DatasetError(ModalensError, ValueError):
    """A dataset field has the wrong shape, dtype or values; the message names the field."""


@dataclass(frozen=True)
class TokenSpec:
    """The vocabulary facts a token modality needs: which ids are padding, ``[MASK]`` and other special tokens.

    Special tokens (``[CLS]``, ``[SEP]``, ``<|startoftext|>``, padding ...) are never players of an explanation and
    never masked: an absent word piece becomes the baseline token, the special tokens around it stay.

    Attributes
    ----------
    pad_id
        The padding token's id (always counted as special).
    mask_id
        The ``[MASK]`` token's id, or None when the vocabulary has none (CLIP's BPE).
    special_ids
        Ids of every other special token.
    vocab_size
        Size of the vocabulary when known; ids must lie below it.
    tokenizer
        A name for the tokenizer (shown in manifests), when known.
    """

    pad_id: int
    mask_id: int | None = None
    special_ids: tuple[int, ...] = ()
    vocab_size: int | None = None
    tokenizer: str | None = None

    def __post_init__(self) -> None:
        for key in ("pad_id", "mask_id", "vocab_size"):
            value = getattr(self, key)
            if value is None and key != "pad_id":
                continue
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise DatasetError(f"TokenSpec.{key} must be a non-negative int, got {value!r}")
            object.__setattr__(self, key, int(value))
        ids = []
        for v in self.special_ids:
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
                raise DatasetError(f"TokenSpec.special_ids must hold non-negative ints, got {v!r}")
            ids.append(int(v))
        object.__setattr__(self, "special_ids", tuple(sorted(set(ids) | {self.pad_id})))
        if self.tokenizer is not None and not isinstance(self.tokenizer, str):
            raise DatasetError(f"TokenSpec.tokenizer must be a string or None, got {type(self.tokenizer).__name__}")

    def is_special(self, ids: np.ndarray) -> np.ndarray:
        """Boolean array, True where ``ids`` holds a special token (padding included)."""
        return np.isin(ids, np.asarray(self.special_ids, dtype=np.int64))

    def to_dict(self) -> dict:
        return {
            "pad_id": self.pad_id,
            "mask_id": self.mask_id,
            "special_ids": list(self.special_ids),
            "vocab_size": self.vocab_size,
            "tokenizer": self.tokenizer,
        }

    @classmethod
    def from_dict(cls, data: dict) -> TokenSpec:
        if not isinstance(data, dict):
            raise DatasetError(f"a token spec must be an object, got {type(data).__name__}")
        unknown = set(data) - {"pad_id", "mask_id", "special_ids", "vocab_size", "tokenizer"}
        if unknown:
            raise DatasetError(f"a token spec has unknown keys {sorted(unknown)}")
        if "pad_id" not in data:
            raise DatasetError("a token spec needs 'pad_id'")
        specials = data.get("special_ids", [])
        if not isinstance(specials, list):
            raise DatasetError("a token spec's 'special_ids' must be a list of ints")
        return cls(
            pad_id=data["pad_id"],
            mask_id=data.get("mask_id"),
            special_ids=tuple(specials),
            vocab_size=data.get("vocab_size"),
            tokenizer=data.get("tokenizer"),
        )


@dataclass(frozen=True)
class PatchGrid:
    """How a patch modality cuts its images: ``rows x cols`` patches of ``height x width`` pixels, ``channels``.

    Step ``k`` of the modality is the patch in grid row ``k // cols``, column ``k % cols``; its D features are the
    patch's pixels in (row, column, channel) order, values in [0, 1].
    """

    rows: int
    cols: int
    height: int
    width: int
    channels: int = 3

    def __post_init__(self) -> None:
        for key in ("rows", "cols", "height", "width", "channels"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise DatasetError(f"PatchGrid.{key} must be a positive int, got {value!r}")
            object.__setattr__(self, key, int(value))

    @property
    def n_patches(self) -> int:
        return self.rows * self.cols

    @property
    def patch_size(self) -> int:
        """Features per patch: ``height * width * channels``."""
        return self.height * self.width * self.channels

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of the whole image."""
        return self.rows * self.height, self.cols * self.width, self.channels

    def to_patches(self, images: np.ndarray) -> np.ndarray:
        """``[N, H, W, C]`` images -> ``[N, P, D]`` patch values (float32)."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[1:] != self.image_shape:
            shape = ", ".join(map(str, self.image_shape))
            raise DatasetError(f"images must have shape [N, {shape}], got {images.shape}")
        n = images.shape[0]
        grid = images.reshape(n, self.rows, self.height, self.cols, self.width, self.channels)
        return np.ascontiguousarray(grid.transpose(0, 1, 3, 2, 4, 5)).reshape(n, self.n_patches, self.patch_size)

    def to_images(self, values: np.ndarray) -> np.ndarray:
        """``[N, P, D]`` patch values -> ``[N, H, W, C]`` images."""
        values = np.asarray(values)
        n = values.shape[0]
        grid = values.reshape(n, self.rows, self.cols, self.height, self.width, self.channels)
        return np.ascontiguousarray(grid.transpose(0, 1, 3, 2, 4, 5)).reshape(n, *self.image_shape)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("rows", "cols", "height", "width", "channels")}

    @classmethod
    def from_dict(cls, data: dict) -> PatchGrid:
        if not isinstance(data, dict) or set(data) - {"rows", "cols", "height", "width", "channels"}:
            raise DatasetError(f"a patch grid must be an object of rows, cols, height, width, channels; got {data!r}")
        missing = {"rows", "cols", "height", "width"} - set(data)
        if missing:
            raise DatasetError(f"a patch grid lacks {sorted(missing)}")
        return cls(**data)


@dataclass
class Modality:
    """One modality of a dataset.

    Parameters
    ----------
    name
        Unique name, e.g. ``"text"`` or ``"audio"``.
    kind
        One of ``text, audio, vision, image, tabular``; views choose their rendering from it.
    values
        Float array ``[N, T, D]``; converted to float32. ``[N, D]`` is accepted and read as ``T = 1``. For a token
        modality: integer token ids ``[N, T]`` (int64). For a patch modality: ``[N, P, D]`` pixels in [0, 1].
    mask
        Optional boolean ``[N, T]``: True where a step is real, False for padding (a token modality's attention mask).
    feature_names
        D names; defaults to ``f0 .. f{D-1}``. Token and patch modalities have none (their features are ids and
        pixels, not named features).
    words
        For text: per instance, a sequence of T tokens aligned with the steps (``""`` for padding). For a token
        modality, the word piece of each step (``"great"``, ``"##ly"``, ``"[CLS]"``).
    tokens
        Makes this a token modality: its :class:`TokenSpec` (padding, ``[MASK]`` and special ids).
    word_index
        Token modalities: ``[N, T]`` int, the word each piece belongs to (0, 1, ... in order), -1 for padding and
        special tokens. Default: from the pieces in ``words`` by the tokenizer's marks (:func:`word_index_from_pieces`),
        or without words each real, non-special piece a word of its own.
    word_texts
        Token modalities: per instance, its words (as many as ``word_index`` counts). Default: the pieces of each
        word joined (``##`` / ``</w>`` / ``\u2581`` / ``\u0120`` markers removed) when ``words`` are given.
    segment_ids
        Token modalities: optional ``[N, T]`` int segment (token type) ids, kept as they are when tokens are masked.
    patches
        Makes this a patch modality: its :class:`PatchGrid` (``T = rows * cols``, ``D = height * width * channels``).
    """

    name: str
    kind: str
    values: np.ndarray
    mask: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)
    words: list[list[str]] | None = None
    tokens: TokenSpec | None = None
    word_index: np.ndarray | None = None
    word_texts: list[list[str]] | None = None
    segment_ids: np.ndarray | None = None
    patches: PatchGrid | None = None

    def __post_init__(self) -> None:
        where = f"modality {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise DatasetError(f"{where}: name must be a non-empty string")
        if self.kind not in MODALITY_KINDS:
            raise DatasetError(f"{where}: kind must be one of {MODALITY_KINDS}, got {self.kind!r}")
        if self.tokens is not None and self.patches is not None:
            raise DatasetError(f"{where}: a modality holds tokens or patches, not both")
        if self.tokens is not None and not isinstance(self.tokens, TokenSpec):
            raise DatasetError(f"{where}: tokens must be a TokenSpec, got {type(self.tokens).__name__}")
        if self.patches is not None and not isinstance(self.patches, PatchGrid):
            raise DatasetError(f"{where}: patches must be a PatchGrid, got {type(self.patches).__name__}")
        if self.tokens is None:
            for extra in ("word_index", "word_texts", "segment_ids"):
                if getattr(self, extra) is not None:
                    raise DatasetError(f"{where}: {extra} belongs to token modalities (give tokens=TokenSpec(...))")
        values = np.asarray(self.values)
        if values.dtype == object or not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
            raise DatasetError(f"{where}: values must be numeric, got dtype {values.dtype}")
        if np.iscomplexobj(values):
            raise DatasetError(f"{where}: values must be real numbers, got dtype {values.dtype}")
        if self.tokens is not None:
            values = self._check_ids(where, values)
        else:
            if values.ndim == 2:
                values = values[:, None, :]
            if values.ndim != 3:
                raise DatasetError(f"{where}: values must be [N, T, D] (or [N, D]), got shape {values.shape}")
            values = values.astype(np.float32, copy=False)
            bad = ~np.isfinite(values)
            if bad.any():
                first = tuple(int(i) for i in np.argwhere(bad)[0])
                raise DatasetError(
                    f"{where}: values must be finite; {int(bad.sum())} NaN/inf entries, first at index {first}"
                )
        self.values = values
        n, t = values.shape[:2]
        if self.patches is not None:
            grid = self.patches
            if values.shape[1:] != (grid.n_patches, grid.patch_size):
                raise DatasetError(
                    f"{where}: a {grid.rows}x{grid.cols} grid of {grid.height}x{grid.width}x{grid.channels} patches "
                    f"needs values [N, {grid.n_patches}, {grid.patch_size}], got {values.shape}"
                )
        if self.mask is not None:
            mask = np.asarray(self.mask)
            if mask.shape != (n, t):
                raise DatasetError(f"{where}: mask must have shape {(n, t)}, got {mask.shape}")
            self.mask = mask.astype(bool, copy=False)
        if self.tokens is not None or self.patches is not None:
            if self.feature_names:
                what = "token ids" if self.tokens is not None else "patch pixels"
                raise DatasetError(f"{where}: {what} have no feature names; leave feature_names empty")
            self.feature_names = []
        else:
            d = values.shape[2]
            if not self.feature_names:
                self.feature_names = [f"f{i}" for i in range(d)]
            self.feature_names = [str(f) for f in self.feature_names]
            if len(self.feature_names) != d:
                raise DatasetError(f"{where}: {len(self.feature_names)} feature_names for D = {d} features")
            if len(set(self.feature_names)) != d:
                raise DatasetError(f"{where}: feature_names must be unique")
        if self.words is not None:
            if len(self.words) != n:
                raise DatasetError(f"{where}: words must hold N = {n} token lists, got {len(self.words)}")
            words = []
            for i, tokens in enumerate(self.words):
                tokens = ["" if w is None else str(w) for w in tokens]
                if len(tokens) > t:
                    raise DatasetError(f"{where}: words[{i}] has {len(tokens)} tokens for T = {t} steps")
                words.append(tokens + [""] * (t - len(tokens)))
            self.words = words
        if self.tokens is not None:
            self._check_words(where)

    # -- token modalities --------------------------------------------------------------------------------------
    def _check_ids(self, where: str, values: np.ndarray) -> np.ndarray:
        if values.ndim != 2:
            raise DatasetError(f"{where}: token ids must be [N, T], got shape {values.shape}")
        whole = np.issubdtype(values.dtype, np.integer) or (
            values.dtype != bool and np.isfinite(values).all() and (values == np.round(values)).all()
        )
        if not whole:
            raise DatasetError(f"{where}: token ids must be whole numbers, got dtype {values.dtype}")
        ids = values.astype(np.int64, copy=False)
        if ids.size and ids.min() < 0:
            raise DatasetError(f"{where}: token ids must be non-negative, got {int(ids.min())}")
        size = self.tokens.vocab_size if self.tokens is not None else None
        if size is not None and ids.size and ids.max() >= size:
            raise DatasetError(f"{where}: token id {int(ids.max())} is outside the vocabulary of {size} tokens")
        if self.segment_ids is not None:
            seg = np.asarray(self.segment_ids)
            if seg.shape != ids.shape or not (np.issubdtype(seg.dtype, np.integer) or seg.dtype == bool):
                raise DatasetError(
                    f"{where}: segment_ids must be integers of shape {ids.shape}, got {seg.dtype} {seg.shape}"
                )
            self.segment_ids = seg.astype(np.int64, copy=False)
        return ids

    def _check_words(self, where: str) -> None:
        """``word_index`` agrees with the players (real, non-special pieces), and ``word_texts`` with it."""
        playing = self.step_mask() & ~self.tokens.is_special(self.values)
        if self.word_index is None:
            index = word_index_from_pieces(self.words, playing)
        else:
            index = np.asarray(self.word_index)
            if index.shape != self.values.shape or not np.issubdtype(index.dtype, np.integer):
                raise DatasetError(
                    f"{where}: word_index must be integers of shape {self.values.shape}, "
                    f"got {index.dtype} {index.shape}"
                )
            index = index.astype(np.int64, copy=False)
            wrong = playing != (index >= 0)
            if wrong.any():
                i, s = (int(x) for x in np.argwhere(wrong)[0])
                what = "a real, non-special piece" if playing[i, s] else "padding or a special token"
                raise DatasetError(
                    f"{where}: word_index[{i}, {s}] = {int(index[i, s])}, but step {s} is {what} (word_index must "
                    "be -1 exactly on padding and special tokens)"
                )
            # over each instance's pieces, words count 0, 1, 2 ... with a word's pieces next to each other
            running = np.maximum.accumulate(np.where(playing, index, -1), axis=1)
            previous = np.concatenate([np.full((len(index), 1), -1), running[:, :-1]], axis=1)
            bad = playing & (index != previous) & (index != previous + 1)
            if bad.any():
                i, s = (int(x) for x in np.argwhere(bad)[0])
                raise DatasetError(
                    f"{where}: word_index[{i}] must number the words 0, 1, 2 ... in order, each word's pieces "
                    f"together; step {s} has {int(index[i, s])} after {int(previous[i, s])}"
                )
        self.word_index = index
        counts = self.word_counts()
        if self.word_texts is None:
            if self.words is not None:
                self.word_texts = [
                    [join_pieces([self.words[i][s] for s in np.flatnonzero(index[i] == w)]) for w in range(counts[i])]
                    for i in range(len(index))
                ]
            return
        if len(self.word_texts) != len(index):
            raise DatasetError(f"{where}: word_texts must hold N = {len(index)} word lists, got {len(self.word_texts)}")
        texts = []
        for i, row in enumerate(self.word_texts):
            row = [str(w) for w in row]
            if len(row) != counts[i]:
                raise DatasetError(f"{where}: word_texts[{i}] holds {len(row)} words; word_index counts {counts[i]}")
            texts.append(row)
        self.word_texts = texts

    def word_counts(self) -> np.ndarray:
        """Token modalities: ``[N]`` number of words per instance."""
        if self.word_index is None:
            raise DatasetError(f"modality {self.name!r} is not a token modality")
        return (self.word_index.max(axis=1, initial=-1) + 1).astype(np.int64)

    @property
    def is_tokens(self) -> bool:
        return self.tokens is not None

    @property
    def is_patches(self) -> bool:
        return self.patches is not None

    @property
    def n_steps(self) -> int:
        return int(self.values.shape[1])

    @property
    def n_features(self) -> int:
        """Features per step: D, 0 for token ids."""
        return 0 if self.tokens is not None else int(self.values.shape[2])

    @property
    def named_features(self) -> int:
        """Named features (players at the ``"features"`` granularity): D, none for token and patch modalities."""
        return len(self.feature_names)

    # -- access ------------------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape  # type: ignore[return-value]

    def step_mask(self) -> np.ndarray:
        """The step mask, all True when none was given."""
        if self.mask is None:
            return np.ones(self.values.shape[:2], dtype=bool)
        return self.mask

    def player_mask(self) -> np.ndarray:
        """``[N, T]``: the steps that are players of a step-level explanation (real steps; for token modalities the
        real pieces that are not special tokens)."""
        if self.tokens is not None:
            return self.word_index >= 0
        return self.step_mask()

    def images(self, index: np.ndarray | slice | None = None) -> np.ndarray:
        """Patch modalities: the images ``[B, H, W, C]`` (pixels in [0, 1]) of the given instances."""
        if self.patches is None:
            raise DatasetError(f"modality {self.name!r} is not a patch modality")
        return self.patches.to_images(self.values[slice(None) if index is None else index])

    def take(self, index: np.ndarray) -> Modality:
        return Modality(
            name=self.name,
            kind=self.kind,
            values=self.values[index],
            mask=None if self.mask is None else self.mask[index],
            feature_names=list(self.feature_names),
            words=None if self.words is None else [self.words[i] for i in index],
            tokens=self.tokens,
            word_index=None if self.word_index is None else self.word_index[index],
            word_texts=None if self.word_texts is None else [self.word_texts[i] for i in index],
            segment_ids=None if self.segment_ids is None else self.segment_ids[index],
            patches=self.patches,
        )

    def describe(self) -> dict:
        """A JSON-ready description (for run manifests)."""
        out = {
            "name": self.name,
            "kind": self.kind,
            "steps": self.n_steps,
            "features": self.n_features,
            "feature_names": self.feature_names,
            "has_mask": self.mask is not None,
            "has_words": self.words is not None,
        }
        if self.tokens is not None:
            out["tokens"] = self.tokens.to_dict()
        if self.patches is not None:
            out["patches"] = self.patches.to_dict()
        return out


def word_index_from_pieces(words: list[list[str]] | None, playing: np.ndarray) -> np.ndarray:
    """``[N, T]`` word numbers of the playing pieces (-1 elsewhere), from the pieces' marks.

    WordPiece (BERT) continues a word with ``##``; CLIP's BPE ends a word with ``</w>``; SentencePiece and byte-level
    BPE start one with ``\u2581`` / ``\u0120``. The convention is read from each instance's pieces; without pieces
    (or marks) every playing piece is a word of its own.
    """
    if words is None:
        return np.where(playing, np.cumsum(playing, axis=1) - 1, -1)
    index = np.full(playing.shape, -1, dtype=np.int64)
    for i, row in enumerate(words):
        steps = np.flatnonzero(playing[i])
        pieces = [row[s] for s in steps]
        if any(p.startswith("##") for p in pieces):
            starts = [not p.startswith("##") for p in pieces]
        elif any(p.endswith("</w>") for p in pieces):
            starts = [k == 0 or pieces[k - 1].endswith("</w>") for k in range(len(pieces))]
        elif any(p[:1] in ("\u2581", "\u0120") for p in pieces):
            starts = [k == 0 or p[:1] in ("\u2581", "\u0120") for k, p in enumerate(pieces)]
        else:
            starts = [True] * len(pieces)
        if starts:
            starts[0] = True
        index[i, steps] = np.cumsum(starts) - 1
    return index


def join_pieces(pieces: Sequence[str]) -> str:
    """A word from its pieces: WordPiece ``##`` continuations joined, BPE ``</w>`` ends and SentencePiece / byte-BPE
    word starts (``\u2581``, ``\u0120``) removed (``["great", "##ly"]`` -> ``"greatly"``)."""
    out = []
    for piece in pieces:
        piece = str(piece)
        if piece.startswith("##"):
            piece = piece[2:]
        if piece.endswith("</w>"):
            piece = piece[: -len("</w>")]
        out.append(piece.lstrip("\u2581\u0120"))
    return "".join(out)


@dataclass
class MediaColumn:
    """Per-instance media (face thumbnails, audio clips) shown by the instance view.

    ``mime`` is the type of every item (``image/png``, ``audio/wav`` ...); ``items`` holds N byte strings, with
    None where an instance has no media of this kind.
    """

    mime: str
    items: list[bytes | None]

    @property
    def extension(self) -> str:
        return {
            "image/png": "png",
            "image/jpeg": "jpg",
            "audio/wav": "wav",
            "audio/x-wav": "wav",
            "audio/mpeg": "mp3",
            "audio/ogg": "ogg",
            "video/mp4": "mp4",
        }.get(self.mime, "bin")


class MultimodalDataset:
    """N instances over named modalities, with labels, ids, splits and per-instance metadata.

    Parameters
    ----------
    modalities
        The modalities, all with the same N. Their order is the order explanations report.
    labels
        ``[N]`` floats for regression, ints for classification, or None.
    label_kind
        ``"regression"`` or ``"classification"``; inferred from the label dtype when None.
    ids
        N unique instance ids; defaults to ``"0" .. "N-1"``.
    splits
        N split names (``train``, ``valid``, ``test`` ...), or None.
    texts
        N raw utterances, shown by the instance view.
    meta
        A DataFrame of N rows with any further per-instance columns (e.g. the known roles of a demo set).
    class_names
        Names of the classes, for classification labels.
    media
        Named :class:`MediaColumn` s (e.g. ``{"face": ..., "speech": ...}``) for the instance view.
    name
        A short name for manifests and titles.
    """

    def __init__(
        self,
        modalities: Sequence[Modality],
        labels: np.ndarray | Sequence[float] | None = None,
        *,
        label_kind: LabelKind | None = None,
        ids: Sequence[str] | None = None,
        splits: Sequence[str] | None = None,
        texts: Sequence[str] | None = None,
        meta: pd.DataFrame | None = None,
        class_names: Sequence[str] | None = None,
        media: dict[str, MediaColumn] | None = None,
        name: str = "dataset",
    ) -> None:
        if not modalities:
            raise DatasetError("a dataset needs at least one modality")
        names = [m.name for m in modalities]
        if len(set(names)) != len(names):
            raise DatasetError(f"modality names must be unique, got {names}")
        n = modalities[0].values.shape[0]
        for m in modalities:
            if m.values.shape[0] != n:
                raise DatasetError(
                    f"modality {m.name!r} has N = {m.values.shape[0]} instances, "
                    f"modality {modalities[0].name!r} has {n}"
                )
        self.modalities: dict[str, Modality] = {m.name: m for m in modalities}
        self.name = name
        self.labels, self.label_kind = _check_labels(labels, label_kind, n)
        self.class_names = list(class_names) if class_names is not None else None
        self.ids = _check_strings("ids", ids, n, default=[str(i) for i in range(n)])
        if len(set(self.ids.tolist())) != n:
            raise DatasetError("ids must be unique")
        self.splits = None if splits is None else _check_strings("splits", splits, n)
        self.texts = None if texts is None else _check_strings("texts", texts, n)
        if meta is not None:
            if not isinstance(meta, pd.DataFrame) or len(meta) != n:
                raise DatasetError(f"meta must be a DataFrame with N = {n} rows")
            meta = meta.reset_index(drop=True)
        self.meta = meta
        self.media = dict(media or {})
        for key, column in self.media.items():
            if len(column.items) != n:
                raise DatasetError(
                    f"media {key!r} must hold N = {n} items (None where absent), got {len(column.items)}"
                )

    # -- basic access ------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return next(iter(self.modalities.values())).values.shape[0]

    def __repr__(self) -> str:
        def shape(m: Modality) -> str:
            if m.tokens is not None:
                return f"{m.n_steps} tokens"
            if m.patches is not None:
                return f"{m.patches.rows}x{m.patches.cols} patches"
            return str(m.values.shape[1:])

        parts = ", ".join(f"{m.name}[{m.kind}] {shape(m)}" for m in self.modalities.values())
        return f"MultimodalDataset({self.name!r}, N={len(self)}, {parts}, labels={self.label_kind})"

    @property
    def modality_names(self) -> list[str]:
        return list(self.modalities)

    def __getitem__(self, name: str) -> Modality:
        try:
            return self.modalities[name]
        except KeyError:
            raise KeyError(f"no modality {name!r}; the dataset has {self.modality_names}") from None

    def arrays(self, index: np.ndarray | slice | None = None) -> dict[str, np.ndarray]:
        """The modality arrays (``[B, T, D]``) for the given instances, by modality name."""
        sel = slice(None) if index is None else index
        return {name: m.values[sel] for name, m in self.modalities.items()}

    def masks(self, index: np.ndarray | slice | None = None) -> dict[str, np.ndarray]:
        """The step masks (``[B, T]``) for the given instances, by modality name."""
        sel = slice(None) if index is None else index
        return {name: m.step_mask()[sel] for name, m in self.modalities.items()}

    # -- selection ---------------------------------------------------------------------------------------------
    def take(self, index: Iterable[int] | np.ndarray) -> MultimodalDataset:
        """A new dataset with the given instances, in that order."""
        index = np.asarray(index if isinstance(index, np.ndarray) else list(index))
        index = np.flatnonzero(index) if index.dtype == bool else index.astype(np.int64, copy=False)
        return MultimodalDataset(
            [m.take(index) for m in self.modalities.values()],
            None if self.labels is None else self.labels[index],
            label_kind=self.label_kind,
            ids=self.ids[index],
            splits=None if self.splits is None else self.splits[index],
            texts=None if self.texts is None else self.texts[index],
            meta=None if self.meta is None else self.meta.iloc[index],
            class_names=self.class_names,
            media={k: MediaColumn(c.mime, [c.items[i] for i in index]) for k, c in self.media.items()},
            name=self.name,
        )

    def split(self, name: str) -> MultimodalDataset:
        """The instances of one split (``train``, ``valid``, ``test`` ...)."""
        if self.splits is None:
            raise DatasetError(f"dataset {self.name!r} has no splits")
        chosen = self.splits == name
        if not chosen.any():
            raise DatasetError(f"dataset {self.name!r} has no split {name!r}; it has {sorted(set(self.splits))}")
        return self.take(chosen)

    def select_modalities(self, names: Sequence[str]) -> MultimodalDataset:
        """A new dataset with only the named modalities, in the given order."""
        mods = [self[n] for n in names]
        return MultimodalDataset(
            mods,
            self.labels,
            label_kind=self.label_kind,
            ids=self.ids,
            splits=self.splits,
            texts=self.texts,
            meta=self.meta,
            class_names=self.class_names,
            media=self.media,
            name=self.name,
        )

    def describe(self) -> dict:
        """A JSON-ready description used in run manifests."""
        return {
            "name": self.name,
            "n_instances": len(self),
            "label_kind": self.label_kind,
            "class_names": self.class_names,
            "splits": None if self.splits is None else sorted(set(self.splits.tolist())),
            "media": {k: c.mime for k, c in self.media.items()},
            "meta_columns": [] if self.meta is None else list(map(str, self.meta.columns)),
            "modalities": [m.describe() for m in self.modalities.values()],
        }


def _check_labels(
    labels: np.ndarray | Sequence[float] | None, label_kind: str | None, n: int
) -> tuple[np.ndarray | None, str | None]:
    if labels is None:
        return None, label_kind
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.shape != (n,):
        raise DatasetError(f"labels must have shape ({n},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.number) and labels.dtype != bool:
        raise DatasetError(f"labels must be numeric, got dtype {labels.dtype}")
    if np.iscomplexobj(labels):
        raise DatasetError(f"labels must be real numbers, got dtype {labels.dtype}")
    if label_kind is None:
        label_kind = "regression" if np.issubdtype(labels.dtype, np.floating) else "classification"
    if label_kind == "regression":
        labels = labels.astype(np.float32)
        if not np.isfinite(labels).all():
            raise DatasetError(f"labels must be finite; {int((~np.isfinite(labels)).sum())} NaN/inf entries")
    elif label_kind == "classification":
        whole = np.isfinite(labels).all() and (labels == np.round(labels)).all()
        if np.issubdtype(labels.dtype, np.floating) and not whole:
            raise DatasetError("classification labels must be whole numbers")
        labels = labels.astype(np.int64)
    else:
        raise DatasetError(f"label_kind must be 'regression' or 'classification', got {label_kind!r}")
    return labels, label_kind


def _check_strings(
    field_name: str, values: Sequence[str] | None, n: int, default: list[str] | None = None
) -> np.ndarray:
    if values is None:
        values = default
    values = list(values)
    for i, v in enumerate(values):
        if v is None:
            raise DatasetError(f"{field_name}[{i}] is missing (null); expected N = {n} strings")
    arr = np.asarray([str(v) for v in values], dtype=object)
    if arr.shape != (n,):
        raise DatasetError(f"{field_name} must hold N = {n} entries, got {arr.shape[0]}")
    return arr

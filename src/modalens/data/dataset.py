"""The multimodal data model every part of modalens reads.

A :class:`MultimodalDataset` holds N instances, each with any number of named modalities. Every modality is a
float32 array ``[N, T, D]`` (T steps -- words, frames, patches -- of D named features) with an optional boolean
step mask ``[N, T]`` telling which steps are real. Sequence-free inputs (an image embedding, a tabular row) use
``T = 1``. Validation happens once, on construction, and every error names the field that was wrong.
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
        Float array ``[N, T, D]``; converted to float32. ``[N, D]`` is accepted and read as ``T = 1``.
    mask
        Optional boolean ``[N, T]``: True where a step is real, False for padding.
    feature_names
        D names; defaults to ``f0 .. f{D-1}``.
    words
        For text: per instance, a sequence of T tokens aligned with the steps (``""`` for padding).
    """

    name: str
    kind: str
    values: np.ndarray
    mask: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)
    words: list[list[str]] | None = None

    def __post_init__(self) -> None:
        where = f"modality {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise DatasetError(f"{where}: name must be a non-empty string")
        if self.kind not in MODALITY_KINDS:
            raise DatasetError(f"{where}: kind must be one of {MODALITY_KINDS}, got {self.kind!r}")
        values = np.asarray(self.values)
        if values.dtype == object or not np.issubdtype(values.dtype, np.number):
            raise DatasetError(f"{where}: values must be numeric, got dtype {values.dtype}")
        if np.iscomplexobj(values):
            raise DatasetError(f"{where}: values must be real numbers, got dtype {values.dtype}")
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
        n, t, d = values.shape
        if self.mask is not None:
            mask = np.asarray(self.mask)
            if mask.shape != (n, t):
                raise DatasetError(f"{where}: mask must have shape {(n, t)}, got {mask.shape}")
            self.mask = mask.astype(bool, copy=False)
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

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.values.shape  # type: ignore[return-value]

    def step_mask(self) -> np.ndarray:
        """The step mask, all True when none was given."""
        if self.mask is None:
            return np.ones(self.values.shape[:2], dtype=bool)
        return self.mask

    def take(self, index: np.ndarray) -> Modality:
        return Modality(
            name=self.name,
            kind=self.kind,
            values=self.values[index],
            mask=None if self.mask is None else self.mask[index],
            feature_names=list(self.feature_names),
            words=None if self.words is None else [self.words[i] for i in index],
        )


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
        parts = ", ".join(f"{m.name}[{m.kind}] {m.values.shape[1:]}" for m in self.modalities.values())
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
            "modalities": [
                {
                    "name": m.name,
                    "kind": m.kind,
                    "steps": int(m.values.shape[1]),
                    "features": int(m.values.shape[2]),
                    "feature_names": m.feature_names,
                    "has_mask": m.mask is not None,
                    "has_words": m.words is not None,
                }
                for m in self.modalities.values()
            ],
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

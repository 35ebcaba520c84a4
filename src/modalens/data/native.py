"""modalens' own dataset file: one ``.npz`` archive, readable without pickle.

Layout (all arrays plain numeric or fixed-width unicode; ``np.load(..., allow_pickle=False)`` reads it):

- ``__modalens__``: UTF-8 JSON (as uint8) with ``format_version``, ``name``, ``label_kind``, ``class_names``,
  ``modalities`` (name, kind, feature_names, has_mask, has_words), ``meta_columns``, ``media`` (key -> mime).
- ``values/<modality>``: float32 ``[N, T, D]``; ``mask/<modality>``: bool ``[N, T]``; ``words/<modality>``: ``<U``
  ``[N, T]``.
- ``labels``, ``ids``, ``splits``, ``texts``: ``[N]``.
- ``meta/<column>``: ``[N]`` numeric or unicode; for text columns ``meta_null/<column>`` (bool ``[N]``) marks missing
  values. Columns of mixed types are stored as text.
- ``media/<key>/data``: uint8, all items concatenated; ``media/<key>/offsets``: int64 ``[N + 1]``; an item of
  length 0 means "absent".
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from modalens._core.atomic import write_atomically
from modalens.data.dataset import DatasetError, MediaColumn, Modality, MultimodalDataset

FORMAT_VERSION = 1
HEADER = "__modalens__"


def save_dataset(dataset: MultimodalDataset, path: str | os.PathLike) -> Path:
    """Write a dataset to one ``.npz`` file, atomically (a temporary file renamed into place)."""
    target = Path(path)
    arrays: dict[str, np.ndarray] = {}
    header = {
        "format_version": FORMAT_VERSION,
        "name": dataset.name,
        "label_kind": dataset.label_kind,
        "class_names": dataset.class_names,
        "modalities": [],
        "meta_columns": [],
        "media": {k: c.mime for k, c in dataset.media.items()},
    }
    for name, m in dataset.modalities.items():
        header["modalities"].append(
            {
                "name": name,
                "kind": m.kind,
                "feature_names": m.feature_names,
                "has_mask": m.mask is not None,
                "has_words": m.words is not None,
            }
        )
        arrays[f"values/{name}"] = m.values
        if m.mask is not None:
            arrays[f"mask/{name}"] = m.mask
        if m.words is not None:
            arrays[f"words/{name}"] = np.asarray(m.words, dtype=str).reshape(m.values.shape[:2])
    if dataset.labels is not None:
        arrays["labels"] = dataset.labels
    arrays["ids"] = dataset.ids.astype(str)
    for field in ("splits", "texts"):
        value = getattr(dataset, field)
        if value is not None:
            arrays[field] = value.astype(str)
    if dataset.meta is not None:
        for col in dataset.meta.columns:
            series = dataset.meta[col]
            data = series.to_numpy()
            if data.dtype == object or not (np.issubdtype(data.dtype, np.number) or data.dtype == bool):
                # text columns: strings plus a null mask, so missing values come back missing (mixed types as text)
                missing = series.isna().to_numpy()
                arrays[f"meta_null/{col}"] = missing
                data = np.where(missing, "", series.astype(str).to_numpy()).astype(str)
            arrays[f"meta/{col}"] = data
            header["meta_columns"].append(str(col))
    for key, column in dataset.media.items():
        lengths = [0 if item is None else len(item) for item in column.items]
        arrays[f"media/{key}/offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        arrays[f"media/{key}/data"] = np.frombuffer(b"".join(i for i in column.items if i), dtype=np.uint8)
    arrays[HEADER] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)

    return write_atomically(target, lambda tmp: np.savez_compressed(tmp, **arrays), suffix=".npz")


def load_dataset(path: str | os.PathLike) -> MultimodalDataset:
    """Read a dataset written by :func:`save_dataset`; never unpickles."""
    source = Path(path)
    if not source.is_file():
        raise DatasetError(f"{source}: no such file")
    try:
        archive = np.load(source, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DatasetError(f"{source}: not a readable modalens .npz archive ({exc})") from exc
    with archive:
        if HEADER not in archive.files:
            raise DatasetError(f"{source}: not a modalens dataset (no {HEADER} entry)")
        try:
            header = json.loads(archive[HEADER].tobytes().decode())
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError, zlib.error) as exc:
            raise DatasetError(f"{source}: header {HEADER} is corrupt ({exc})") from exc
        if header.get("format_version") != FORMAT_VERSION:
            raise DatasetError(
                f"{source}: format version {header.get('format_version')!r} unsupported (this reads {FORMAT_VERSION})"
            )

        def get(key: str) -> np.ndarray:
            if key not in archive.files:
                raise DatasetError(f"{source}: entry {key!r} is missing")
            try:
                return archive[key]
            except (ValueError, zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                raise DatasetError(f"{source}: entry {key!r} is corrupt or truncated ({exc})") from exc

        modalities = []
        for spec in header["modalities"]:
            name = spec["name"]
            words = get(f"words/{name}").tolist() if spec["has_words"] else None
            modalities.append(
                Modality(
                    name=name,
                    kind=spec["kind"],
                    values=get(f"values/{name}"),
                    mask=get(f"mask/{name}") if spec["has_mask"] else None,
                    feature_names=spec["feature_names"],
                    words=words,
                )
            )
        optional = {k: get(k) for k in ("labels", "splits", "texts") if k in archive.files}
        meta = None
        if header["meta_columns"]:
            columns = {}
            for c in header["meta_columns"]:
                values = get(f"meta/{c}")
                if f"meta_null/{c}" in archive.files:
                    values = np.where(get(f"meta_null/{c}"), None, values.astype(object))
                columns[c] = values
            meta = pd.DataFrame(columns)
        media = {}
        for key, mime in header["media"].items():
            offsets, data = get(f"media/{key}/offsets"), get(f"media/{key}/data").tobytes()
            items = [data[a:b] if b > a else None for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
            media[key] = MediaColumn(mime, items)
        try:
            return MultimodalDataset(
                modalities,
                optional.get("labels"),
                label_kind=header["label_kind"],
                ids=get("ids").tolist(),
                splits=None if "splits" not in optional else optional["splits"].tolist(),
                texts=None if "texts" not in optional else optional["texts"].tolist(),
                meta=meta,
                class_names=header["class_names"],
                media=media,
                name=header["name"],
            )
        except DatasetError as exc:
            raise DatasetError(f"{source}: {exc}") from exc

"""modalens' own dataset file: one ``.npz`` archive, readable without pickle.

Layout (all arrays plain numeric or fixed-width unicode; ``np.load(..., allow_pickle=False)`` reads it):

- ``__modalens__``: UTF-8 JSON (as uint8) with ``format_version``, ``name``, ``label_kind``, ``class_names``,
  ``modalities`` (name, kind, feature_names, has_mask, has_words; token modalities ``tokens``, ``has_segments``;
  patch modalities ``patches``), ``meta_columns``, ``media`` (key -> mime).
- ``values/<modality>``: float32 ``[N, T, D]`` (token modalities: int64 ids ``[N, T]``); ``mask/<modality>``: bool
  ``[N, T]``; ``words/<modality>``: ``<U`` ``[N, T]``.
- token modalities: ``word_index/<modality>`` int64 ``[N, T]``; ``word_texts/<modality>`` ``<U`` ``[N, W]`` (the
  words, ``""`` after an instance's last); ``segments/<modality>`` int64 ``[N, T]`` when present.
- ``labels``, ``ids``, ``splits``, ``texts``: ``[N]``.
- ``meta/<column>``: ``[N]`` numeric or unicode; for text columns ``meta_null/<column>`` (bool ``[N]``) marks missing
  values. Columns of mixed types are stored as text.
- ``media/<key>/data``: uint8, all items concatenated; ``media/<key>/offsets``: int64 ``[N + 1]``; an item of
  length 0 means "absent".
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from modalens._core.atomic import write_atomically
from modalens.data.dataset import DatasetError, MediaColumn, Modality, MultimodalDataset, PatchGrid, TokenSpec
from modalens.data.limits import Budget, Limits, resolve

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
        spec = {
            "name": name,
            "kind": m.kind,
            "feature_names": m.feature_names,
            "has_mask": m.mask is not None,
            "has_words": m.words is not None,
        }
        if m.tokens is not None:
            spec["tokens"] = m.tokens.to_dict()
            spec["has_segments"] = m.segment_ids is not None
            arrays[f"word_index/{name}"] = m.word_index
            width = max([len(w) for w in m.word_texts or []] + [0])
            rows = [list(w) + [""] * (width - len(w)) for w in m.word_texts or [[] for _ in range(len(dataset))]]
            arrays[f"word_texts/{name}"] = np.asarray(rows, dtype=str).reshape(len(dataset), width)
            if m.segment_ids is not None:
                arrays[f"segments/{name}"] = m.segment_ids
        if m.patches is not None:
            spec["patches"] = m.patches.to_dict()
        header["modalities"].append(spec)
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


def load_dataset(
    path: str | os.PathLike, *, limits: Limits | None = None, budget: Budget | None = None
) -> MultimodalDataset:
    """Read a dataset written by :func:`save_dataset`; never unpickles.

    Every entry is checked before it is read: the zip entry must be stored or deflated, not encrypted, not repeated;
    its ``.npy`` header must declare a plain dtype of the kind the entry holds and a shape whose size equals the
    bytes the zip entry declares; that size is claimed against ``limits`` (:mod:`modalens.data.limits`) before
    anything is allocated. Shapes must agree with the dataset (``[N, T, D]`` values, ``[N, T]`` masks and words,
    ``[N]`` labels, ids, splits, texts and meta, ``[N + 1]`` non-decreasing media offsets ending at the data's
    length). Every failure is a :class:`DatasetError` naming the file and the entry.
    """
    source = Path(path)
    if not source.is_file():
        raise DatasetError(f"{source}: no such file")
    budget = budget if budget is not None else resolve(limits).budget(source)
    budget.add_file(source)
    try:
        archive = zipfile.ZipFile(source)
    except _ZIP_ERRORS as exc:
        raise DatasetError(f"{source}: not a readable modalens .npz archive ({_why(exc)})") from exc
    with archive:
        reader = _Archive(source, archive, budget)
        if HEADER not in reader.entries:
            raise DatasetError(f"{source}: not a modalens dataset (no {HEADER} entry)")
        raw = reader.get(HEADER, kinds="u", ndim=1)
        try:
            header = json.loads(raw.tobytes().decode())
        except RecursionError as exc:
            raise DatasetError(f"{source}: header {HEADER} is corrupt (JSON nested too deeply)") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{source}: header {HEADER} is corrupt ({exc})") from exc
        header = check_header(source, header, HEADER)
        return _read_dataset(source, reader, header)


def _read_dataset(source: Path, reader: _Archive, header: dict) -> MultimodalDataset:
    get = reader.get
    ids = get("ids", kinds="U", ndim=1)
    n = ids.shape[0]
    modalities = []
    for spec in header["modalities"]:
        name = spec["name"]
        tokens = spec.get("tokens")
        values = get(f"values/{name}", kinds="iu" if tokens else "fiu", ndim=2 if tokens else 3, first=n)
        t = values.shape[1]
        mask = get(f"mask/{name}", kinds="b", shape=(n, t)) if spec["has_mask"] else None
        words = get(f"words/{name}", kinds="U", shape=(n, t)).tolist() if spec["has_words"] else None
        extra: dict = {}
        if tokens is not None:
            index = get(f"word_index/{name}", kinds="i", shape=(n, t)).astype(np.int64)
            texts = get(f"word_texts/{name}", kinds="U", ndim=2, first=n)
            counts = index.max(axis=1, initial=-1) + 1
            if texts.shape[1] < counts.max(initial=0):
                raise DatasetError(
                    f"{source}: entry 'word_texts/{name}' holds {texts.shape[1]} words per instance; word_index "
                    f"counts up to {int(counts.max())}"
                )
            extra = {
                "tokens": tokens,
                "word_index": index,
                "word_texts": [row[:c] for row, c in zip(texts.tolist(), counts.tolist(), strict=True)],
                "segment_ids": get(f"segments/{name}", kinds="iu", shape=(n, t)) if spec["has_segments"] else None,
            }
        if spec.get("patches") is not None:
            extra["patches"] = spec["patches"]
        try:
            modality = Modality(
                name=name,
                kind=spec["kind"],
                values=values,
                mask=mask,
                feature_names=spec["feature_names"],
                words=words,
                **extra,
            )
        except DatasetError as exc:
            raise DatasetError(f"{source}: {exc}") from exc
        modalities.append(modality)
    labels = get("labels", kinds="biuf", shape=(n,)) if "labels" in reader.entries else None
    optional = {k: get(k, kinds="U", shape=(n,)).tolist() for k in ("splits", "texts") if k in reader.entries}
    meta = None
    if header["meta_columns"]:
        columns = {}
        for c in header["meta_columns"]:
            values = get(f"meta/{c}", kinds="biufU", shape=(n,))
            if f"meta_null/{c}" in reader.entries:
                values = np.where(get(f"meta_null/{c}", kinds="b", shape=(n,)), None, values.astype(object))
            columns[c] = values
        meta = pd.DataFrame(columns)
    media = {}
    for key, mime in header["media"].items():
        offsets = get(f"media/{key}/offsets", kinds="iu", shape=(n + 1,)).astype(np.int64)
        blob = get(f"media/{key}/data", kinds="u", ndim=1)
        if blob.dtype.itemsize != 1:
            raise DatasetError(f"{source}: entry 'media/{key}/data': expected uint8 bytes, got dtype {blob.dtype}")
        if offsets[0] != 0 or (np.diff(offsets) < 0).any() or offsets[-1] != blob.shape[0]:
            raise DatasetError(
                f"{source}: entry 'media/{key}/offsets': expected {n + 1} non-decreasing offsets from 0 to the "
                f"data's {blob.shape[0]} bytes, got {offsets[:3].tolist()}...{offsets[-2:].tolist()}"
            )
        data = blob.tobytes()
        items = [data[a:b] if b > a else None for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
        media[key] = MediaColumn(mime, items)
    try:
        return MultimodalDataset(
            modalities,
            labels,
            label_kind=header["label_kind"],
            ids=ids.tolist(),
            splits=optional.get("splits"),
            texts=optional.get("texts"),
            meta=meta,
            class_names=header["class_names"],
            media=media,
            name=header["name"],
        )
    except DatasetError as exc:
        raise DatasetError(f"{source}: {exc}") from exc


_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    struct.error,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    UnicodeDecodeError,
    KeyError,
    IndexError,
    OverflowError,
)
_READABLE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class _Archive:
    """The entries of an ``.npz``, each read only after its zip and ``.npy`` headers are checked."""

    def __init__(self, source: Path, archive: zipfile.ZipFile, budget: Budget) -> None:
        self.source, self.archive, self.budget = source, archive, budget
        self.entries: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename[: -len(".npy")]
            if key in self.entries:
                raise DatasetError(f"{source}: entry {key!r} appears twice in the archive")
            self.entries[key] = info

    def get(
        self,
        key: str,
        *,
        kinds: str,
        ndim: int | None = None,
        shape: tuple[int, ...] | None = None,
        first: int | None = None,
    ) -> np.ndarray:
        """Entry ``key`` as an array of a dtype kind in ``kinds`` and the given ``ndim`` / ``shape`` / first dim."""
        where = f"{self.source}: entry {key!r}"
        info = self.entries.get(key)
        if info is None:
            raise DatasetError(f"{where} is missing")
        if info.flag_bits & 0x1:
            raise DatasetError(f"{where} is encrypted")
        if info.compress_type not in _READABLE_METHODS:
            raise DatasetError(f"{where} uses zip compression method {info.compress_type} (only stored or deflated)")
        try:
            with self.archive.open(info) as stream:
                arr_shape, fortran, dtype, offset = _npy_header(stream)
                self._check(where, info, arr_shape, dtype, offset, kinds, ndim, shape, first)
                count = math.prod(arr_shape)
                arr = np.empty(count, dtype=dtype)
                view = memoryview(arr).cast("B") if arr.nbytes else memoryview(b"")
                filled = 0
                while filled < arr.nbytes:
                    got = stream.readinto(view[filled:])
                    if not got:
                        raise DatasetError(f"{where} is truncated ({filled} of {arr.nbytes} data bytes)")
                    filled += got
                if stream.read(1):  # also makes zipfile check the entry's CRC
                    raise DatasetError(f"{where} holds more bytes than its header declares")
        except DatasetError:
            raise
        except _ZIP_ERRORS as exc:
            raise DatasetError(f"{where} is corrupt or truncated ({_why(exc)})") from exc
        return arr.reshape(arr_shape, order="F" if fortran else "C")

    def _check(
        self,
        where: str,
        info: zipfile.ZipInfo,
        arr_shape: tuple[int, ...],
        dtype: np.dtype,
        offset: int,
        kinds: str,
        ndim: int | None,
        shape: tuple[int, ...] | None,
        first: int | None,
    ) -> None:
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in kinds:
            names = {"b": "bool", "i": "int", "u": "uint", "f": "float", "U": "unicode"}
            listed = [names[k] for k in kinds]
            expected = listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " or " + listed[-1]
            raise DatasetError(f"{where}: expected {expected} values, got dtype {dtype}")
        nbytes = math.prod(arr_shape) * dtype.itemsize
        if info.file_size != offset + nbytes:
            raise DatasetError(
                f"{where}: its .npy header claims shape {arr_shape} of {dtype} ({nbytes} bytes), but the zip entry "
                f"holds {max(info.file_size - offset, 0)} data bytes"
            )
        self.budget.claim(f"entry {where.split('entry ', 1)[1]} (shape {arr_shape}, {dtype})", nbytes)
        if ndim is not None and len(arr_shape) != ndim:
            raise DatasetError(f"{where}: expected {ndim} dimensions, got shape {arr_shape}")
        if shape is not None and arr_shape != shape:
            raise DatasetError(f"{where}: expected shape {shape}, got {arr_shape}")
        if first is not None and arr_shape[0] != first:
            raise DatasetError(f"{where}: expected N = {first} instances (as ids), got shape {arr_shape}")


def _npy_header(stream: io.BufferedIOBase) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Shape, Fortran order, dtype and data offset from an ``.npy`` header (versions 1.0 and 2.0)."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f".npy format version {version} (this reads 1.0 and 2.0)")
    offset = stream.tell()
    if not all(isinstance(d, int) and d >= 0 for d in shape) or len(shape) > 32:
        raise ValueError(f"bad shape {shape!r} in the .npy header")
    return tuple(shape), bool(fortran), dtype, offset


def check_header(source: Path, header: object, where: str, *, steps: bool = False) -> dict:
    """Validate the dataset header of the native ``.npz`` (and, with ``steps``, the Parquet) layout.

    Returns the header with defaults filled; raises a :class:`DatasetError` naming the file and the key.
    """
    at = f"{source}: header {where}"
    if not isinstance(header, dict):
        raise DatasetError(f"{at}: expected a JSON object, got {type(header).__name__}")
    version = header.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise DatasetError(f"{source}: format version {version!r} unsupported (this reads {FORMAT_VERSION})")
    out = dict(header)
    out["name"] = header.get("name", "dataset")
    if not isinstance(out["name"], str):
        raise DatasetError(f"{at}: 'name' must be a string, got {type(out['name']).__name__}")
    out["label_kind"] = header.get("label_kind")
    if out["label_kind"] not in (None, "regression", "classification"):
        raise DatasetError(f"{at}: 'label_kind' must be regression, classification or null, got {out['label_kind']!r}")
    out["class_names"] = header.get("class_names")
    if out["class_names"] is not None and not _strings(out["class_names"]):
        raise DatasetError(f"{at}: 'class_names' must be a list of strings or null")
    out["meta_columns"] = header.get("meta_columns", [])
    if not _strings(out["meta_columns"]) or len(set(out["meta_columns"])) != len(out["meta_columns"]):
        raise DatasetError(f"{at}: 'meta_columns' must be a list of distinct strings")
    out["media"] = header.get("media", {})
    if not isinstance(out["media"], dict) or not _strings(list(out["media"].values())):
        raise DatasetError(f"{at}: 'media' must map keys to MIME type strings")
    mods = header.get("modalities")
    if not isinstance(mods, list) or not mods:
        raise DatasetError(f"{at}: 'modalities' must be a non-empty list")
    specs = []
    for i, spec in enumerate(mods):
        if not isinstance(spec, dict):
            raise DatasetError(f"{at}: modalities[{i}] must be an object, got {type(spec).__name__}")
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise DatasetError(f"{at}: modalities[{i}] 'name' must be a non-empty string")
        if not isinstance(spec.get("kind"), str):
            raise DatasetError(f"{at}: modality {name!r} 'kind' must be a string")
        if not _strings(spec.get("feature_names")):
            raise DatasetError(f"{at}: modality {name!r} 'feature_names' must be a list of strings")
        for flag in ("has_mask", "has_words", "has_segments"):
            if not isinstance(spec.get(flag, False), bool):
                raise DatasetError(f"{at}: modality {name!r} {flag!r} must be true or false")
        clean = {
            **spec,
            "has_mask": spec.get("has_mask", False),
            "has_words": spec.get("has_words", False),
            "has_segments": spec.get("has_segments", False),
            "tokens": None,
            "patches": None,
        }
        try:
            if spec.get("tokens") is not None:
                clean["tokens"] = TokenSpec.from_dict(spec["tokens"])
            if spec.get("patches") is not None:
                clean["patches"] = PatchGrid.from_dict(spec["patches"])
        except (DatasetError, TypeError) as exc:
            raise DatasetError(f"{at}: modality {name!r}: {exc}") from exc
        if clean["tokens"] is not None and steps:
            raise DatasetError(f"{at}: modality {name!r} holds token ids, which this layout does not store")
        if steps:
            t = spec.get("steps")
            if not isinstance(t, int) or isinstance(t, bool) or t < 0:
                raise DatasetError(f"{at}: modality {name!r} 'steps' must be a non-negative int, got {t!r}")
        specs.append(clean)
    names = [s["name"] for s in specs]
    if len(set(names)) != len(names):
        raise DatasetError(f"{at}: modality names must be distinct, got {names}")
    out["modalities"] = specs
    return out


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)

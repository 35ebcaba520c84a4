"""One entry point for every dataset format: ``load_dataset(path)`` / ``save_dataset(dataset, path)``.

Formats are found through a registry (:data:`FORMATS`, a :class:`~modalens._core.registry.Registry`, the helper
that also holds the explanation methods, feature extractors and reference architectures; :func:`register_loader`,
:func:`list_formats`); ``format="auto"`` picks one from the file extension, then from the file's first bytes:

=========  ==========================  ===================  ==================================================
format     extensions                  magic                reader
=========  ==========================  ===================  ==================================================
native     ``.npz``                    ``PK\\x03\\x04``       :mod:`modalens.data.native` (read and write)
parquet    ``.parquet``, ``.pq``       ``PAR1``             this module (read and write)
mmsa       ``.pkl``, ``.pickle``       ``\\x80`` (protocol)  :mod:`~.mmsa` (read), :mod:`~.mmsa_export` (write)
csd        ``.csd`` or a folder of     ``\\x89HDF``          :func:`modalens.data.csd.load_csd` (read only)
           them
=========  ==========================  ===================  ==================================================

The Parquet layout
------------------
One file, one row per instance, the dataset header as JSON under the schema metadata key ``modalens``
(``format_version``, ``name``, ``label_kind``, ``class_names``, ``modalities`` with ``name``, ``kind``,
``feature_names``, ``steps``, ``has_mask``, ``has_words``, ``meta_columns``, ``media``). Columns:

- ``id`` string; ``split``, ``text`` string and ``label`` (float32 or int64) when the dataset has them;
- ``values/<modality>``: ``fixed_size_list<fixed_size_list<float32, D>, T>`` -- the ``[T, D]`` block of the instance;
- ``mask/<modality>``: ``fixed_size_list<bool, T>``; ``words/<modality>``: ``fixed_size_list<string, T>``;
- ``meta/<column>``: the meta column (numeric or string); ``media/<key>``: binary, null where absent.

It is written to a temporary file and renamed into place, and read without pickle.
"""

from __future__ import annotations

import inspect
import json
import os
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modalens._core.atomic import write_atomically
from modalens._core.registry import Registry
from modalens.data import native
from modalens.data.csd import load_csd
from modalens.data.dataset import DatasetError, MediaColumn, Modality, MultimodalDataset
from modalens.data.limits import Budget, Limits, resolve
from modalens.data.mmsa import load_mmsa
from modalens.data.mmsa_export import save_mmsa

PARQUET_FORMAT_VERSION = 1
PARQUET_KEY = b"modalens"


@dataclass(frozen=True)
class DatasetFormat:
    """A registered dataset format."""

    name: str
    load: Callable[..., MultimodalDataset]
    save: Callable[[MultimodalDataset, Path], Path] | None
    extensions: tuple[str, ...]
    magic: tuple[bytes, ...]
    description: str


FORMATS: Registry[DatasetFormat] = Registry("dataset format")
"""Every dataset format by name (the built-in ones are registered at the end of this module)."""


def register_loader(
    name: str,
    load: Callable[..., MultimodalDataset],
    *,
    save: Callable[[MultimodalDataset, Path], Path] | None = None,
    extensions: tuple[str, ...] = (),
    magic: tuple[bytes, ...] = (),
    description: str = "",
    replace: bool = False,
) -> DatasetFormat:
    """Register a dataset format for :func:`load_dataset` / :func:`save_dataset`.

    Parameters
    ----------
    name
        Format name, used as ``format=`` and listed by :func:`list_formats`.
    load
        ``load(path, **kwargs) -> MultimodalDataset``.
    save
        ``save(dataset, path) -> Path``, or None for a read-only format.
    extensions
        File suffixes (lower case, with the dot) that select this format under ``format="auto"``.
    magic
        Leading bytes that select this format when the extension says nothing.
    description
        One line for listings.
    replace
        Allow replacing an existing registration of the same name; without it a taken name raises
        :class:`~modalens._core.errors.ConfigurationError`.
    """
    fmt = DatasetFormat(name, load, save, tuple(e.lower() for e in extensions), tuple(magic), description)
    return FORMATS.register(name, fmt, replace=replace)


def list_formats() -> list[str]:
    """Names of the registered dataset formats, sorted."""
    return FORMATS.names()


def _formats() -> list[DatasetFormat]:
    return [fmt for _, fmt in FORMATS.items()]


def _supported() -> str:
    return "; ".join(
        f"{f.name} ({', '.join(f.extensions) or 'no extension'}{'' if f.save else ', read only'})" for f in _formats()
    )


def _get(name: str) -> DatasetFormat:
    if name not in FORMATS:
        raise DatasetError(f"unknown dataset format {name!r}; supported: {_supported()}")
    return FORMATS.get(name)


def detect_format(path: str | os.PathLike) -> str:
    """The format of a file or folder: by extension, then by magic bytes; a folder of ``.csd`` files is ``csd``."""
    source = Path(path)
    if source.is_dir():
        if any(source.glob("*.csd")):
            return "csd"
        raise DatasetError(f"{source}: a folder is read as CMU-SDK sequences, but it holds no .csd file")
    if not source.is_file():
        raise DatasetError(f"{source}: no such file")
    suffix = source.suffix.lower()
    for fmt in _formats():
        if suffix in fmt.extensions:
            return fmt.name
    with source.open("rb") as handle:
        head = handle.read(16)
    for fmt in _formats():
        if any(head.startswith(m) for m in fmt.magic):
            return fmt.name
    raise DatasetError(
        f"{source}: unknown dataset format (extension {suffix!r}, first bytes {head[:8]!r}); supported: {_supported()}"
    )


def load_dataset(
    path: str | os.PathLike, format: str = "auto", *, limits: Limits | None = None, **kwargs: Any
) -> MultimodalDataset:
    """Load a dataset in any registered format.

    Parameters
    ----------
    path
        A file, or a folder of ``.csd`` files.
    format
        A name from :func:`list_formats`, or ``"auto"`` to detect it.
    limits
        Caps on what the file may claim (:class:`~modalens.data.limits.Limits`: bytes per array and per load, pickle
        nesting depth); default from ``MODALENS_MAX_BYTES`` / ``MODALENS_MAX_ARRAY_BYTES``, else 8 GiB per array and
        16 GiB per load. Every built-in format checks them before allocating.
    **kwargs
        Passed to the format's reader (e.g. ``split=`` for mmsa, ``labels_csd=`` for csd).
    """
    name = detect_format(path) if format == "auto" else format
    fmt = _get(name)
    if limits is not None:
        params = inspect.signature(fmt.load).parameters.values()
        if not any(p.name == "limits" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            raise DatasetError(f"the reader of format {name!r} takes no limits=; it cannot check sizes")
        kwargs["limits"] = resolve(limits)
    return fmt.load(path, **kwargs)


def save_dataset(dataset: MultimodalDataset, path: str | os.PathLike, format: str = "auto") -> Path:
    """Save a dataset as ``native`` (``.npz``) or ``parquet``; ``"auto"`` picks by extension (npz if none fits)."""
    target = Path(path)
    if format == "auto":
        suffix = target.suffix.lower()
        format = next((f.name for f in _formats() if suffix in f.extensions and f.save), "native")
    fmt = _get(format)
    if fmt.save is None:
        writable = [f.name for f in _formats() if f.save]
        raise DatasetError(f"format {format!r} is read only; modalens writes {writable}")
    return fmt.save(dataset, target)


# -- CMU-SDK folders ---------------------------------------------------------------------------------------------
def load_csd_path(
    path: str | os.PathLike,
    *,
    modalities: Mapping[str, str] | None = None,
    labels_csd: str | os.PathLike | None = None,
    words_csd: str | os.PathLike | None = None,
    align_to: str | None = "auto",
    limits: Limits | None = None,
    **kwargs: Any,
) -> MultimodalDataset:
    """Load one ``.csd`` file or a folder of them.

    In a folder, ``labels_csd`` / ``words_csd`` may be file names inside it; when not given, the one file whose
    name contains ``label`` is the labels sequence and the one whose stem ends in ``words`` the words sequence.
    ``modalities`` maps modality names to file names; by default every other file is a modality named after its
    stem. ``align_to="auto"`` aligns to words when there is a words sequence.
    """
    source = Path(path)
    folder = source if source.is_dir() else source.parent
    files = sorted(folder.glob("*.csd")) if source.is_dir() else [source]

    def resolve(p: str | os.PathLike | None) -> Path | None:
        return None if p is None else (Path(p) if Path(p).is_absolute() or Path(p).exists() else folder / p)

    labels, words = resolve(labels_csd), resolve(words_csd)
    if source.is_dir():
        labels = labels or _only(source, [f for f in files if "label" in f.stem.lower()], "labels")
        words = words or _only(source, [f for f in files if f.stem.lower().endswith("words")], "words")
    if modalities is not None:
        paths = {m: resolve(p) for m, p in modalities.items()}
    else:
        paths = {f.stem: f for f in files if f not in (labels, words)}
    if align_to == "auto":
        align_to = "words" if words is not None else None
    return load_csd(
        paths,
        labels_csd=labels,
        words_csd=words,
        align_to=align_to,
        name=kwargs.pop("name", folder.name),
        limits=limits,
        **kwargs,
    )


def _only(folder: Path, candidates: list[Path], role: str) -> Path | None:
    if len(candidates) > 1:
        raise DatasetError(
            f"{folder}: several candidates for the {role} sequence ({[c.name for c in candidates]}); "
            f"name it with {role}_csd="
        )
    return candidates[0] if candidates else None


# -- Parquet ---------------------------------------------------------------------------------------------------
def save_parquet(dataset: MultimodalDataset, path: str | os.PathLike) -> Path:
    """Write a dataset in the Parquet layout of this module's docstring, atomically."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    target = Path(path)
    columns: dict[str, pa.Array] = {"id": pa.array(dataset.ids.astype(str).tolist(), pa.string())}
    for key, value in (("split", dataset.splits), ("text", dataset.texts)):
        if value is not None:
            columns[key] = pa.array(value.astype(str).tolist(), pa.string())
    if dataset.labels is not None:
        columns["label"] = pa.array(dataset.labels)
    header: dict[str, Any] = {
        "format_version": PARQUET_FORMAT_VERSION,
        "name": dataset.name,
        "label_kind": dataset.label_kind,
        "class_names": dataset.class_names,
        "modalities": [],
        "meta_columns": [],
        "media": {k: c.mime for k, c in dataset.media.items()},
    }
    for name, m in dataset.modalities.items():
        if m.tokens is not None or m.patches is not None:
            what = "token ids" if m.tokens is not None else "image patches"
            raise DatasetError(
                f"{target}: modality {name!r} holds {what}; the Parquet layout stores float features only -- save "
                "the dataset as .npz"
            )
        _, t, d = m.values.shape
        inner = pa.FixedSizeListArray.from_arrays(pa.array(m.values.reshape(-1), pa.float32()), d)
        columns[f"values/{name}"] = pa.FixedSizeListArray.from_arrays(inner, t)
        if m.mask is not None:
            columns[f"mask/{name}"] = pa.FixedSizeListArray.from_arrays(pa.array(m.mask.reshape(-1)), t)
        if m.words is not None:
            flat = [w for row in m.words for w in row]
            columns[f"words/{name}"] = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.string()), t)
        header["modalities"].append(
            {
                "name": name,
                "kind": m.kind,
                "feature_names": m.feature_names,
                "steps": t,
                "has_mask": m.mask is not None,
                "has_words": m.words is not None,
            }
        )
    if dataset.meta is not None:
        for col in dataset.meta.columns:
            series = dataset.meta[col]
            data = series.to_numpy()
            if data.dtype == object or not (np.issubdtype(data.dtype, np.number) or data.dtype == bool):
                data = series.astype(str).tolist()
            columns[f"meta/{col}"] = pa.array(data)
            header["meta_columns"].append(str(col))
    for key, column in dataset.media.items():
        columns[f"media/{key}"] = pa.array(column.items, pa.binary())
    table = pa.table(columns)
    table = table.replace_schema_metadata({PARQUET_KEY: json.dumps(header).encode()})

    return write_atomically(target, lambda tmp: pq.write_table(table, tmp), suffix=".parquet")


_ARROW_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, TypeError, KeyError, IndexError)
_PHYSICAL_WIDTH = {0: 1, 1: 4, 2: 8, 3: 12, 4: 4, 5: 8, 6: 4}  # BOOLEAN .. BYTE_ARRAY (its dictionary index)


class _Thrift:
    """A reader of the Thrift compact protocol, enough to walk a Parquet footer without trusting it.

    Arrow aborts the process (an uncaught C++ exception) when Python asks for the metadata of a column chunk whose
    statistics are inconsistent, so the sizes a footer claims are read here, with every length checked against the
    bytes that remain, before Arrow builds anything from it.
    """

    def __init__(self, data: bytes, source: Path) -> None:
        self.data, self.pos, self.source = data, 0, source

    def fail(self, what: str) -> DatasetError:
        return DatasetError(f"{self.source}: the Parquet footer is corrupt ({what} at footer byte {self.pos})")

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("it ends early")
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self) -> int:
        value = shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 70:
                raise self.fail("an integer longer than 10 bytes")

    def zigzag(self) -> int:
        v = self.varint()
        return (v >> 1) ^ -(v & 1)

    def binary(self) -> bytes:
        n = self.varint()
        if n > len(self.data) - self.pos:
            raise self.fail(f"a string of {n} bytes past the end")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def value(self, kind: int, depth: int) -> Any:
        """One value of compact type ``kind``: ints, bytes, lists, and structs as {field id: value}."""
        if depth > 32:
            raise self.fail("structures nested more than 32 deep")
        if kind in (1, 2):
            return kind == 1
        if kind == 3:
            return self.byte()
        if kind in (4, 5, 6):
            return self.zigzag()
        if kind == 7:
            if len(self.data) - self.pos < 8:
                raise self.fail("a double past the end")
            self.pos += 8
            return None
        if kind == 8:
            return self.binary()
        if kind in (9, 10):
            head = self.byte()
            size, elem = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            if size > len(self.data) - self.pos:
                raise self.fail(f"a list of {size} items past the end")
            if elem in (1, 2):  # booleans in a list are one byte each
                self.pos += size
                return [None] * size
            return [self.value(elem, depth + 1) for _ in range(size)]
        if kind == 11:
            size = self.varint()
            if size == 0:
                return {}
            types = self.byte()
            if 2 * size > len(self.data) - self.pos:
                raise self.fail(f"a map of {size} items past the end")
            return {i: (self.value(types >> 4, depth + 1), self.value(types & 0x0F, depth + 1)) for i in range(size)}
        if kind == 12:
            return self.struct(depth + 1)
        raise self.fail(f"unknown field type {kind}")

    def struct(self, depth: int = 0) -> dict[int, Any]:
        fields: dict[int, Any] = {}
        last = 0
        while True:
            head = self.byte()
            if head == 0:
                return fields
            delta, kind = head >> 4, head & 0x0F
            last = last + delta if delta else self.zigzag()
            fields[last] = self.value(kind, depth)


def _parquet_claims(source: Path, budget: Budget) -> list[str]:
    """Claim every column's decoded size from the footer, before Arrow reads a page; returns byte-array leaf paths.

    Fixed-width leaves claim values x width; byte-array leaves (strings, binary) claim their dictionary indices here
    and are read dictionary-encoded, their decoded bytes claimed once the dictionary is known (``_decode``).
    """
    size = source.stat().st_size
    with source.open("rb") as handle:
        if size < 12:
            raise DatasetError(f"{source}: not a readable Parquet file (only {size} bytes)")
        handle.seek(size - 8)
        tail = handle.read(8)
        length = int.from_bytes(tail[:4], "little")
        if tail[4:] != b"PAR1":
            raise DatasetError(f"{source}: not a readable Parquet file (no PAR1 footer magic; encrypted or truncated)")
        if length > size - 12:
            raise DatasetError(f"{source}: not a readable Parquet file (a {length}-byte footer in {size} bytes)")
        handle.seek(size - 8 - length)
        footer = _Thrift(handle.read(length), source).struct()
    leaves: list[int] = []  # type_length of each leaf, in column order
    for element in footer.get(2) or []:
        if isinstance(element, dict) and not element.get(5):  # no children: a leaf
            leaves.append(int(element.get(2) or 0))
    claims: dict[str, int] = {}
    byte_arrays: list[str] = []
    for group in footer.get(4) or []:
        columns = group.get(1) if isinstance(group, dict) else None
        for index, chunk in enumerate(columns or []):
            meta = chunk.get(3) if isinstance(chunk, dict) else None
            if not isinstance(meta, dict):
                raise DatasetError(f"{source}: the Parquet footer is corrupt (a column chunk without metadata)")
            if chunk.get(1):
                raise DatasetError(f"{source}: a column chunk refers to another file ({chunk[1]!r}); refused")
            path = [p.decode("utf-8", "replace") for p in meta.get(3) or [] if isinstance(p, bytes)]
            kind, count = meta.get(1), meta.get(5)
            if not path or not isinstance(kind, int) or not isinstance(count, int) or count < 0:
                raise DatasetError(f"{source}: the Parquet footer is corrupt (column chunk {index} of a row group)")
            width = _PHYSICAL_WIDTH.get(kind, 1)
            if kind == 7:  # FIXED_LEN_BYTE_ARRAY
                width = max(leaves[index] if index < len(leaves) else 1, 1)
            if kind == 6 and ".".join(path) not in byte_arrays:
                byte_arrays.append(".".join(path))
            claims[path[0]] = claims.get(path[0], 0) + count * width
    for name, nbytes in claims.items():
        budget.claim(f"column {name!r}", nbytes)
    return byte_arrays


def _decode(source: Path, key: str, arr: Any, budget: Budget) -> Any:
    """A dictionary-encoded leaf decoded, after its decoded size is claimed (a dictionary of one long string
    referenced by every row is a Parquet size bomb)."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    if not isinstance(arr.type, pa.DictionaryType):
        return arr
    lengths = (
        pc.binary_length(arr.dictionary)
        if pa.types.is_binary(arr.dictionary.type) or pa.types.is_string(arr.dictionary.type)
        else None
    )
    if lengths is not None:
        total = pc.sum(lengths.take(arr.indices)).as_py() or 0
        budget.claim(f"column {key!r} (decoded strings)", total)
    return arr.dictionary_decode()


def load_parquet(
    path: str | os.PathLike, *, limits: Limits | None = None, budget: Budget | None = None
) -> MultimodalDataset:
    """Read a dataset written by :func:`save_parquet`.

    Before anything is decoded, every column's size is claimed against ``limits`` from the Parquet footer (and a
    string column's decoded size from its dictionary). Refused with a :class:`DatasetError` naming the file and the
    column: a header that is not the documented JSON, duplicate column names, a nested column whose rows do not all
    hold the declared number of steps and features (ragged rows would shift values into the next instance), nulls
    in ids, splits, texts, labels, values, masks or words, values that are not real numbers (decimal, string,
    struct ...), masks that are not booleans, words that are not strings, meta columns that are not numbers,
    booleans or strings, and media that are not binary.
    """
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    source = Path(path)
    if not source.is_file():
        raise DatasetError(f"{source}: no such file")
    budget = budget if budget is not None else resolve(limits).budget(source)
    budget.add_file(source)
    errors = (pa.ArrowException, *_ARROW_ERRORS)
    try:
        probe = pq.ParquetFile(source)
        names = probe.schema_arrow.names
        raw = (probe.schema_arrow.metadata or {}).get(PARQUET_KEY)
    except errors as exc:
        raise DatasetError(f"{source}: not a readable Parquet file (truncated or corrupt?): {exc}") from exc
    if raw is None:
        raise DatasetError(f"{source}: not a modalens Parquet dataset (no '{PARQUET_KEY.decode()}' schema metadata)")
    try:
        header = json.loads(raw)
    except RecursionError as exc:
        raise DatasetError(f"{source}: schema metadata 'modalens' is corrupt (JSON nested too deeply)") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{source}: schema metadata 'modalens' is not JSON ({exc})") from exc
    if isinstance(header, dict) and header.get("format_version") != PARQUET_FORMAT_VERSION:
        raise DatasetError(
            f"{source}: format version {header.get('format_version')!r} unsupported "
            f"(this reads {PARQUET_FORMAT_VERSION})"
        )
    header = native.check_header(source, header, "'modalens' (schema metadata)", steps=True)
    duplicated = sorted({c for c in names if names.count(c) > 1})
    if duplicated:
        raise DatasetError(f"{source}: column names must be distinct; {duplicated} repeat")
    try:
        byte_arrays = _parquet_claims(source, budget)
        reader = pq.ParquetFile(source, read_dictionary=byte_arrays)
        # row group by row group: Arrow cannot read nested dictionary columns across row groups in one go
        tables = [reader.read_row_group(i) for i in range(reader.num_row_groups)]
    except DatasetError:
        raise
    except errors as exc:
        raise DatasetError(f"{source}: not a readable Parquet file (truncated or corrupt?): {exc}") from exc
    try:
        return _parquet_dataset(source, tables, names, header, budget)
    except DatasetError as exc:
        if str(source) in str(exc):
            raise
        raise DatasetError(f"{source}: {exc}") from exc
    except errors as exc:
        raise DatasetError(f"{source}: a column could not be read ({type(exc).__name__}: {exc})") from exc


def _parquet_dataset(
    source: Path, tables: list[Any], names: list[str], header: dict, budget: Budget
) -> MultimodalDataset:
    """The dataset from the row groups of a modalens Parquet file, read chunk by chunk (each with its dictionaries)."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    n = sum(t.num_rows for t in tables)

    def chunks(key: str) -> list[pa.Array]:
        if key not in names:
            raise DatasetError(f"{source}: column {key!r} is missing")
        return [chunk for t in tables for chunk in t.column(key).chunks]

    def first_null(arr: pa.Array, offset: int) -> int:
        return offset + int(pc.index(arr.is_null(), True).as_py())

    def nested_chunk(key: str, arr: pa.Array, shape: tuple[int, ...], offset: int, leaf: str) -> np.ndarray:
        labels = [("instance", "steps"), ("step", "features")]
        for level, size in enumerate(shape[1:]):
            what, unit = labels[level] if level < len(labels) else (f"level {level}", "values")
            if arr.null_count:
                at = first_null(arr, offset if level == 0 else 0)
                raise DatasetError(f"{source}: column {key!r}: a null {what} at index {at}")
            kind = arr.type
            if isinstance(kind, pa.FixedSizeListType):
                if kind.list_size != size:
                    raise DatasetError(
                        f"{source}: column {key!r}: each {what} holds {kind.list_size} {unit} where the header's "
                        f"shape {[n, *shape[1:]]} needs {size}"
                    )
            elif isinstance(kind, pa.ListType | pa.LargeListType):
                lengths = arr.value_lengths().to_numpy(zero_copy_only=False)
                bad = np.flatnonzero(lengths != size)
                if bad.size:
                    at = int(bad[0]) + (offset if level == 0 else 0)
                    raise DatasetError(
                        f"{source}: column {key!r}: ragged rows: {what} {at} holds {int(lengths[bad[0]])} "
                        f"{unit} where the header's shape {[n, *shape[1:]]} needs {size}"
                    )
            else:
                raise DatasetError(f"{source}: column {key!r}: expected nested lists of shape {[n, *shape[1:]]}")
            arr = arr.flatten()
        arr = _decode(source, key, arr, budget)
        if arr.null_count:
            at = offset + first_null(arr, 0) // max(int(np.prod(shape[1:])), 1)
            raise DatasetError(f"{source}: column {key!r}: a null value in instance {at}")
        kind = arr.type
        ok = {
            "number": pa.types.is_floating(kind) or pa.types.is_integer(kind),
            "bool": pa.types.is_boolean(kind),
            "string": pa.types.is_string(kind) or pa.types.is_large_string(kind),
        }[leaf]
        if not ok:
            expected = {"number": "real numbers", "bool": "booleans", "string": "strings"}[leaf]
            raise DatasetError(f"{source}: column {key!r}: expected {expected}, got {kind}")
        values = arr.to_numpy(zero_copy_only=False)
        size = int(np.prod(shape))
        if values.size != size:
            raise DatasetError(
                f"{source}: column {key!r}: expected shape {[n, *shape[1:]]} ({size} values here), got {values.size}"
            )
        return values.reshape(shape)

    def nested(key: str, shape: tuple[int, ...], leaf: str) -> np.ndarray:
        parts, offset = [], 0
        for arr in chunks(key):
            parts.append(nested_chunk(key, arr, (len(arr), *shape[1:]), offset, leaf))
            offset += len(arr)
        if not parts:
            return np.zeros(shape, dtype={"number": np.float32, "bool": bool, "string": object}[leaf])
        return np.concatenate(parts)

    def flat(key: str, test: Any, expected: str, *, nulls: bool = False) -> list[pa.Array]:
        out, offset = [], 0
        for chunk in chunks(key):
            arr = _decode(source, key, chunk, budget)
            if not test(arr.type):
                raise DatasetError(f"{source}: column {key!r}: expected {expected}, got {arr.type}")
            if arr.null_count and not nulls:
                at = first_null(arr, offset)
                raise DatasetError(f"{source}: column {key!r}: null at row {at}; expected {expected}")
            out.append(arr)
            offset += len(arr)
        return out

    def pylist(arrays: list[pa.Array]) -> list:
        return [v for arr in arrays for v in arr.to_pylist()]

    def is_text(t: Any) -> bool:
        return pa.types.is_string(t) or pa.types.is_large_string(t)

    def is_number(t: Any) -> bool:
        return pa.types.is_integer(t) or pa.types.is_floating(t)

    def is_binary(t: Any) -> bool:
        return pa.types.is_binary(t) or pa.types.is_large_binary(t)

    def is_meta(t: Any) -> bool:
        return is_number(t) or pa.types.is_boolean(t) or is_text(t)

    modalities = []
    for spec in header["modalities"]:
        name, t, d = spec["name"], spec["steps"], len(spec["feature_names"])
        words = nested(f"words/{name}", (n, t), "string").tolist() if spec["has_words"] else None
        modalities.append(
            Modality(
                name=name,
                kind=spec["kind"],
                values=nested(f"values/{name}", (n, t, d), "number").astype(np.float32),
                mask=nested(f"mask/{name}", (n, t), "bool").astype(bool) if spec["has_mask"] else None,
                feature_names=spec["feature_names"],
                words=words,
            )
        )
    labels = None
    if "label" in names:
        parts = [a.to_numpy(zero_copy_only=False) for a in flat("label", is_number, "numeric labels")]
        labels = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    meta = None
    if header["meta_columns"]:
        columns = {}
        for c in header["meta_columns"]:
            parts = [a.to_pandas() for a in flat(f"meta/{c}", is_meta, "numbers, booleans or strings", nulls=True)]
            columns[c] = pd.concat(parts, ignore_index=True) if parts else pd.Series([], dtype=object)
        meta = pd.DataFrame(columns)
    media = {
        k: MediaColumn(mime, pylist(flat(f"media/{k}", is_binary, "binary", nulls=True)))
        for k, mime in header["media"].items()
    }
    optional = {k: pylist(flat(k, is_text, "strings")) for k in ("split", "text") if k in names}
    return MultimodalDataset(
        modalities,
        labels,
        label_kind=header["label_kind"],
        ids=pylist(flat("id", is_text, "strings")),
        splits=optional.get("split"),
        texts=optional.get("text"),
        meta=meta,
        class_names=header["class_names"],
        media=media,
        name=header["name"],
    )


def load_native(
    path: str | os.PathLike, *, limits: Limits | None = None, budget: Budget | None = None
) -> MultimodalDataset:
    """Read a modalens ``.npz`` (:func:`modalens.data.native.load_dataset`), reporting corrupt members by file."""
    try:
        return native.load_dataset(path, limits=limits, budget=budget)
    except zlib.error as exc:  # a damaged deflate stream inside a member
        raise DatasetError(f"{path}: an entry of the archive is corrupt ({exc})") from exc


register_loader(
    "native",
    load_native,
    save=native.save_dataset,
    extensions=(".npz",),
    magic=(b"PK\x03\x04",),
    description="modalens .npz archive (see modalens.data.native)",
)
register_loader(
    "parquet",
    load_parquet,
    save=save_parquet,
    extensions=(".parquet", ".pq"),
    magic=(b"PAR1",),
    description="modalens Parquet table, one row per instance",
)
register_loader(
    "mmsa",
    load_mmsa,
    save=save_mmsa,
    extensions=(".pkl", ".pickle"),
    magic=(b"\x80",),
    description="MMSA pickle (CMU-MOSI, CMU-MOSEI, CH-SIMS), read through a restricted unpickler",
)
register_loader(
    "csd",
    load_csd_path,
    extensions=(".csd",),
    magic=(b"\x89HDF\r\n\x1a\n",),
    description="CMU Multimodal SDK computational sequences (HDF5), one file or a folder",
)

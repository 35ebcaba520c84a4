"""A small binary columnar container for the instance table (``/api/runs/{run}/instances?format=binary``).

JSON of 50,000 instances x 15 columns is 13 MB that the browser must parse number by number; this form carries the
same columns as little-endian typed buffers the browser views in place (``web/src/loadTable.ts``), with strings
dictionary-encoded. Layout (all integers little-endian)::

    bytes 0..3    magic b"MLCT"
    bytes 4..7    uint32 format version (1)
    bytes 8..11   uint32 length H of the header
    bytes 12..    header: UTF-8 JSON, then zero padding to a multiple of 8
    then          the buffers, each starting at a multiple of 8 from the start of the buffer section

The header is ``{"meta": {...document fields that are not columns...}, "columns": [{"group", "name", "dtype",
"offset", "count", ...}]}``. ``group`` says where the column goes in the JSON document (``"columns"``,
``"shapley"`` or ``""`` for a top-level array such as ``x``). ``dtype`` is one of

- ``"f64"``: float64 values; NaN stands for JSON ``null`` (non-finite values are ``null`` in JSON too);
- ``"i32"``: int32 values (integer columns that fit; others go as ``f64``, exact up to 2**53);
- ``"bool"``: uint8 0/1, 255 for ``null``;
- ``"dict"``: int32 codes into ``"values"`` (a JSON list in the header), -1 for ``null``;
- ``"json"``: no buffer; ``"values"`` holds the whole column as a JSON list (mixed or nested values).

:func:`decode` reads it back into the JSON document's shape (tests, API users with numpy).
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np
import pandas as pd

MAGIC = b"MLCT"
VERSION = 1
MEDIA_TYPE = "application/vnd.modalens.columns"
_INT32 = np.iinfo(np.int32)


def _scalar(value: Any) -> Any:
    """A JSON-ready value, as the JSON document writes it (``modalens.app.data.column``): NaN, inf and NA are null."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        return _scalar(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.ndarray, list, tuple)):
        return [_scalar(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    return value


def _encode_column(values: np.ndarray) -> tuple[str, bytes | None, list[Any] | None]:
    """(dtype, buffer, header values) of one column."""
    if values.dtype.kind == "f":
        out = values.astype("<f8", copy=True)
        out[~np.isfinite(out)] = np.nan
        return "f64", out.tobytes(), None
    if values.dtype.kind in "iu":
        if len(values) == 0 or (values.min() >= _INT32.min and values.max() <= _INT32.max):
            return "i32", values.astype("<i4").tobytes(), None
        return "f64", values.astype("<f8").tobytes(), None
    if values.dtype.kind == "b":
        return "bool", values.astype(np.uint8).tobytes(), None
    # objects: strings (or other scalars) with None/NaN/NA for missing
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    except TypeError:  # unhashable values (lists): the column as JSON
        return "json", None, [_scalar(v) for v in values.tolist()]
    uniques = [_scalar(v) for v in np.asarray(uniques, dtype=object).tolist()]
    if any(isinstance(u, (list, dict)) for u in uniques):
        return "json", None, [_scalar(v) for v in values.tolist()]
    if all(isinstance(u, bool) for u in uniques) and len(uniques):  # a bool column with nulls (object dtype)
        out = np.full(len(values), 255, np.uint8)
        ok = codes >= 0
        out[ok] = np.asarray(uniques, dtype=bool)[codes[ok]]
        return "bool", out.tobytes(), None
    # a missing value that factorize kept (e.g. an inf in an object column) is null, as in JSON
    nulls = [k for k, u in enumerate(uniques) if u is None]
    codes = codes.astype("<i4")
    if nulls:
        codes[np.isin(codes, nulls)] = -1
    return "dict", codes.tobytes(), uniques


def encode(meta: dict[str, Any], columns: list[tuple[str, str, Any]]) -> bytes:
    """The binary document: ``meta`` (JSON-ready fields) and ``(group, name, values)`` columns, all of one length."""
    specs: list[dict[str, Any]] = []
    buffers: list[bytes] = []
    offset = 0
    for group, name, values in columns:
        arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
        dtype, buf, listed = _encode_column(arr)
        spec: dict[str, Any] = {"group": group, "name": name, "dtype": dtype, "count": int(len(arr))}
        if listed is not None:
            spec["values"] = listed
        if buf is not None:
            spec["offset"] = offset
            buffers.append(buf)
            pad = -len(buf) % 8
            if pad:
                buffers.append(b"\0" * pad)
            offset += len(buf) + pad
        specs.append(spec)
    header = json.dumps({"meta": meta, "columns": specs}, separators=(",", ":"), allow_nan=False).encode()
    head = MAGIC + struct.pack("<II", VERSION, len(header)) + header
    head += b"\0" * (-len(head) % 8)
    return b"".join([head, *buffers])


def decode(data: bytes) -> dict[str, Any]:
    """The JSON document a binary one encodes (``None`` for missing values), for tests and Python readers."""
    if len(data) < 12 or data[:4] != MAGIC:
        raise ValueError("not a modalens column document (bad magic)")
    version, size = struct.unpack_from("<II", data, 4)
    if version != VERSION:
        raise ValueError(f"column document version {version}; this reader knows {VERSION}")
    header = json.loads(data[12 : 12 + size])
    base = 12 + size + (-(12 + size) % 8)
    doc: dict[str, Any] = dict(header["meta"])
    for spec in header["columns"]:
        count, dtype = spec["count"], spec["dtype"]
        if dtype == "json":
            values: list[Any] = spec["values"]
        else:
            kind = {"f64": "<f8", "i32": "<i4", "bool": "u1", "dict": "<i4"}[dtype]
            arr = np.frombuffer(data, dtype=kind, count=count, offset=base + spec["offset"])
            if dtype == "f64":
                values = [None if v != v else v for v in arr.tolist()]
            elif dtype == "i32":
                values = arr.tolist()
            elif dtype == "bool":
                values = [None if v == 255 else bool(v) for v in arr.tolist()]
            else:
                table = spec["values"]
                values = [None if c < 0 else table[c] for c in arr.tolist()]
        if spec["group"]:
            doc.setdefault(spec["group"], {})[spec["name"]] = values
        else:
            doc[spec["name"]] = values
    return doc

"""Crafted hostile and corrupt files, one per known way in, for every format; each must end in a clear error.

Each builder writes one file (or folder) and :func:`write_hostile` returns them as fuzz cases labelled with the case
name. They reproduce what an audit of the loaders found: code execution through pickle globals, memory-unsafe numpy
reconstruction (object arrays from short lists or raw bytes), C-stack exhaustion through nesting, size bombs in
every format (a few bytes claiming gigabytes), HDF5 files that read other local files, and Parquet or ``.npz``
files whose rows are ragged, whose ids are null or whose values are not real numbers.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from modalens.data.loaders import save_dataset

from ..helpers import write_corpus, write_csd
from .harness import Case
from .seeds import csd_sequence, mmsa_payload, tiny_dataset

MARKER = "PWNED"  # a hostile pickle that ran code would create this file next to itself

# -- pickle assembly -----------------------------------------------------------------------------------------------
PROTO2 = b"\x80\x02"
MARK, STOP, REDUCE, BUILD, NONE, TRUE, FALSE = b"(", b".", b"R", b"b", b"N", b"\x88", b"\x89"
TUPLE, TUPLE1, TUPLE2, TUPLE3 = b"t", b"\x85", b"\x86", b"\x87"
EMPTY_DICT, EMPTY_LIST, SETITEM, APPEND, APPENDS = b"}", b"]", b"s", b"a", b"e"


def g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def i4(v: int) -> bytes:
    return b"J" + struct.pack("<i", v)


def big(v: int) -> bytes:  # LONG1
    raw = v.to_bytes((v.bit_length() + 8) // 8 or 1, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def u(s: str) -> bytes:
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def by(b: bytes) -> bytes:  # BINBYTES (protocol 3)
    return b"B" + struct.pack("<I", len(b)) + b


def tup(*items: bytes) -> bytes:
    return MARK + b"".join(items) + TUPLE


def lst(*items: bytes) -> bytes:
    return EMPTY_LIST + (MARK + b"".join(items) + APPENDS if items else b"")


def dtype_(code: str, order: str = "|", names: bytes = NONE, fields: bytes = NONE, elsize: int = -1) -> bytes:
    state = tup(i4(3), u(order), NONE, names, fields, i4(elsize), i4(-1), i4(63 if code.startswith("O") else 0))
    return g("numpy", "dtype") + tup(u(code), FALSE, TRUE) + REDUCE + state + BUILD


def array_(shape: tuple[int, ...], dtype: bytes, data: bytes) -> bytes:
    """numpy's protocol-2 array: _reconstruct(ndarray, (0,), b'b') then BUILD (1, shape, dtype, False, data)."""
    recon = g("numpy._core.multiarray", "_reconstruct") + tup(g("numpy", "ndarray"), tup(i4(0)), by(b"b")) + REDUCE
    return recon + tup(i4(1), tup(*(big(d) for d in shape)), dtype, FALSE, data) + BUILD


def as_split(field_bytes: bytes, field: str = "text") -> bytes:
    """A pickle of {'train': {field: <the given opcodes>}}."""
    return PROTO2 + EMPTY_DICT + u("train") + EMPTY_DICT + u(field) + field_bytes + SETITEM + SETITEM + STOP


class _Call:
    def __init__(self, fn: Callable, *args: object) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


class _Custom:
    pass


def _mmsa_with(edit: Callable[[dict], None]) -> bytes:
    data = mmsa_payload()
    edit(data)
    return pickle.dumps(data, protocol=4)


def _set(split: str, key: str, value: object) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        data[split][key] = value

    return edit


def pickle_cases(folder: Path) -> dict[str, bytes]:
    marker = str(folder / MARKER)
    custom = np.empty(2, dtype=object)
    custom[0], custom[1] = _Custom(), _Custom()
    deep = MARK * 50_000 + b"l" * 50_000
    # lists made first, then each appended into the one before it: nesting that grows after the fact
    memo_chain = bytearray(PROTO2)
    n_chain = 50_000
    for k in range(n_chain):
        memo_chain += EMPTY_LIST + b"r" + struct.pack("<I", k) + b"0"  # LONG_BINPUT k, POP
    for k in range(n_chain - 1):
        memo_chain += b"j" + struct.pack("<I", k) + b"j" + struct.pack("<I", k + 1) + APPEND + b"0"
    memo_chain += EMPTY_DICT + u("train") + EMPTY_DICT + u("text") + b"j" + struct.pack("<I", 0)
    memo_chain += SETITEM + SETITEM + STOP
    # a DAG: level k is a list holding level k-1 twice, so 40 levels claim 2**40 leaves
    dag: list = [1.0]
    for _ in range(40):
        dag = [dag, dag]
    shared = np.full((1000, 100), 1.5)
    big_text = "a " * 500_000
    cases = {
        "rce-os-system": pickle.dumps({"train": _Call(__import__("os").system, f"touch {marker}")}, protocol=4),
        "rce-builtins-eval": pickle.dumps({"train": _Call(eval, f"open({marker!r}, 'w')")}, protocol=2),
        "rce-getattr": PROTO2 + g("builtins", "getattr") + tup(g("builtins", "dict"), u("fromkeys")) + REDUCE + STOP,
        "rce-global-protocol0": b"cos\nsystem\n(S'touch " + marker.encode() + b"'\ntR.",
        "rce-inst-opcode": b"(S'touch " + marker.encode() + b"'\nios\nsystem\n.",
        "object-array-custom-class": pickle.dumps({"train": {"text": custom}}, protocol=4),
        "object-array-short-state": as_split(array_((100_000,), dtype_("O8"), lst(u("a")))),
        "object-array-long-state": as_split(array_((1,), dtype_("O8"), lst(u("a"), u("b"), u("c")))),
        "object-array-of-containers": as_split(array_((2,), dtype_("O8"), lst(lst(u("a")), EMPTY_DICT))),
        "object-array-from-bytes": as_split(array_((2,), dtype_("O8"), by(b"\x41" * 16))),
        "structured-object-field": as_split(
            array_(
                (2,),
                dtype_(
                    "V8",
                    names=tup(u("a")),
                    fields=EMPTY_DICT + u("a") + tup(dtype_("O8"), i4(0)) + SETITEM,
                    elsize=8,
                ),
                by(b"\x41" * 16),
            )
        ),
        "structured-overlapping-fields": as_split(
            array_(
                (1,),
                dtype_(
                    "V8",
                    names=tup(u("a"), u("b")),
                    fields=EMPTY_DICT
                    + u("a")
                    + tup(dtype_("O8"), i4(0))
                    + SETITEM
                    + u("b")
                    + tup(dtype_("f8", "<"), i4(0))
                    + SETITEM,
                    elsize=8,
                ),
                lst(tup(u("x"), g("builtins", "float") + tup(u("1")) + REDUCE)),
            )
        ),
        "scalar-object-from-bytes": as_split(
            g("numpy._core.multiarray", "scalar") + tup(dtype_("O8"), by(b"\x41" * 8)) + REDUCE
        ),
        "frombuffer-object-dtype": as_split(
            g("numpy._core.numeric", "_frombuffer") + tup(by(b"\x41" * 16), dtype_("O8"), tup(i4(2)), u("C")) + REDUCE
        ),
        "frombuffer-shape-mismatch": as_split(
            g("numpy._core.numeric", "_frombuffer")
            + tup(by(b"\0" * 8), dtype_("f8", "<"), tup(i4(1000), i4(1000)), u("C"))
            + REDUCE
        ),
        "array-state-shape-mismatch": as_split(array_((1_000_000, 1000), dtype_("f4", "<"), by(b"\0" * 8))),
        "array-negative-shape": as_split(array_((-4, 2), dtype_("f4", "<"), by(b"\0" * 8))),
        "nested-tuple-1mb": PROTO2 + b")" + TUPLE1 * 1_000_000 + STOP,
        "nested-lists-mark": PROTO2 + EMPTY_DICT + u("train") + deep + SETITEM + STOP,
        "nested-lists-after-the-fact": bytes(memo_chain),
        "self-referencing-list": PROTO2
        + EMPTY_DICT
        + u("train")
        + EMPTY_LIST
        + b"q\x00h\x00"
        + APPEND
        + SETITEM
        + STOP,
        "exponential-dag": _mmsa_with(_set("train", "text", dag)),
        "bytes8-claims-1gb": PROTO2 + b"\x8e" + struct.pack("<Q", 1_100_000_000) + b"\0" * 1200 + STOP,
        "unicode8-claims-1gb": PROTO2 + b"\x8d" + struct.pack("<Q", 1_100_000_000) + b"a" * 1200 + STOP,
        "frame-claims-1gb": b"\x80\x04\x95" + struct.pack("<Q", 1_100_000_000) + NONE + STOP,
        "bytearray-of-1gb": PROTO2 + g("builtins", "bytearray") + tup(i4(1_100_000_000)) + REDUCE + STOP,
        "bytes-of-1gb": PROTO2 + g("builtins", "bytes") + tup(i4(1_100_000_000)) + REDUCE + STOP,
        "reconstruct-shape-1gb": as_split(
            g("numpy._core.multiarray", "_reconstruct")
            + tup(g("numpy", "ndarray"), tup(i4(1_100_000_000)), by(b"b"))
            + REDUCE
        ),
        "ndarray-call-8gb": as_split(g("numpy", "ndarray") + tup(tup(i4(1_000_000_000)), u("f8")) + REDUCE),
        "memo-index-4g": PROTO2 + NONE + b"r" + struct.pack("<I", 0xFFFFFFF0) + STOP,
        "memo-index-100m": PROTO2 + NONE + b"r" + struct.pack("<I", 100_000_000) + STOP,
        "refs-to-one-array": _mmsa_with(_set("train", "audio", [shared] * 20_000)),
        "one-string-shared-5000-times": _mmsa_with(_set("train", "raw_text", np.array([big_text] * 5_000, object))),
        "nested-object-arrays-1mb": as_split(_nested_object_arrays(25_000)),
        "codecs-rot13": PROTO2 + g("_codecs", "encode") + tup(u("x"), u("rot13")) + REDUCE + STOP,
        "build-on-a-global": PROTO2 + g("builtins", "dict") + EMPTY_DICT + u("x") + i4(1) + SETITEM + BUILD + STOP,
        "build-sets-class-attribute": PROTO2
        + g("collections", "OrderedDict")
        + tup(NONE, EMPTY_DICT + u("__setstate__") + g("builtins", "list") + SETITEM)
        + BUILD
        + STOP,
        "memo-get-undefined": PROTO2 + b"h\x05" + STOP,
        "stack-underflow": PROTO2 + REDUCE + STOP,
        "persistent-id": PROTO2 + b"Pfile\n" + STOP,
        "extension-code": PROTO2 + b"\x82\x01" + STOP,
        "out-of-band-buffer": b"\x80\x05\x97" + STOP,
        "huge-decimal-long": PROTO2 + b"L" + b"9" * 200_000 + b"L\n" + STOP,
        "truncated": pickle.dumps(mmsa_payload(), protocol=4)[:700],
        "not-a-pickle": b"\x80this is not a pickle at all",
        "empty-file": b"",
        "list-not-dict": pickle.dumps([1, 2, 3], protocol=4),
        "non-string-split-keys": pickle.dumps({0: mmsa_payload()["train"]}, protocol=4),
        "non-string-field-names": _mmsa_with(_set("train", 7, np.zeros(3))),
        "ragged-list-field": _mmsa_with(_set("train", "text", [[1.0, 2.0], [1.0]])),
        "complex-audio": _mmsa_with(_set("train", "audio", mmsa_payload()["train"]["audio"] * (1 + 1j))),
        "complex-labels": _mmsa_with(_set("train", "regression_labels", np.array([1 + 1j, 2, 3]))),
        "nan-lengths": pickle.dumps(
            _edit_unaligned(lambda d: d["train"].__setitem__("audio_lengths", np.array([np.nan, 1.0, 2.0]))),
            protocol=4,
        ),
        "fractional-lengths": pickle.dumps(
            _edit_unaligned(lambda d: d["train"].__setitem__("audio_lengths", np.array([0.5, 1.0, 2.0]))),
            protocol=4,
        ),
        "ids-of-dicts": _mmsa_with(_set("train", "id", [{"a": 1}, {"b": 2}, {"c": 3}])),
        "ids-null": _mmsa_with(_set("train", "id", np.array([None, "x", "y"], dtype=object))),
        "datetime-audio": _mmsa_with(_set("train", "audio", np.zeros((3, 4, 5), "datetime64[s]"))),
        "string-labels": _mmsa_with(_set("train", "regression_labels", np.array(["1", "2", "3"]))),
    }
    return cases


def _nested_object_arrays(levels: int) -> bytes:
    """Object arrays nested ``levels`` deep, each holding the next (numpy frees them recursively)."""
    dtype = dtype_("O8") + b"q\x01" + b"0"
    recon = g("numpy._core.multiarray", "_reconstruct") + b"q\x02" + b"0"
    recon += tup(g("numpy", "ndarray"), tup(i4(0)), by(b"b")) + b"q\x03" + b"0"
    level = b"h\x02h\x03" + REDUCE + MARK + i4(1) + tup(i4(1)) + b"h\x01" + FALSE + EMPTY_LIST
    return dtype + recon + level * levels + u("x") + (APPEND + TUPLE + BUILD) * levels


def _edit_unaligned(edit: Callable[[dict], None]) -> dict:
    data = mmsa_payload(aligned=False)
    edit(data)
    return data


# -- npz -----------------------------------------------------------------------------------------------------------
def _npy(arr: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, arr, allow_pickle=True)
    return buffer.getvalue()


def _npz_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def _write_zip(path: Path, members: list[tuple[str, bytes]], *, flags: int = 0, method: int = 8) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, payload in members:
            zf.writestr(name, payload)
    if flags or method != 8:
        raw = bytearray(path.read_bytes())
        for sig, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
            at = raw.find(sig)
            while at >= 0:
                struct.pack_into("<H", raw, at + flag_at, flags)
                struct.pack_into("<H", raw, at + method_at, method)
                at = raw.find(sig, at + 4)
        path.write_bytes(bytes(raw))


def _npy_claiming(payload: bytes, shape: tuple[int, ...]) -> bytes:
    """An .npy member whose header claims ``shape`` while its data stays what it was."""
    stream = io.BytesIO(payload)
    version = np.lib.format.read_magic(stream)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    _, fortran, dtype = reader(stream)
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"shape": shape, "fortran_order": fortran, "descr": dtype.str})
    return out.getvalue() + payload[stream.tell() :]


def _header(members: dict[str, bytes]) -> dict:
    arr = np.lib.format.read_array(io.BytesIO(members["__modalens__.npy"]))
    return json.loads(arr.tobytes().decode())


def _with_header(members: dict[str, bytes], header: object) -> dict[str, bytes]:
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return {**members, "__modalens__.npy": _npy(np.frombuffer(raw, np.uint8))}


def _crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """zlib's crc32_combine: the CRC of A + B from the CRCs of A and B and the length of B."""

    def times(mat: list[int], vec: int) -> int:
        out, i = 0, 0
        while vec:
            if vec & 1:
                out ^= mat[i]
            vec >>= 1
            i += 1
        return out

    def square(mat: list[int]) -> list[int]:
        return [times(mat, mat[n]) for n in range(32)]

    odd = [0xEDB88320] + [1 << n for n in range(31)]
    even = square(odd)
    odd = square(even)
    while True:
        even = square(odd)
        if len2 & 1:
            crc1 = times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = square(even)
        if len2 & 1:
            crc1 = times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def _zip_bomb(path: Path, members: dict[str, bytes], name: str, shape: tuple[int, ...]) -> None:
    """An .npz whose member ``name`` is a real float32 array of ``shape`` zeros, deflated ~1000:1."""
    head = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
    head["shape"] = shape
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, head)
    header = buffer.getvalue()
    zeros = int(np.prod(shape)) * 4
    chunk_size = 16 << 20
    full, rest = divmod(zeros, chunk_size)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = [comp.compress(header) + comp.flush(zlib.Z_FULL_FLUSH)]
    block = comp.compress(b"\0" * chunk_size) + comp.flush(zlib.Z_FULL_FLUSH)
    stream += [block] * (full - 1) if full else []
    tail = comp.compress(b"\0" * rest) if rest else b""
    stream.append(tail + comp.flush())
    if not full:
        stream.pop(1)
    crc, crc_block = zlib.crc32(header), zlib.crc32(b"\0" * chunk_size)
    for _ in range(full):
        crc = _crc32_combine(crc, crc_block, chunk_size)
    crc = zlib.crc32(b"\0" * rest, crc)
    data = b"".join(stream)
    entries = [(n, p) for n, p in members.items() if n != name]
    out, central = io.BytesIO(), io.BytesIO()
    for n, payload in [*entries, (name, None)]:
        raw = n.encode()
        if payload is None:
            body, size, c = data, len(header) + zeros, crc
        else:
            z = zlib.compressobj(6, zlib.DEFLATED, -15)
            body, size, c = z.compress(payload) + z.flush(), len(payload), zlib.crc32(payload)
        offset = out.tell()
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0x21, c, len(body), size, len(raw), 0))
        out.write(raw + body)
        central.write(
            struct.pack(
                "<4sHHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                20,
                20,
                0,
                8,
                0,
                0x21,
                c,
                len(body),
                size,
                len(raw),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + raw
        )
    count, cd = len(entries) + 1, central.getvalue()
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, len(cd), out.tell(), 0)
    path.write_bytes(out.getvalue() + cd + end)


def npz_cases(folder: Path) -> dict[str, Callable[[Path], None]]:
    seed = save_dataset(tiny_dataset(), folder / "seed-for-npz.npz")
    base = _npz_members(seed)
    header = _header(base)

    def members(**changes: object) -> Callable[[Path], None]:
        def build(path: Path) -> None:
            out = dict(base)
            for key, value in changes.items():
                name = key.replace("__", "/") + ".npy"
                if value is None:
                    out.pop(name, None)
                else:
                    out[name] = value if isinstance(value, bytes) else _npy(value)
            _write_zip(path, list(out.items()))

        return build

    def with_header(value: object) -> Callable[[Path], None]:
        return lambda path: _write_zip(path, list(_with_header(base, value).items()))

    def edited_header(edit: Callable[[dict], None]) -> Callable[[Path], None]:
        h = json.loads(json.dumps(header))
        edit(h)
        return with_header(h)

    values = np.lib.format.read_array(io.BytesIO(base["values/text.npy"]))
    lie = _npy_claiming(base["values/text.npy"], (250_000_000, 3, 2))

    def dup(path: Path) -> None:
        items = list(base.items()) + [("values/text.npy", _npy(values * 0 + 9))]
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, payload in items:
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    zf.writestr(name, payload)

    def size_lie(path: Path) -> None:
        _write_zip(path, list(base.items()))
        raw = bytearray(path.read_bytes())
        name_at = raw.find(b"values/text.npy", raw.find(b"PK\x01\x02"))
        cd = raw.rfind(b"PK\x01\x02", 0, name_at)
        struct.pack_into("<I", raw, cd + 24, 0x7FFFFFF0)  # the central directory's uncompressed size
        path.write_bytes(bytes(raw))

    media_bad = np.array([0, 4, -3, 2, 1], np.int64)
    return {
        "zip-bomb-1.3gb": lambda path: _zip_bomb(path, base, "values/text.npy", (4, 3, 27_962_026)),
        "npy-header-claims-6gb": members(values__text=lie),
        "zip-entry-size-lie": size_lie,
        "object-dtype-member": members(values__text=np.array([[[1]], [[2]]], dtype=object)),
        "header-nested-100k": with_header(b"[" * 100_000 + b"]" * 100_000),
        "header-is-a-list": with_header([1, 2]),
        "header-bad-types": edited_header(lambda h: h["modalities"][0].update(feature_names=5, has_mask="no")),
        "header-modality-not-a-dict": edited_header(lambda h: h.__setitem__("modalities", ["text"])),
        "header-name-not-a-string": edited_header(lambda h: h.__setitem__("name", {"x": 1})),
        "header-class-names-dict": edited_header(lambda h: h.__setitem__("class_names", {"a": 1})),
        "header-not-json": with_header(b"\xff\xfe not json"),
        "duplicate-member": dup,
        "encrypted-member": lambda path: _write_zip(path, list(base.items()), flags=1),
        "unknown-compression": lambda path: _write_zip(path, list(base.items()), method=99),
        "complex-values": members(values__text=values.astype(np.complex64) * (1 + 1j)),
        "complex-labels": members(labels=np.array([1 + 1j, 2, 3, 4])),
        "structured-values": members(values__text=np.zeros((4, 3, 2), dtype=[("a", "f4")])),
        "words-shorter-than-steps": members(words__text=np.array([["a", "b"]] * 4)),
        "mask-not-bool": members(mask__text=np.full((4, 3), 0.5)),
        "media-offsets-negative": members(media__face__offsets=media_bad),
        "media-offsets-past-data": members(media__face__offsets=np.array([0, 0, 5, 5, 500], np.int64)),
        "meta-two-dimensional": members(meta__age=np.zeros((4, 2))),
        "meta-null-shape": members(meta_null__speaker=np.zeros(7, bool)),
        "ids-missing": members(ids=None),
        "labels-nan": members(labels=np.array([np.nan, 1, 2, 3], np.float32)),
        "truncated": lambda path: path.write_bytes(seed.read_bytes()[:900]),
        "not-a-zip": lambda path: path.write_bytes(b"PK\x03\x04 then nothing that a zip needs"),
    }


# -- parquet -------------------------------------------------------------------------------------------------------
def parquet_cases(folder: Path) -> dict[str, Callable[[Path], None]]:
    seed = save_dataset(tiny_dataset(), folder / "seed-for-parquet.parquet")
    table = pq.read_table(seed)
    meta = table.schema.metadata
    header = json.loads(meta[b"modalens"])

    def replaced(**columns: pa.Array) -> Callable[[Path], None]:
        def build(path: Path) -> None:
            t = table
            for key, value in columns.items():
                name = key.replace("__", "/")
                t = t.set_column(t.column_names.index(name), name, value)
            pq.write_table(t.replace_schema_metadata(meta), path)

        return build

    def with_header(value: bytes) -> Callable[[Path], None]:
        return lambda path: pq.write_table(table.replace_schema_metadata({b"modalens": value}), path)

    def edited_header(edit: Callable[[dict], None]) -> Callable[[Path], None]:
        h = json.loads(json.dumps(header))
        edit(h)
        return with_header(json.dumps(h).encode())

    audio = table.column("values/audio").to_pylist()  # 4 rows of [2, 3]
    ragged_steps = [audio[0][:1], audio[1] + audio[0][1:], audio[2], audio[3]]
    ragged_feats = [[audio[0][0][:2], audio[0][1] + audio[0][0][2:]], audio[1], audio[2], audio[3]]
    lists = pa.list_(pa.list_(pa.float32()))

    def bomb_text(path: Path) -> None:
        n, width = 20_000, 100_000
        ids = pa.array([f"i{k}" for k in range(n)])
        values = pa.FixedSizeListArray.from_arrays(
            pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(n, np.float32)), 1), 1
        )
        h = {**header, "modalities": [{**header["modalities"][1], "name": "a", "steps": 1, "feature_names": ["x"]}]}
        h.update(meta_columns=[], media={})
        text_col = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array(["z" * width]))
        t = pa.table({"id": ids, "text": text_col, "values/a": values})
        pq.write_table(t.replace_schema_metadata({b"modalens": json.dumps(h).encode()}), path)

    def bomb_zeros(path: Path) -> None:
        n, steps, feats = 500, 1000, 80  # 160 MB of float32 zeros, about 20 kB on disk
        values = pa.FixedSizeListArray.from_arrays(
            pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(n * steps * feats, np.float32)), feats), steps
        )
        spec = {"name": "a", "kind": "audio", "steps": steps, "has_mask": False, "has_words": False}
        h = {**header, "modalities": [{**spec, "feature_names": [f"f{i}" for i in range(feats)]}]}
        h.update(meta_columns=[], media={}, label_kind=None)
        t = pa.table({"id": pa.array([f"i{k}" for k in range(n)]), "values/a": values})
        meta = {b"modalens": json.dumps(h).encode()}
        pq.write_table(t.replace_schema_metadata(meta), path, use_dictionary=["id"], compression="zstd")

    def duplicate_columns(path: Path) -> None:
        t = table.append_column("id", pa.array(["q"] * 4))
        pq.write_table(t.replace_schema_metadata(meta), path)

    def swapped_dims(path: Path) -> None:
        h = json.loads(json.dumps(header))
        spec = h["modalities"][0]  # text: [3, 2] written; header says steps 2 and 3 features
        spec["steps"], spec["feature_names"] = 2, ["p", "q", "r"]
        t = table.drop_columns(["mask/text", "words/text"])
        spec["has_mask"] = spec["has_words"] = False
        pq.write_table(t.replace_schema_metadata({b"modalens": json.dumps(h).encode()}), path)

    with_null = [None if i == 2 else r for i, r in enumerate(audio)]
    inner_null = [[[None, 1.0, 2.0], audio[0][1]], audio[1], audio[2], audio[3]]
    return {
        "ragged-steps": replaced(values__audio=pa.array(ragged_steps, lists)),
        "ragged-features": replaced(values__audio=pa.array(ragged_feats, lists)),
        "null-id": replaced(id=pa.array(["clip0", None, "clip2", "clip3"])),
        "null-split": replaced(split=pa.array(["train", None, "train", "test"])),
        "null-text": replaced(text=pa.array([None, "b", "c", "d"])),
        "null-label": replaced(label=pa.array([0.5, None, 1.0, 2.0], pa.float32())),
        "null-row-in-values": replaced(values__audio=pa.array(with_null, lists)),
        "null-inside-values": replaced(values__audio=pa.array(inner_null, lists)),
        "decimal-values": replaced(
            values__audio=pa.array(
                [[[__import__("decimal").Decimal("1.5")] * 3] * 2] * 4, pa.list_(pa.list_(pa.decimal128(5, 2)))
            )
        ),
        "string-values": replaced(values__audio=pa.array([[["1.5"] * 3] * 2] * 4, pa.list_(pa.list_(pa.string())))),
        "struct-values": replaced(
            values__audio=pa.array(
                [[[{"re": 1.0, "im": 2.0}] * 3] * 2] * 4,
                pa.list_(pa.list_(pa.struct([("re", pa.float32()), ("im", pa.float32())]))),
            )
        ),
        "mask-not-bool": replaced(mask__text=pa.array([[0.5, 1.0, 1.0]] * 4, pa.list_(pa.float64()))),
        "words-with-nulls": replaced(words__text=pa.array([["a", None, "c"]] * 4, pa.list_(pa.string()))),
        "ragged-mask": replaced(mask__text=pa.array([[True] * 2, [True] * 4, [True] * 3, [True] * 3])),
        "media-not-binary": replaced(media__face=pa.array([1, 2, 3, 4])),
        "meta-struct": replaced(meta__age=pa.array([{"a": 1}] * 4)),
        "meta-list": replaced(meta__age=pa.array([[1, 2]] * 4)),
        "label-strings": replaced(label=pa.array(["a", "b", "c", "d"])),
        "steps-and-features-swapped": swapped_dims,
        "steps-declared-wrong": edited_header(lambda h: h["modalities"][1].update(steps=3)),
        "header-not-json": with_header(b"\xff not json"),
        "header-nested-100k": with_header(b"[" * 100_000 + b"]" * 100_000),
        "header-is-a-list": with_header(b"[1, 2]"),
        "header-bad-types": edited_header(lambda h: h["modalities"][0].update(steps="x", feature_names=5)),
        "header-negative-steps": edited_header(lambda h: h["modalities"][1].update(steps=-2)),
        "duplicate-columns": duplicate_columns,
        "dictionary-string-bomb-2gb": bomb_text,
        "zero-run-bomb-160mb": bomb_zeros,
        "truncated": lambda path: path.write_bytes(seed.read_bytes()[:-100]),
        "not-parquet": lambda path: path.write_bytes(b"PAR1 and nothing else PAR1"),
    }


# -- csd -----------------------------------------------------------------------------------------------------------
def _csd(path: Path, edit: Callable[[h5py.Group], None] | None = None, root: str = "frames") -> None:
    write_csd(path, root, csd_sequence(), {"root name": root, "dimension names": ["a", "b", "c"]})
    if edit is not None:
        with h5py.File(path, "a") as f:
            edit(f[root])


def _replace(group: h5py.Group, name: str, **kwargs: object) -> None:
    del group[name]
    group.create_dataset(name, **kwargs)


def csd_cases(folder: Path) -> dict[str, Callable[[Path], None]]:
    secret = folder / "secret.bin"
    secret.write_bytes(np.arange(12, dtype=np.float32).tobytes())  # a local file a .csd must not read
    other = folder / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.full((4, 3), 7.0, np.float32)
        f["g/features"] = np.full((4, 3), 7.0, np.float32)
        f["g/intervals"] = np.array([[0.0, 1.0]] * 4)

    def external_storage(g: h5py.Group) -> None:
        del g["data/v1/features"]
        g["data/v1"].create_dataset("features", shape=(4, 3), dtype="<f4", external=[(str(secret), 0, 48)])

    def external_link(g: h5py.Group) -> None:
        del g["data/v1/features"]
        g["data/v1/features"] = h5py.ExternalLink(str(other), "/x")

    def external_link_group(g: h5py.Group) -> None:
        del g["data/v2"]
        g["data/v2"] = h5py.ExternalLink(str(other), "/g")

    def soft_dangling(g: h5py.Group) -> None:
        del g["data/v1/features"]
        g["data/v1/features"] = h5py.SoftLink("/nowhere")

    def soft_alias(g: h5py.Group) -> None:
        del g["data/v2/features"]
        g["data/v2/features"] = h5py.SoftLink("/frames/data/v1/features")

    def virtual(g: h5py.Group) -> None:
        layout = h5py.VirtualLayout(shape=(4, 3), dtype="f4")
        layout[:] = h5py.VirtualSource(str(other), "x", shape=(4, 3))
        del g["data/v1/features"]
        g["data/v1"].create_virtual_dataset("features", layout)

    def fill_bomb(g: h5py.Group) -> None:
        del g["data/v1/features"], g["data/v1/intervals"]
        n = 100_000_000
        g["data/v1"].create_dataset("features", shape=(n, 3), dtype="f4", chunks=(1 << 16, 3))
        g["data/v1"].create_dataset("intervals", shape=(n, 2), dtype="f8", chunks=(1 << 16, 2), fillvalue=0.0)

    def contiguous_unwritten(g: h5py.Group) -> None:
        del g["data/v1/features"]
        g["data/v1"].create_dataset("features", shape=(4, 3), dtype="f4", fillvalue=3.0)

    def gzip_bomb(g: h5py.Group) -> None:
        del g["data/v1/features"], g["data/v1/intervals"]
        rows, n = 1 << 20, 30 << 20  # 360 MB of features, 480 MB of intervals, under a megabyte of gzip
        for name, width, dtype in (("features", 3, "f4"), ("intervals", 2, "f8")):
            ds = g["data/v1"].create_dataset(
                name, shape=(n, width), dtype=dtype, chunks=(rows, width), compression="gzip"
            )
            chunk = zlib.compress(np.zeros((rows, width), dtype).tobytes(), 9)  # written as is, never recompressed
            for start in range(0, n, rows):
                ds.id.write_direct_chunk((start, 0), chunk)

    def retyped(dtype: object, data: object = None) -> Callable[[h5py.Group], None]:
        def edit(g: h5py.Group) -> None:
            if data is None:
                _replace(g["data/v1"], "features", shape=(4, 3), dtype=dtype)
            else:
                _replace(g["data/v1"], "features", data=data, dtype=dtype)

        return edit

    def vlen(g: h5py.Group) -> None:
        del g["data/v1/features"]
        ds = g["data/v1"].create_dataset("features", shape=(4,), dtype=h5py.vlen_dtype(np.float32))
        for k in range(4):
            ds[k] = np.arange(k + 1, dtype=np.float32)

    def reference(g: h5py.Group) -> None:
        del g["data/v1/features"]
        ds = g["data/v1"].create_dataset("features", shape=(4, 1), dtype=h5py.ref_dtype)
        for k in range(4):
            ds[k, 0] = g.file["/"].ref

    def empty(g: h5py.Group) -> None:
        del g["data/v1/features"]
        g["data/v1"].create_dataset("features", data=h5py.Empty("f4"))

    def scalar(g: h5py.Group) -> None:
        _replace(g["data/v1"], "features", data=np.float32(1.0))

    def three_d(g: h5py.Group) -> None:
        _replace(g["data/v1"], "features", data=np.zeros((4, 3, 2), "f4"))

    def data_is_dataset(g: h5py.Group) -> None:
        del g["data"]
        g["data"] = np.zeros(3)

    def video_is_dataset(g: h5py.Group) -> None:
        del g["data/v2"]
        g["data/v2"] = np.zeros((2, 3))

    def metadata_is_dataset(g: h5py.Group) -> None:
        del g["metadata"]
        g["metadata"] = np.zeros(3)

    def two_roots(path: Path) -> None:
        _csd(path)
        with h5py.File(path, "a") as f:
            f.copy("frames", "frames2")

    def words_numeric(path: Path) -> None:
        corpus = write_corpus(path)
        words = {
            "v1": (np.arange(5.0)[:, None], [[0, 1], [1, 1.5], [1.5, 2.5], [3, 4], [4, 5]]),
            "v2": (np.arange(2.0)[:, None], [[0, 0.5], [0.5, 1.5]]),
        }
        write_csd(corpus / "words.csd", "words", words)

    def labels_empty(path: Path) -> None:
        corpus = write_corpus(path)
        with h5py.File(corpus / "labels.csd", "a") as f:
            for vid in list(f["Opinion Segment Labels/data"]):
                del f["Opinion Segment Labels/data"][vid]

    def labels_no_columns(path: Path) -> None:
        corpus = write_corpus(path)
        with h5py.File(corpus / "labels.csd", "a") as f:
            for vid in list(f["Opinion Segment Labels/data"]):
                n = f[f"Opinion Segment Labels/data/{vid}/intervals"].shape[0]
                del f[f"Opinion Segment Labels/data/{vid}/features"]
                f[f"Opinion Segment Labels/data/{vid}/features"] = np.zeros((n, 0), "f4")

    def edit(fn: Callable[[h5py.Group], None]) -> Callable[[Path], None]:
        return lambda path: _csd(path, fn)

    def zero_length_chunk(path: Path) -> None:
        def checksummed(g: h5py.Group) -> None:
            _replace(g["data/v1"], "intervals", data=csd_sequence()["v1"][1], chunks=(4, 2), fletcher32=True)

        _csd(path, checksummed)
        raw = bytearray(path.read_bytes())
        node = raw.index(b"TREE\x01")  # the v1 B-tree of chunks: its first key starts with the chunk's size
        struct.pack_into("<I", raw, node + 24, 0)
        path.write_bytes(bytes(raw))

    def heap_free_space_zero(path: Path) -> None:
        _csd(path)
        raw = bytearray(path.read_bytes())
        at = raw.index(b"GCOL")
        pos = at + 16
        while struct.unpack_from("<H", raw, pos)[0] != 0:  # walk to the free-space object (index 0)
            pos += 16 + -(-struct.unpack_from("<Q", raw, pos + 8)[0] // 8) * 8
        struct.pack_into("<Q", raw, pos + 8, 0)  # HDF5 itself loops forever on this
        path.write_bytes(bytes(raw))

    def heap_object_overrun(path: Path) -> None:
        _csd(path)
        raw = bytearray(path.read_bytes())
        at = raw.index(b"GCOL")
        struct.pack_into("<Q", raw, at + 16 + 8, 1 << 40)  # the first object claims a terabyte
        path.write_bytes(bytes(raw))

    seed = folder / "seed-for-csd.csd"
    _csd(seed)
    return {
        "external-storage-reads-local-file": edit(external_storage),
        "external-link-dataset": edit(external_link),
        "external-link-video-group": edit(external_link_group),
        "soft-link-dangling": edit(soft_dangling),
        "soft-link-alias": edit(soft_alias),
        "virtual-dataset": edit(virtual),
        "fill-value-bomb-1.2gb": edit(fill_bomb),
        "contiguous-never-written": edit(contiguous_unwritten),
        "gzip-bomb-840mb": edit(gzip_bomb),
        "complex-features": edit(retyped("c8", np.ones((4, 3), "c8") * (1 + 2j))),
        "compound-features": edit(retyped(np.dtype([("a", "f4"), ("b", "f4")]))),
        "vlen-features": edit(vlen),
        "reference-features": edit(reference),
        "null-dataspace": edit(empty),
        "scalar-features": edit(scalar),
        "three-d-features": edit(three_d),
        "complex-intervals": edit(lambda g: _replace(g["data/v1"], "intervals", data=np.ones((4, 2), "c16"))),
        "nan-intervals": edit(lambda g: _replace(g["data/v1"], "intervals", data=np.full((4, 2), np.nan))),
        "data-is-a-dataset": edit(data_is_dataset),
        "video-is-a-dataset": edit(video_is_dataset),
        "metadata-is-a-dataset": edit(metadata_is_dataset),
        "two-root-groups": two_roots,
        "words-not-strings": words_numeric,
        "labels-without-videos": labels_empty,
        "labels-without-columns": labels_no_columns,
        "zero-length-chunk-fletcher32": zero_length_chunk,
        "heap-free-space-of-size-0": heap_free_space_zero,
        "heap-object-overruns-collection": heap_object_overrun,
        "truncated": lambda path: path.write_bytes(seed.read_bytes()[:1500]),
        "not-hdf5": lambda path: path.write_bytes(b"\x89HDF\r\n\x1a\n then garbage"),
    }


# -- all -----------------------------------------------------------------------------------------------------------
LOADABLE = {  # damage that leaves the data intact: these must load (and agree with h5py), not hang or crash
    "csd:heap-free-space-of-size-0",  # HDF5 loops forever reading its strings; modalens reads the heap itself
}
CLI_CASES = (  # bad files also run through `modalens explain` (one error line, exit status 2)
    "mmsa:object-array-short-state",
    "mmsa:nested-tuple-1mb",
    "mmsa:bytes8-claims-1gb",
    "mmsa:rce-os-system",
    "mmsa:non-string-split-keys",
    "mmsa:truncated",
    "native:header-bad-types",
    "native:zip-bomb-1.3gb",
    "native:encrypted-member",
    "native:media-offsets-negative",
    "parquet:ragged-steps",
    "parquet:null-id",
    "parquet:header-is-a-list",
    "csd:external-storage-reads-local-file",
    "csd:video-is-a-dataset",
    "csd:labels-without-videos",
)


def write_hostile(folder: Path) -> list[Case]:
    """Write every crafted case under ``folder``; returns the load cases, then the CLI cases."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    for name, payload in pickle_cases(folder).items():
        path = folder / f"mmsa-{name}.pkl"
        path.write_bytes(payload)
        cases.append(Case("mmsa", path, f"mmsa:{name}"))
    for fmt, suffix, builders in (
        ("native", ".npz", npz_cases(folder)),
        ("parquet", ".parquet", parquet_cases(folder)),
        ("csd", ".csd", csd_cases(folder)),
    ):
        for name, build in builders.items():
            path = folder / f"{fmt}-{name}{suffix}"
            build(path)
            cases.append(Case(fmt, path, f"{fmt}:{name}", expect="ok" if f"{fmt}:{name}" in LOADABLE else "error"))
    by_label = {c.label: c for c in cases}
    for label in CLI_CASES:
        case = by_label[label]
        cases.append(Case(case.format, case.path, f"cli:{label}", mode="cli", out=str(folder / "cli-run")))
    # the same command with --debug: the error propagates with its traceback instead of one line
    case = by_label[CLI_CASES[0]]
    cases.append(
        Case(case.format, case.path, f"cli-debug:{CLI_CASES[0]}", mode="cli-debug", out=str(folder / "cli-run"))
    )
    return cases

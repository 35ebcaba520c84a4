"""A seeded mutator of dataset files: byte flips, truncation, splices, chunk repeats and size-field inflation.

Every mutation is a pure function of (seed file, donor files, case number), so a failing case is reproduced by its
number alone. Size-field inflation knows where each format keeps its sizes: a pickle's length-prefixed opcodes and
integer arguments, an ``.npy`` header's shape inside an ``.npz`` (the archive rewritten so that it stays a valid zip),
a zip entry's sizes, and otherwise the little-endian integers of the region a format keeps its metadata in (the
footer of a Parquet file, the object headers of an HDF5 file).
"""

from __future__ import annotations

import io
import pickletools
import random
import re
import struct
import zipfile
from pathlib import Path

INTERESTING = (0, 1, 2, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, 1 << 40, 1 << 62)
OPERATIONS = ("flip", "truncate", "splice", "repeat", "inflate", "inflate", "multi")


def mutate(data: bytes, fmt: str, case: int, donors: list[bytes]) -> tuple[bytes, str]:
    """One mutation of ``data`` (a file of format ``fmt``), chosen by ``case``; returns the bytes and a label."""
    rng = random.Random(f"{fmt}:{case}")
    op = OPERATIONS[case % len(OPERATIONS)]
    if op == "multi":
        out, labels = data, []
        for _ in range(rng.randint(2, 4)):
            out, label = _one(out, fmt, rng, donors, rng.choice(OPERATIONS[:-1]))
            labels.append(label)
        return out, "+".join(labels)
    return _one(data, fmt, rng, donors, op)


def _one(data: bytes, fmt: str, rng: random.Random, donors: list[bytes], op: str) -> tuple[bytes, str]:
    if not data:
        return data, "empty"
    if op == "flip":
        out = bytearray(data)
        lo, hi = _region(data, fmt, rng)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(lo, hi)
            out[i] = out[i] ^ (1 << rng.randrange(8)) if rng.random() < 0.5 else rng.randrange(256)
        return bytes(out), "flip"
    if op == "truncate":
        return data[: rng.randrange(len(data))], "truncate"
    if op == "splice":
        donor = rng.choice(donors) or data
        a = rng.randrange(len(donor))
        chunk = donor[a : a + rng.randint(1, 256)]
        i = rng.randrange(len(data))
        if rng.random() < 0.5:
            return data[:i] + chunk + data[i:], "splice-insert"
        return data[:i] + chunk + data[i + len(chunk) :], "splice-overwrite"
    if op == "repeat":
        a = rng.randrange(len(data))
        chunk = data[a : a + rng.randint(1, 64)]
        return data[:a] + chunk * rng.randint(2, 50) + data[a:], "repeat"
    return _inflate(data, fmt, rng)


def _region(data: bytes, fmt: str, rng: random.Random) -> tuple[int, int]:
    """Where the metadata lives, most of the time: Parquet's footer, HDF5's first kilobytes; anywhere otherwise."""
    n = len(data)
    if rng.random() < 0.3:
        return 0, n
    if fmt == "parquet":
        return max(0, n - 2048), n
    if fmt == "csd":
        return 0, min(n, 4096)
    return 0, n


def _inflate(data: bytes, fmt: str, rng: random.Random) -> tuple[bytes, str]:
    if fmt == "mmsa" and rng.random() < 0.8:
        out = _inflate_pickle(data, rng)
        if out is not None:
            return out, "inflate-pickle"
    if fmt == "native" and rng.random() < 0.8:
        out = _inflate_npz(data, rng)
        if out is not None:
            return out
    out = bytearray(data)
    lo, hi = _region(data, fmt, rng)
    width = rng.choice((2, 4, 8))
    if hi - lo <= width:
        return data, "inflate-none"
    i = rng.randrange(lo, hi - width)
    value = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
    out[i : i + width] = value.to_bytes(width, "little")
    return bytes(out), f"inflate-int{width * 8}"


_LENGTH_ARGS = {"bytes4": 4, "bytes8": 8, "bytearray8": 8, "unicodestring4": 4, "unicodestring8": 8, "string4": 4}
_INT_ARGS = {"int4": 4, "uint1": 1, "uint2": 2, "uint4": 4, "uint8": 8}


def _inflate_pickle(data: bytes, rng: random.Random) -> bytes | None:
    """Overwrite one length prefix or integer argument of a pickle opcode with a large value."""
    spots = []
    try:
        for op, _, pos in pickletools.genops(data):
            if op.arg is None or pos is None:
                continue
            name = op.arg.name
            if name in _LENGTH_ARGS:
                spots.append((pos + 1, _LENGTH_ARGS[name]))
            elif name in _INT_ARGS and op.name not in ("FRAME", "PROTO"):
                spots.append((pos + 1, _INT_ARGS[name]))
    except Exception:  # noqa: BLE001  (a stream this mutator already damaged)
        pass
    if not spots:
        return None
    at, width = rng.choice(spots)
    value = rng.choice(INTERESTING[3:]) & ((1 << (8 * width)) - 1)
    return data[:at] + value.to_bytes(width, "little") + data[at + width :]


def _inflate_npz(data: bytes, rng: random.Random) -> tuple[bytes, str] | None:
    """Rewrite an ``.npz``: one member's ``.npy`` header shape multiplied, or one entry's declared sizes changed."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [(info, zf.read(info)) for info in zf.infolist()]
    except Exception:  # noqa: BLE001
        return None
    index = rng.randrange(len(members))
    info, payload = members[index]
    if rng.random() < 0.6:
        match = re.search(rb"'shape': \(([0-9, ]*)\)", payload[:512])
        if match is None:
            return None
        dims = [int(x) for x in match.group(1).replace(b" ", b"").split(b",") if x] or [1]
        k = rng.randrange(len(dims))
        dims[k] = dims[k] * rng.choice((2, 1000, 10**6, 10**9)) + rng.choice((0, 1))
        shape = b"(" + b", ".join(str(d).encode() for d in dims) + (b",)" if len(dims) == 1 else b")")
        header = payload[: match.start(1) - 1] + shape + payload[match.end(1) + 1 :]
        # keep the header block length (numpy pads it to a multiple of 64 with spaces before the newline)
        if b"\n" not in payload[10:4096]:
            return None
        end = payload.index(b"\n", 10) + 1
        new_head = header[: header.index(b"\n", 10) + 1]
        pad = end - len(new_head)
        if pad < 0:
            return None
        new_head = new_head[:-1] + b" " * pad + b"\n"
        members[index] = (info, new_head + payload[end:])
        label = "inflate-npy-shape"
    else:
        label = "inflate-zip-size"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, payload in members:
            zf.writestr(info.filename, payload)
    out = bytearray(buffer.getvalue())
    if label == "inflate-zip-size":
        # the local header of the chosen entry: sizes at offsets 18 (compressed) and 22 (uncompressed)
        starts = [m.start() for m in re.finditer(rb"PK\x03\x04", out)]
        if index < len(starts):
            field = starts[index] + rng.choice((18, 22))
            out[field : field + 4] = struct.pack("<I", rng.choice(INTERESTING[5:10]))
        cd = [m.start() for m in re.finditer(rb"PK\x01\x02", out)]
        if index < len(cd) and rng.random() < 0.7:
            field = cd[index] + rng.choice((20, 24))
            out[field : field + 4] = struct.pack("<I", rng.choice(INTERESTING[5:10]))
    return bytes(out), label


def write_mutations(seeds: dict[str, list[Path]], folder: Path, per_format: int, start: int = 0) -> list[tuple]:
    """``per_format`` mutations of each format's seeds in ``folder``; returns (format, path, label) rows."""
    folder.mkdir(parents=True, exist_ok=True)
    donors = [p.read_bytes() for paths in seeds.values() for p in paths]
    rows = []
    for fmt, paths in seeds.items():
        blobs = [(p, p.read_bytes()) for p in paths]
        for case in range(start, start + per_format):
            seed_path, blob = blobs[case % len(blobs)]
            data, label = mutate(blob, fmt, case, donors)
            target = folder / f"{fmt}-{case:06d}{seed_path.suffix}"
            target.write_bytes(data)
            rows.append((fmt, target, f"{seed_path.name}:{label}"))
    return rows

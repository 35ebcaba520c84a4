"""Size limits for loading dataset files: what a file may claim before anything is allocated.

A dataset file states its own sizes: a pickle's array state holds a shape and a dtype, an ``.npz`` member has an
``.npy`` header and a zip entry size, an HDF5 dataset a dataspace and a datatype, a Parquet footer row counts and
value counts. A few bytes can claim gigabytes. Every loader checks each claim against :class:`Limits` *before* it
allocates, and refuses a claim over a cap with a :class:`LimitError` naming the file, the field, the claimed size
and the cap:

- ``max_array_bytes``: one array, entry, column, HDF5 dataset or string table (default 8 GiB);
- ``max_total_bytes``: everything one load claims (default 16 GiB; a folder of ``.csd`` files is one load);
- ``max_expansion``: once a load claims more than 256 MiB, it may claim at most this many bytes per byte of its
  files (default 200). Compression is allowed (real features compress a few times, a file of them little; only a
  file of almost nothing but zero padding comes near 200), a decompression bomb is not: a 1.3 MB ``.npz`` that
  inflates to 1.3 GB, a 140 kB Parquet file whose rows share one 100 kB string, a 1 MB pickle whose object array
  references one 1 MB string 5,000 times;
- ``max_depth``: nesting of containers in a pickle (default 100, at most 1000).

The caps are set in one place:

- ``load_dataset(path, limits=Limits(max_array_bytes=..., max_total_bytes=...))`` for one call;
- the environment, for every call without ``limits=``: ``MODALENS_MAX_BYTES`` (the total, which also caps the
  per-array limit) and ``MODALENS_MAX_ARRAY_BYTES`` take a number of bytes with an optional unit (``512M``,
  ``16GiB``, ``2e9``; K, M, G, T are powers of 1024); ``MODALENS_MAX_EXPANSION`` a ratio (0 turns the check off);
- otherwise the defaults, which admit CMU-MOSEI's MMSA pickles (their 768-d text features are one 3.6 GB array).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from modalens.data.dataset import DatasetError

GIB = 1 << 30
DEFAULT_MAX_ARRAY_BYTES = 8 * GIB
DEFAULT_MAX_TOTAL_BYTES = 16 * GIB
DEFAULT_MAX_EXPANSION = 200
EXPANSION_FLOOR = 256 << 20  # loads claiming less than this are never refused for their expansion
DEFAULT_MAX_DEPTH = 100
MAX_DEPTH = 1000
ENV_TOTAL = "MODALENS_MAX_BYTES"
ENV_ARRAY = "MODALENS_MAX_ARRAY_BYTES"
ENV_EXPANSION = "MODALENS_MAX_EXPANSION"

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kb": 10**3,
    "kib": 1 << 10,
    "m": 1 << 20,
    "mb": 10**6,
    "mib": 1 << 20,
    "g": 1 << 30,
    "gb": 10**9,
    "gib": 1 << 30,
    "t": 1 << 40,
    "tb": 10**12,
    "tib": 1 << 40,
}


class LimitError(DatasetError):
    """A file claims more bytes than the loading limits allow (see :mod:`modalens.data.limits`)."""


def parse_bytes(text: str, *, name: str = "size") -> int:
    """``"512M"``, ``"16GiB"``, ``"2e9"`` or ``"1000"`` as a number of bytes (K, M, G, T are powers of 1024)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise LimitError(f"{name}: expected a number of bytes such as 512M, 16GiB or 2e9, got {text!r}")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value <= 0:
        raise LimitError(f"{name}: must be positive, got {text!r}")
    return value


def format_bytes(n: int) -> str:
    """A byte count for messages: ``1.2 GiB (1288490188 bytes)``."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit} ({n} bytes)"
    return f"{n} bytes"


@dataclass(frozen=True)
class Limits:
    """Caps on what a dataset file may claim, checked before allocation.

    Parameters
    ----------
    max_array_bytes
        The most bytes one array, column, entry, HDF5 dataset or string table may claim (default 8 GiB).
    max_total_bytes
        The most bytes one load may claim in all (default 16 GiB); a folder of ``.csd`` files is one load.
    max_expansion
        Once a load claims more than 256 MiB, the most bytes it may claim per byte of its files (default 200);
        0 turns the check off.
    max_depth
        The deepest nesting of containers a pickle may hold (default 100, at most 1000; MMSA pickles nest about 5).
    """

    max_array_bytes: int = DEFAULT_MAX_ARRAY_BYTES
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH
    max_expansion: int = DEFAULT_MAX_EXPANSION

    def __post_init__(self) -> None:
        for name in ("max_array_bytes", "max_total_bytes", "max_depth", "max_expansion"):
            value = getattr(self, name)
            minimum = 0 if name == "max_expansion" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise LimitError(f"Limits.{name} must be an int of at least {minimum}, got {value!r}")
        if self.max_depth > MAX_DEPTH:
            raise LimitError(
                f"Limits.max_depth must be at most {MAX_DEPTH} (deeper nesting can exhaust the C stack), "
                f"got {self.max_depth}"
            )

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, overridden by ``MODALENS_MAX_BYTES``, ``MODALENS_MAX_ARRAY_BYTES`` and
        ``MODALENS_MAX_EXPANSION`` when set."""
        total = os.environ.get(ENV_TOTAL, "").strip()
        array = os.environ.get(ENV_ARRAY, "").strip()
        expansion = os.environ.get(ENV_EXPANSION, "").strip()
        max_total = parse_bytes(total, name=ENV_TOTAL) if total else DEFAULT_MAX_TOTAL_BYTES
        max_array = parse_bytes(array, name=ENV_ARRAY) if array else DEFAULT_MAX_ARRAY_BYTES
        if expansion and not expansion.isdigit():
            raise LimitError(f"{ENV_EXPANSION}: expected a whole number (0 turns the check off), got {expansion!r}")
        return cls(
            max_array_bytes=min(max_array, max_total),
            max_total_bytes=max_total,
            max_expansion=int(expansion) if expansion else DEFAULT_MAX_EXPANSION,
        )

    def budget(self, source: object, *, file_bytes: int = 0) -> Budget:
        """A running account of the bytes one load claims, against these limits."""
        return Budget(self, str(source), file_bytes=file_bytes)


def resolve(limits: Limits | None) -> Limits:
    """``limits`` itself, or :meth:`Limits.from_env` when None."""
    if limits is None:
        return Limits.from_env()
    if not isinstance(limits, Limits):
        raise LimitError(f"limits must be a modalens.data.limits.Limits, got {type(limits).__name__}")
    return limits


@dataclass
class Budget:
    """The bytes claimed so far by one load; :meth:`claim` refuses a claim over any cap."""

    limits: Limits
    source: str
    used: int = 0
    file_bytes: int = 0
    files: set[str] = field(default_factory=set, repr=False)

    def add_file(self, path: str | os.PathLike) -> None:
        """Count a file's size towards what this load may expand to (each file once)."""
        key = str(Path(path).resolve())
        if key not in self.files:
            self.files.add(key)
            self.file_bytes += Path(path).stat().st_size

    def check(self, what: str, nbytes: int) -> None:
        """Refuse ``nbytes`` for ``what`` if it is over a cap, given what this load claimed so far."""
        nbytes = int(nbytes)
        cap = self.limits.max_array_bytes
        if nbytes > cap:
            raise LimitError(
                f"{self.source}: {what} claims {format_bytes(nbytes)}, over the per-array cap of "
                f"{format_bytes(cap)}; raise it with load_dataset(..., limits=Limits(max_array_bytes=...)) "
                f"or {ENV_ARRAY}"
            )
        total = self.limits.max_total_bytes
        after = self.used + nbytes
        if after > total:
            raise LimitError(
                f"{self.source}: {what} claims {format_bytes(nbytes)}, which takes this load to "
                f"{format_bytes(after)}, over the total cap of {format_bytes(total)}; raise it with "
                f"load_dataset(..., limits=Limits(max_total_bytes=...)) or {ENV_TOTAL}"
            )
        ratio = self.limits.max_expansion
        if ratio and self.file_bytes and after > max(EXPANSION_FLOOR, ratio * self.file_bytes):
            raise LimitError(
                f"{self.source}: {what} claims {format_bytes(nbytes)}, which takes this load to "
                f"{format_bytes(after)} from {format_bytes(self.file_bytes)} of file, more than {ratio} times its "
                f"size (a decompression bomb, or data this compressible: raise it with "
                f"load_dataset(..., limits=Limits(max_expansion=...)) or {ENV_EXPANSION}, 0 for no check)"
            )

    def claim(self, what: str, nbytes: int) -> None:
        """:meth:`check`, then count ``nbytes`` as used."""
        self.check(what, nbytes)
        self.used += int(nbytes)

"""Size limits for loading dataset files: what a file may claim before anything is allocated.

A dataset file states its own sizes: a pickle's array state holds a shape and a dtype, an ``.npz`` member has an
``.npy`` header and a zip entry size, an HDF5 dataset a dataspace and a datatype, a Parquet footer row counts and
value counts. A few bytes can claim gigabytes. Every loader checks each claim against :class:`Limits` *before* it
allocates, and refuses a claim over the cap with a :class:`LimitError` naming the file, the field, the claimed size
and the cap.

The caps are set in one place:

- ``load_dataset(path, limits=Limits(max_array_bytes=..., max_total_bytes=...))`` for one call;
- the environment variables ``MODALENS_MAX_BYTES`` (the total for one load) and ``MODALENS_MAX_ARRAY_BYTES`` (one
  array, column or string table) for every call without ``limits=``; both take a number of bytes with an optional
  unit (``512M``, ``16GiB``, ``2e9``);
- otherwise the defaults: 8 GiB per array and 16 GiB per load, enough for CMU-MOSEI's unaligned MMSA pickle
  (its 768-d text features are one 3.6 GB array).

The per-array cap never exceeds the total cap (setting only ``MODALENS_MAX_BYTES=1G`` caps arrays at 1 GiB too).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from modalens.data.dataset import DatasetError

GIB = 1 << 30
DEFAULT_MAX_ARRAY_BYTES = 8 * GIB
DEFAULT_MAX_TOTAL_BYTES = 16 * GIB
DEFAULT_MAX_DEPTH = 100
MAX_DEPTH = 1000
ENV_TOTAL = "MODALENS_MAX_BYTES"
ENV_ARRAY = "MODALENS_MAX_ARRAY_BYTES"

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
        The most bytes one array, column, member or string table may claim (default 8 GiB).
    max_total_bytes
        The most bytes one load may claim in all (default 16 GiB); a folder of ``.csd`` files is one load.
    max_depth
        The deepest nesting of containers a pickle may hold (default 100, at most 1000; MMSA pickles need about 5).
    """

    max_array_bytes: int = DEFAULT_MAX_ARRAY_BYTES
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH

    def __post_init__(self) -> None:
        for name in ("max_array_bytes", "max_total_bytes", "max_depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise LimitError(f"Limits.{name} must be a positive int, got {value!r}")
        if self.max_depth > MAX_DEPTH:
            raise LimitError(
                f"Limits.max_depth must be at most {MAX_DEPTH} (deeper nesting can exhaust the C stack), "
                f"got {self.max_depth}"
            )

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, overridden by ``MODALENS_MAX_BYTES`` and ``MODALENS_MAX_ARRAY_BYTES`` when set."""
        total = os.environ.get(ENV_TOTAL, "").strip()
        array = os.environ.get(ENV_ARRAY, "").strip()
        max_total = parse_bytes(total, name=ENV_TOTAL) if total else DEFAULT_MAX_TOTAL_BYTES
        max_array = parse_bytes(array, name=ENV_ARRAY) if array else DEFAULT_MAX_ARRAY_BYTES
        return cls(max_array_bytes=min(max_array, max_total), max_total_bytes=max_total)

    def budget(self, source: object) -> Budget:
        """A running account of the bytes one load claims, against these limits."""
        return Budget(self, str(source))


def resolve(limits: Limits | None) -> Limits:
    """``limits`` itself, or :meth:`Limits.from_env` when None."""
    if limits is None:
        return Limits.from_env()
    if not isinstance(limits, Limits):
        raise LimitError(f"limits must be a modalens.data.limits.Limits, got {type(limits).__name__}")
    return limits


@dataclass
class Budget:
    """The bytes claimed so far by one load; :meth:`claim` refuses a claim over either cap."""

    limits: Limits
    source: str
    used: int = 0
    claims: list[tuple[str, int]] = field(default_factory=list, repr=False)

    def check(self, what: str, nbytes: int) -> None:
        """Refuse ``nbytes`` for ``what`` if it is over the per-array cap or would take the total over its cap."""
        nbytes = int(nbytes)
        cap = self.limits.max_array_bytes
        if nbytes > cap:
            raise LimitError(
                f"{self.source}: {what} claims {format_bytes(nbytes)}, over the per-array cap of "
                f"{format_bytes(cap)}; raise it with load_dataset(..., limits=Limits(max_array_bytes=...)) "
                f"or {ENV_ARRAY}"
            )
        total = self.limits.max_total_bytes
        if self.used + nbytes > total:
            raise LimitError(
                f"{self.source}: {what} claims {format_bytes(nbytes)}, which takes this load to "
                f"{format_bytes(self.used + nbytes)}, over the total cap of {format_bytes(total)}; raise it with "
                f"load_dataset(..., limits=Limits(max_total_bytes=...)) or {ENV_TOTAL}"
            )

    def claim(self, what: str, nbytes: int) -> None:
        """:meth:`check`, then count ``nbytes`` as used."""
        self.check(what, nbytes)
        self.used += int(nbytes)
        self.claims.append((what, int(nbytes)))

"""A restricted unpickler for data files: numpy arrays and plain containers only, never code.

``pickle.load`` on a file someone sent you runs whatever the file asks for (``os.system`` through ``__reduce__``,
for one). The MMSA sentiment corpora ship as pickles, so modalens reads them through :class:`SafeUnpickler`, whose
``find_class`` admits only the globals that pickles of numpy arrays with plain dtypes reference:

- ``numpy.core.multiarray._reconstruct`` and ``numpy.ndarray`` (protocols 2-5, and object arrays under 5),
- ``numpy.core.numeric._frombuffer`` (protocol 5 writes contiguous non-object arrays this way),
- ``numpy.dtype`` and ``numpy.core.multiarray.scalar`` (dtypes and numpy scalars),
- ``_codecs.encode`` with the ``latin1`` codec only (protocol 2 stores ``bytes`` this way),
- ``builtins`` containers and atoms (dict, list, tuple, set, frozenset, str, bytes, bytearray, int, float, complex,
  bool) and ``collections.OrderedDict``.

numpy 1.x writes ``numpy.core.*``, numpy 2.x writes ``numpy._core.*``; both spellings are accepted and resolved to
whichever module the installed numpy has. Object arrays whose elements are strings (MMSA's ``raw_text`` and ``id``)
load, because their elements are pickled inline; an object array holding any other class is refused at that class.
"""

from __future__ import annotations

import builtins
import codecs
import collections
import importlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from modalens.data.dataset import DatasetError


class UnsafePickleError(DatasetError):
    """A pickle asked for a global outside the allow-list; nothing it referenced was imported or called."""


_BUILTINS = frozenset(
    {"dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int", "float", "complex", "bool"}
)
# numpy globals by their numpy-2 spelling (module suffix after "numpy"), name.
_NUMPY = frozenset(
    {
        ("", "ndarray"),
        ("", "dtype"),
        ("._core.multiarray", "_reconstruct"),
        ("._core.multiarray", "scalar"),
        ("._core.numeric", "_frombuffer"),
    }
)


def _latin1_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Protocol 2 pickles bytes as _codecs.encode(str, "latin1"); no other codec is needed or admitted.
    if encoding.replace("-", "").replace("_", "").lower() != "latin1":
        raise UnsafePickleError(f"_codecs.encode with codec {encoding!r} is not allowed (only latin1)")
    return codecs.encode(obj, "latin1", errors)


def _numpy_global(module: str, name: str) -> Any:
    """Resolve an allowed numpy global written by numpy 1.x (``numpy.core``) or 2.x (``numpy._core``)."""
    suffix = module[len("numpy") :]
    if suffix.startswith(".core."):
        suffix = "._core." + suffix[len(".core.") :]
    if (suffix, name) not in _NUMPY:
        return None
    if not suffix:
        return getattr(np, name)
    for candidate in ("numpy" + suffix, "numpy" + suffix.replace("._core.", ".core.", 1)):
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    return None


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain containers and refuses every other global.

    Parameters
    ----------
    file
        A binary file object.
    source
        The file name used in error messages.
    """

    def __init__(self, file: io.BufferedIOBase, *, source: str = "<pickle>") -> None:
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        found = None
        # Protocol 0-2 pickles written by Python 2 (and by Python 3 for Python 2) name the module __builtin__.
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            found = getattr(builtins, name)
        elif module == "collections" and name == "OrderedDict":
            found = collections.OrderedDict
        elif module == "_codecs" and name == "encode":
            found = _latin1_encode
        elif module == "numpy" or module.startswith("numpy."):
            found = _numpy_global(module, name)
        if found is None:
            raise UnsafePickleError(
                f"{self.source}: refusing to load global {module}.{name}; this reader admits only numpy arrays "
                "of plain dtypes and builtin containers, and never runs code from a file"
            )
        return found


def safe_load(path: str | os.PathLike) -> Any:
    """Load a pickle file through :class:`SafeUnpickler`.

    Parameters
    ----------
    path
        The pickle file.

    Returns
    -------
    Any
        The unpickled object: numpy arrays, scalars, and builtin containers of them.

    Raises
    ------
    UnsafePickleError
        The pickle references a global outside the allow-list (nothing is called).
    DatasetError
        The file is missing, truncated or not a pickle.
    """
    source = Path(path)
    if not source.is_file():
        raise DatasetError(f"{source}: no such file")
    with source.open("rb") as handle:
        return safe_loads_from(handle, source=str(source))


def safe_loads(data: bytes, *, source: str = "<bytes>") -> Any:
    """Unpickle bytes through :class:`SafeUnpickler`; see :func:`safe_load`."""
    return safe_loads_from(io.BytesIO(data), source=source)


def safe_loads_from(handle: Any, *, source: str) -> Any:
    """Unpickle an open binary file through :class:`SafeUnpickler`, turning every failure into a DatasetError."""
    try:
        return SafeUnpickler(handle, source=source).load()
    except UnsafePickleError:
        raise
    except EOFError as exc:
        raise DatasetError(f"{source}: pickle is truncated (ended before its STOP opcode)") from exc
    except Exception as exc:  # noqa: BLE001  (a malformed stream can fail in any numpy or pickle routine)
        raise DatasetError(f"{source}: not a readable pickle ({type(exc).__name__}: {exc})") from exc

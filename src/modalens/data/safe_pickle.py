"""A restricted unpickler for data files: numpy arrays and plain containers only, never code, never a crash.

``pickle.load`` on a file someone sent you runs whatever the file asks for (``os.system`` through ``__reduce__``,
for one), and even numpy's own reconstruction trusts the file: an object array whose state lists fewer elements than
its shape makes numpy read past the end of memory, nested object arrays exhaust the C stack, and a few bytes can
claim gigabytes. The MMSA sentiment corpora ship as pickles, so modalens reads them in two passes.

1. **Scan** (:func:`scan_pickle`). The opcode stream is walked without building anything: every opcode must be one
   that pickles of numpy arrays and builtin containers use (no ``INST``, ``OBJ``, ``NEWOBJ``, persistent ids,
   extension codes or out-of-band buffers); every global must be on the allow-list below; every length prefix must
   fit in what is left of the file; memo indices must be ones a writer could have used; ``REDUCE`` may only call an
   allowed global and ``BUILD`` may only target what ``REDUCE`` made. The stack is simulated, the containers and the
   edges between them recorded (appends after the fact included), and the object graph must be acyclic and at most
   ``Limits.max_depth`` deep.
2. **Load** (:class:`SafeUnpickler`). ``find_class`` hands out stand-ins, not numpy's functions:
   ``numpy.dtype`` and ``_reconstruct`` make placeholders whose ``__setstate__`` checks the state before numpy sees
   it -- a plain dtype only (bool, int, uint, float, complex, bytes, str, or object), a shape of non-negative ints
   whose size times the item size equals the bytes present (or, for object arrays, a list of exactly that many
   strings, bytes, numbers or None), each size claimed against :class:`~modalens.data.limits.Limits` before
   anything is allocated -- and only then build the array (numpy's own ``__setstate__`` for plain dtypes, element by
   element for object arrays). ``_frombuffer`` (protocol 5) and ``scalar`` are checked the same way; ``bytes(n)``
   and ``bytearray(n)`` with an integer are refused.

Allowed globals: ``numpy.ndarray`` (only as ``_reconstruct``'s argument), ``numpy.dtype``,
``numpy.(_)core.multiarray._reconstruct`` and ``.scalar``, ``numpy.(_)core.numeric._frombuffer``, ``_codecs.encode``
with the latin-1 codec only, ``builtins`` dict/list/tuple/set/frozenset/str/bytes/bytearray/int/float/complex/bool
(``__builtin__`` for Python 2 pickles) and ``collections.OrderedDict``. numpy 1.x (``numpy.core``) and 2.x
(``numpy._core``) spellings are both accepted.
"""

from __future__ import annotations

import builtins
import codecs
import collections
import contextlib
import importlib
import io
import math
import mmap
import os
import pickle
import pickletools
import re
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from modalens.data.dataset import DatasetError
from modalens.data.limits import Budget, Limits, resolve


class UnsafePickleError(DatasetError):
    """A pickle asked for a global or an opcode outside the allow-list; nothing it referenced was imported or called."""


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
_ATOMS = (str, bytes, int, float, complex, bool, type(None), np.generic)
_MAX_NDIM = 32


def _numpy_name(module: str, name: str) -> tuple[str, str] | None:
    """The numpy-2 spelling of an allowed numpy global, or None."""
    if module != "numpy" and not module.startswith("numpy."):
        return None
    suffix = module[len("numpy") :]
    if suffix.startswith(".core."):
        suffix = "._core." + suffix[len(".core.") :]
    return (suffix, name) if (suffix, name) in _NUMPY else None


def _allowed(module: str, name: str) -> bool:
    if module in ("builtins", "__builtin__"):
        return name in _BUILTINS
    if module == "collections":
        return name == "OrderedDict"
    if module == "_codecs":
        return name == "encode"
    return _numpy_name(module, name) is not None


def _numpy_function(suffix: str, name: str) -> Any:
    for candidate in ("numpy" + suffix, "numpy" + suffix.replace("._core.", ".core.", 1)):
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    raise DatasetError(f"numpy has no {name} in numpy{suffix}")  # pragma: no cover  (every numpy since 1.17 has)


# -- pass 1: the opcode scan ---------------------------------------------------------------------------------------
_REFUSED = {
    "INST": "instantiates a class by name",
    "OBJ": "instantiates a class",
    "NEWOBJ": "instantiates a class",
    "NEWOBJ_EX": "instantiates a class",
    "PERSID": "asks for a persistent object",
    "BINPERSID": "asks for a persistent object",
    "EXT1": "names a global through the extension registry",
    "EXT2": "names a global through the extension registry",
    "EXT4": "names a global through the extension registry",
    "NEXT_BUFFER": "refers to out-of-band data",
    "READONLY_BUFFER": "refers to out-of-band data",
}
_LEAVES = frozenset(
    {
        "INT",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG",
        "LONG1",
        "LONG4",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
        "BYTEARRAY8",
        "NONE",
        "NEWTRUE",
        "NEWFALSE",
        "FLOAT",
        "BINFLOAT",
    }
)
_UNICODE = frozenset({"UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"})
_FIXED = {"uint1": "<B", "uint2": "<H", "int4": "<i", "uint4": "<I", "uint8": "<Q", "float8": ">d"}
_PREFIXED = {  # length-prefixed arguments: the format of the length
    "long1": "<B",
    "long4": "<i",
    "string1": "<B",
    "string4": "<i",
    "bytes1": "<B",
    "bytes4": "<I",
    "bytes8": "<Q",
    "bytearray8": "<Q",
    "unicodestring1": "<B",
    "unicodestring4": "<I",
    "unicodestring8": "<Q",
}
_ARG_LAYOUT = {name: ("fixed", fmt, struct.calcsize(fmt)) for name, fmt in _FIXED.items()} | {
    name: ("prefixed", fmt, struct.calcsize(fmt)) for name, fmt in _PREFIXED.items()
}
_TABLE: list[tuple[str, tuple | str | None] | None] = [None] * 256
for _op in pickletools.opcodes:
    _layout = None if _op.arg is None else _ARG_LAYOUT.get(_op.arg.name, _op.arg.name)
    _TABLE[ord(_op.code)] = (_op.name, _layout)
_NODE_OPS = frozenset({"EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "EMPTY_TUPLE"})
_MARK_OPS = frozenset({"LIST", "TUPLE", "DICT", "FROZENSET"})
_ADD_OPS = frozenset({"APPENDS", "SETITEMS", "ADDITEMS"})
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})


class _Global:
    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name


_LEAF = object()


def scan_pickle(data: Any, *, source: str, limits: Limits) -> None:  # noqa: C901  (one branch per opcode family)
    """Walk a pickle's opcodes without building anything; raise if loading it could run code or crash.

    Parameters
    ----------
    data
        The pickle's bytes (``bytes`` or an ``mmap``); payloads are skipped, never copied.
    source
        The file name for messages.
    limits
        ``max_depth`` bounds the nesting of the object graph.

    Raises
    ------
    UnsafePickleError
        A global or opcode outside the allow-list, ``REDUCE`` of something but an allowed global, or ``BUILD`` on
        something no ``REDUCE`` made.
    DatasetError
        Truncation, a malformed stream, a self-referencing or too deeply nested structure.
    """
    n = len(data)
    limit = limits.max_depth
    unpack = struct.unpack_from
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}
    children: list[list[int]] = []  # node -> its child nodes (appends after the fact included)
    depth: list[int] = []  # node -> a lower bound of its nesting depth, kept up to date as children are added
    reduced: set[int] = set()  # nodes made by REDUCE: the only ones BUILD may target
    pos = ops = 0

    def fail(what: str) -> DatasetError:
        return DatasetError(f"{source}: not a readable pickle ({what} at byte {at})")

    def truncated(what: str) -> DatasetError:
        return DatasetError(f"{source}: pickle is truncated ({what})")

    def too_deep() -> DatasetError:
        return DatasetError(
            f"{source}: the pickle nests containers more than {limit} deep; MMSA files nest about 5 deep "
            "(raise Limits.max_depth for other files)"
        )

    def pop() -> Any:
        if not stack or (marks and len(stack) == marks[-1]):
            raise fail(f"{name} with too few items on the stack")
        return stack.pop()

    def pop_mark() -> list[Any]:
        if not marks:
            raise fail(f"{name} without a MARK")
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    def node(items: list[Any]) -> int:
        kids = [i for i in items if type(i) is int]
        d = 1 + max([depth[k] for k in kids], default=0)
        if d > limit:
            raise too_deep()
        children.append(kids)
        depth.append(d)
        return len(children) - 1

    def add(items: list[Any]) -> None:
        if not stack or (marks and len(stack) == marks[-1]) or type(stack[-1]) is not int:
            raise fail(f"{name} on something that is not a container")
        target = stack[-1]
        for item in items:
            if type(item) is int:
                children[target].append(item)
                if depth[item] + 1 > depth[target]:
                    depth[target] = depth[item] + 1
                    if depth[target] > limit:
                        raise too_deep()

    def line(max_len: int) -> str:
        nonlocal pos
        end = data.find(b"\n", pos, pos + max_len + 1)
        if end < 0:
            if n - pos > max_len:
                raise fail(f"{name} argument longer than {max_len} bytes")
            raise truncated(f"inside {name} at byte {at}")
        text = bytes(data[pos:end]).decode("latin-1")
        pos = end + 1
        return text

    while True:
        at = pos
        if pos >= n:
            raise truncated("ended before its STOP opcode")
        entry = _TABLE[data[pos]]
        pos += 1
        if entry is None:
            raise fail(f"unknown opcode {bytes([data[at]])!r}")
        name, layout = entry
        ops += 1
        if name in _REFUSED:
            raise UnsafePickleError(
                f"{source}: refusing opcode {name} at byte {at} (it {_REFUSED[name]}); this reader admits only "
                "numpy arrays of plain dtypes and builtin containers"
            )
        value: Any = None
        if layout is not None:
            if type(layout) is tuple:
                how, fmt, width = layout
                if pos + width > n:
                    raise truncated(f"inside {name} at byte {at}")
                value = unpack(fmt, data, pos)[0]
                pos += width
                if how == "prefixed":
                    if value < 0:
                        raise fail(f"a negative length in {name}")
                    if value > n - pos:
                        raise truncated(f"{name} at byte {at} claims {value} bytes, {n - pos} remain")
                    if name in _UNICODE and value <= 256:
                        try:
                            text = bytes(data[pos : pos + value]).decode("utf-8", "surrogatepass")
                        except UnicodeDecodeError as exc:
                            raise fail(f"{name} that is not UTF-8") from exc
                        pos += value
                        value = text
                    else:
                        pos += value
                        value = None
            elif layout == "stringnl_noescape_pair":
                value = (line(1024), line(1024))
            elif layout in ("stringnl", "unicodestringnl", "stringnl_noescape"):
                end = data.find(b"\n", pos)
                if end < 0:
                    raise truncated(f"inside {name} at byte {at}")
                pos = end + 1
            else:  # INT, LONG, FLOAT, GET, PUT: short decimal text
                value = line(8192)
        # the opcode itself, most frequent first
        if name in ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"):
            if not stack or (marks and len(stack) == marks[-1]):
                raise fail(f"{name} with nothing to memoize")
            if name == "MEMOIZE":
                idx = len(memo)
            else:
                try:
                    idx = int(value)
                except ValueError as exc:
                    raise fail(f"{name} with memo index {value!r}") from exc
                if idx < 0 or idx > ops:
                    raise fail(f"{name} with memo index {idx}, more than any writer uses")
            memo[idx] = stack[-1]
        elif name in _UNICODE:
            stack.append(value if type(value) is str else _LEAF)
        elif name in _LEAVES:
            stack.append(_LEAF)
        elif name in _GET_OPS:
            try:
                idx = int(value)
            except ValueError as exc:
                raise fail(f"{name} with memo index {value!r}") from exc
            if idx not in memo:
                raise fail(f"{name} of memo index {idx}, which was never set")
            stack.append(memo[idx])
        elif name == "MARK":
            marks.append(len(stack))
        elif name in _ADD_OPS:
            items = pop_mark()
            add(items)
        elif name in ("APPEND", "SETITEM"):
            items = [pop() for _ in range(1 if name == "APPEND" else 2)]
            add(items)
        elif name in _NODE_OPS:
            stack.append(node([]))
        elif name in _MARK_OPS:
            items = pop_mark()
            if name == "DICT" and len(items) % 2:
                raise fail("DICT with an odd number of items")
            stack.append(node(items))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            items = [pop() for _ in range(int(name[-1]))]
            stack.append(node(items))
        elif name in ("GLOBAL", "STACK_GLOBAL"):
            if name == "GLOBAL":
                module, attr = value
            else:
                attr, module = pop(), pop()
                if type(module) is not str or type(attr) is not str:
                    raise UnsafePickleError(
                        f"{source}: refusing STACK_GLOBAL at byte {at}: its module and name are not plain strings"
                    )
            if not _allowed(module, attr):
                raise UnsafePickleError(
                    f"{source}: refusing to load global {module}.{attr}; this reader admits only numpy arrays "
                    "of plain dtypes and builtin containers, and never runs code from a file"
                )
            stack.append(_Global(module, attr))
        elif name == "REDUCE":
            args, func = pop(), pop()
            if type(func) is not _Global or _numpy_name(func.module, func.name) == ("", "ndarray"):
                called = f"{func.module}.{func.name}" if type(func) is _Global else "something not a global"
                raise UnsafePickleError(f"{source}: refusing REDUCE at byte {at}: it calls {called}")
            if type(args) is not int:
                raise fail("REDUCE without an argument tuple")
            made = node([args])
            reduced.add(made)
            stack.append(made)
        elif name == "BUILD":
            state = pop()
            if not stack or type(stack[-1]) is not int or stack[-1] not in reduced:
                raise UnsafePickleError(
                    f"{source}: refusing BUILD at byte {at}: it sets the state of something no allowed constructor made"
                )
            add([state])
        elif name == "STOP":
            break
        elif name == "PROTO":
            if value > pickle.HIGHEST_PROTOCOL:
                raise fail(f"unsupported pickle protocol {value}")
        elif name == "FRAME":
            if value > n - pos:
                raise truncated(f"a FRAME at byte {at} claims {value} bytes, {n - pos} remain")
        elif name == "POP":
            if marks and len(stack) == marks[-1]:
                marks.pop()
            else:
                pop()
        elif name == "POP_MARK":
            pop_mark()
        elif name == "DUP":
            stack.append(pop())
            stack.append(stack[-1])
        else:  # pragma: no cover  (every pickletools opcode is handled above or refused)
            raise fail(f"unexpected opcode {name}")
    if len(stack) != 1 or marks:
        raise fail("STOP with an unbalanced stack")
    _check_depth(children, stack[0], source, limit)


def _check_depth(children: list[list[int]], root: Any, source: str, limit: int) -> None:
    """The object graph from ``root`` must be acyclic and at most ``limit`` deep (iterative, no recursion)."""
    if type(root) is not int:
        return
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    todo: list[tuple[int, bool]] = [(root, False)]
    while todo:
        node, done = todo.pop()
        if done:
            on_path.discard(node)
            depth[node] = 1 + max((depth[c] for c in children[node]), default=0)
            continue
        if node in depth:
            continue
        on_path.add(node)
        if len(on_path) > limit:
            raise DatasetError(
                f"{source}: the pickle nests containers more than {limit} deep; MMSA files nest about 5 deep "
                "(raise Limits.max_depth for other files)"
            )
        todo.append((node, True))
        for child in children[node]:
            if child in on_path:
                raise DatasetError(f"{source}: the pickle holds a container that contains itself")
            if child not in depth:
                todo.append((child, False))


# -- pass 2: loading through checked stand-ins ---------------------------------------------------------------------
class _NdarrayClass:
    """Stands for ``numpy.ndarray``: only ever an argument of ``_reconstruct``, never called."""

    __slots__ = ()


_NDARRAY = _NdarrayClass()


class _Callable:
    """An allowed global as handed to the unpickler: callable, with no attributes a BUILD could set."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Any) -> None:
        self._fn = fn

    def __call__(self, *args: Any) -> Any:
        return self._fn(*args)


class _DtypeStub:
    """``numpy.dtype(code, align, copy)`` as pickled, turned into a real dtype only after its state is checked."""

    __slots__ = ("args", "state", "loader", "_dtype")

    def __init__(self, loader: SafeUnpickler, args: tuple) -> None:
        self.loader, self.args, self.state, self._dtype = loader, args, None, None

    def __setstate__(self, state: Any) -> None:
        if self.state is not None or self._dtype is not None:
            raise self.loader.bad("a numpy dtype whose state is set after it was used, or twice")
        self.state = state
        self._dtype = self.loader.make_dtype(self.args, state)

    def dtype(self) -> np.dtype:
        if self._dtype is None:
            self._dtype = self.loader.make_dtype(self.args, self.state)
        return self._dtype


class _ArrayStub:
    """``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')`` as pickled; its BUILD state makes the array."""

    __slots__ = ("loader", "value")

    def __init__(self, loader: SafeUnpickler) -> None:
        self.loader, self.value = loader, None

    def __setstate__(self, state: Any) -> None:
        if self.value is not None:
            raise self.loader.bad("a numpy array whose state is set twice")
        self.value = self.loader.make_array(state)


_DTYPE_CODE = re.compile(r"([biufcUSO])([0-9]{1,12})")


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain containers through checked stand-ins and refuses the rest.

    Use :func:`safe_load`, which scans the opcode stream first (:func:`scan_pickle`); this class alone does not
    bound nesting depth.

    Parameters
    ----------
    file
        A binary file object.
    source
        The file name used in error messages.
    budget
        The running account of bytes claimed (a :class:`~modalens.data.limits.Budget`); default limits when None.
    """

    def __init__(self, file: io.BufferedIOBase, *, source: str = "<pickle>", budget: Budget | None = None) -> None:
        super().__init__(file, encoding="latin1")
        self.source = source
        self.budget = budget if budget is not None else resolve(None).budget(source)
        self.where = ""

    def bad(self, what: str) -> DatasetError:
        return DatasetError(f"{self.source}: not a readable pickle ({what})")

    def find_class(self, module: str, name: str) -> Any:
        if not _allowed(module, name):
            raise UnsafePickleError(
                f"{self.source}: refusing to load global {module}.{name}; this reader admits only numpy arrays "
                "of plain dtypes and builtin containers, and never runs code from a file"
            )
        if module in ("builtins", "__builtin__"):
            if name in ("bytes", "bytearray"):
                return _Callable(self._sized(getattr(builtins, name)))
            return _Callable(getattr(builtins, name))
        if module == "collections":
            return _Callable(collections.OrderedDict)
        if module == "_codecs":
            return _Callable(self._latin1_encode)
        suffix, attr = _numpy_name(module, name)  # type: ignore[misc]
        if attr == "ndarray":
            return _NDARRAY
        return _Callable(
            {
                "dtype": self._dtype,
                "_reconstruct": self._reconstruct,
                "scalar": self._scalar,
                "_frombuffer": self._frombuffer,
            }[attr]
        )

    # -- stand-ins -----------------------------------------------------------------------------------------------
    def _sized(self, kind: type) -> Any:
        def make(*args: Any) -> Any:
            if args and isinstance(args[0], int | float):
                raise self.bad(f"{kind.__name__}({args[0]!r}): a size instead of content")
            return kind(*args)

        return make

    def _latin1_encode(self, obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        # Protocol 2 pickles bytes as _codecs.encode(str, "latin1"); no other codec is needed or admitted.
        if not isinstance(encoding, str) or encoding.replace("-", "").replace("_", "").lower() != "latin1":
            raise UnsafePickleError(
                f"{self.source}: _codecs.encode with codec {encoding!r} is not allowed (only latin1)"
            )
        if not isinstance(obj, str) or not isinstance(errors, str):
            raise self.bad("_codecs.encode of something not a string")
        return codecs.encode(obj, "latin1", errors)

    def _dtype(self, *args: Any) -> _DtypeStub:
        return _DtypeStub(self, args)

    def _reconstruct(self, cls: Any = None, shape: Any = None, typecode: Any = None, *rest: Any) -> _ArrayStub:
        if cls is not _NDARRAY or rest or shape != (0,) or typecode not in (b"b", "b"):
            raise self.bad("_reconstruct with arguments numpy never writes (expected ndarray, (0,), b'b')")
        return _ArrayStub(self)

    def _frombuffer(self, buf: Any = None, dtype: Any = None, shape: Any = None, order: Any = "C") -> np.ndarray:
        real = self._real_dtype(dtype, "_frombuffer")
        if real.hasobject:
            raise self.bad("_frombuffer of an object dtype (pointers from raw bytes)")
        dims = self._shape(shape)
        if not isinstance(buf, bytes | bytearray) or order not in ("C", "F"):
            raise self.bad("_frombuffer without a byte buffer and a C or F order")
        self._claim(dims, real, len(buf))
        return np.frombuffer(buf, dtype=real).reshape(dims, order=order)

    def _scalar(self, dtype: Any = None, data: Any = None, *rest: Any) -> Any:
        real = self._real_dtype(dtype, "scalar")
        if real.hasobject:
            raise self.bad("a numpy scalar of object dtype (a pointer from raw bytes)")
        if rest or not isinstance(data, bytes) or len(data) != real.itemsize:
            raise self.bad(f"a numpy {real} scalar whose data is not {real.itemsize} bytes")
        return _numpy_function("._core.multiarray", "scalar")(real, data)

    # -- checks --------------------------------------------------------------------------------------------------
    def _real_dtype(self, dtype: Any, what: str) -> np.dtype:
        if not isinstance(dtype, _DtypeStub):
            raise self.bad(f"{what} with a dtype that is not a numpy dtype")
        return dtype.dtype()

    def make_dtype(self, args: tuple, state: Any) -> np.dtype:
        """A plain numpy dtype from its pickled arguments and state, or an error naming what is not plain."""
        code = args[0] if args else None
        match = _DTYPE_CODE.fullmatch(code) if isinstance(code, str) else None
        if match is None:
            raise self.bad(
                f"numpy dtype {code!r}: only bool, int, uint, float, complex, bytes, str and object dtypes are read"
            )
        kind, size = match.group(1), int(match.group(2))
        order, elsize = "|", None
        if state is not None:
            if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
                raise self.bad(f"numpy dtype {code!r} with a state numpy does not write")
            _, order, subarray, names, fields, elsize, alignment, flags = state[:8]
            if subarray is not None or names is not None or fields is not None:
                raise self.bad(f"numpy dtype {code!r} with fields or a sub-array (structured dtypes are not read)")
            if order not in ("<", ">", "|", "="):
                raise self.bad(f"numpy dtype {code!r} with byte order {order!r}")
            if kind in "US":
                if not isinstance(elsize, int) or elsize < 0 or (kind == "U" and elsize % 4):
                    raise self.bad(f"numpy dtype {code!r} with an item size of {elsize!r} bytes")
                size = elsize // 4 if kind == "U" else elsize
        prefix = order if order in ("<", ">") and kind in "iufcU" else ""
        try:
            dtype = np.dtype("O") if kind == "O" else np.dtype(f"{prefix}{kind}{size}")
        except (TypeError, ValueError) as exc:
            raise self.bad(f"numpy dtype {code!r} ({exc})") from exc
        if dtype.fields is not None or dtype.subdtype is not None:  # pragma: no cover
            raise self.bad(f"numpy dtype {code!r} is not a plain dtype")
        if state is not None:
            # what numpy writes for this dtype: anything else is a damaged file (numpy itself refuses most of it)
            canonical = dtype.__reduce__()[2]
            flags_ok = flags == canonical[7] or (kind in "US" and flags in (0, 8))
            if (elsize, alignment) != canonical[5:7] or not flags_ok:
                raise self.bad(
                    f"numpy dtype {dtype} with item size, alignment and flags {(elsize, alignment, flags)!r}; numpy "
                    f"writes {canonical[5:8]!r}"
                )
        return dtype

    def _shape(self, shape: Any) -> tuple[int, ...]:
        if (
            not isinstance(shape, tuple)
            or len(shape) > _MAX_NDIM
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise self.bad(f"a numpy array shape that is not a tuple of non-negative ints: {_short(shape)}")
        return shape

    def _claim(self, shape: tuple[int, ...], dtype: np.dtype, present: int) -> None:
        count = math.prod(shape)
        claimed = count * dtype.itemsize
        if claimed != present:
            raise self.bad(f"a numpy {dtype} array of shape {shape} needs {claimed} bytes, the pickle holds {present}")
        self.budget.claim(f"a numpy array of shape {shape} ({dtype})", claimed)

    def make_array(self, state: Any) -> np.ndarray:
        """The array of a checked ``__setstate__`` state; see the module docstring for the checks."""
        if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
            state = state[1:]
        if not isinstance(state, tuple) or len(state) != 4:
            raise self.bad("a numpy array state that is not (version, shape, dtype, fortran, data)")
        shape, dtype, fortran, data = state
        dims = self._shape(shape)
        real = self._real_dtype(dtype, "a numpy array")
        if not isinstance(fortran, bool | int) or fortran not in (0, 1):
            raise self.bad("a numpy array state with a bad order flag")
        count = math.prod(dims)
        if real.hasobject:
            if not isinstance(data, list):
                raise self.bad(f"an object array of shape {dims} whose state holds {type(data).__name__}, not a list")
            if len(data) != count:
                raise self.bad(
                    f"an object array of shape {dims} ({count} elements) whose state lists {len(data)} elements"
                )
            claimed = 8 * count
            for item in data:
                if not isinstance(item, _ATOMS):
                    raise self.bad(
                        f"an object array holding a {type(item).__name__}; object arrays may hold only strings, "
                        "bytes, numbers and None"
                    )
                claimed += sys.getsizeof(item)
            self.budget.claim(f"an object array of shape {dims}", claimed)
            flat = np.empty(count, dtype=object)
            for i, item in enumerate(data):
                flat[i] = item
            out = flat.reshape(dims)
            return np.asfortranarray(out) if fortran else out
        if isinstance(data, str):  # Python 2 pickles read with encoding="latin1"
            data = data.encode("latin1")
        if not isinstance(data, bytes | bytearray):
            raise self.bad(f"a numpy {real} array whose data is a {type(data).__name__}, not bytes")
        self._claim(dims, real, len(data))
        arr = _numpy_function("._core.multiarray", "_reconstruct")(np.ndarray, (0,), b"b")
        arr.__setstate__((1, dims, real, bool(fortran), data))
        return arr

    def resolve(self, obj: Any) -> Any:
        """The loaded object with every stand-in replaced by the array or dtype it stands for."""
        return _Resolver(self).run(obj)


class _Resolver:
    """Replaces stand-ins in a loaded (acyclic, depth-bounded) structure; shared objects stay shared."""

    def __init__(self, loader: SafeUnpickler) -> None:
        self.loader = loader
        self.done: dict[int, Any] = {}

    def run(self, obj: Any) -> Any:
        key = id(obj)
        if key in self.done:
            return self.done[key]
        out = self._resolve(obj)
        self.done[key] = out
        return out

    def _resolve(self, obj: Any) -> Any:
        if isinstance(obj, _ArrayStub):
            if obj.value is None:
                raise self.loader.bad("a numpy array without its state")
            return obj.value
        if isinstance(obj, _DtypeStub):
            return obj.dtype()
        if isinstance(obj, _Callable | _NdarrayClass):
            raise self.loader.bad("a bare global among the data")
        if isinstance(obj, dict):
            for key in obj:
                if not _plain_key(key):
                    raise self.loader.bad(f"a dict key that is a {type(key).__name__}")
            for key, value in list(obj.items()):
                obj[key] = self.run(value)
            return obj
        if isinstance(obj, list):
            for i, value in enumerate(obj):
                obj[i] = self.run(value)
            return obj
        if isinstance(obj, tuple):
            items = tuple(self.run(v) for v in obj)
            return obj if all(a is b for a, b in zip(items, obj, strict=True)) else items
        if isinstance(obj, set | frozenset):
            if any(isinstance(v, _ArrayStub | _DtypeStub | _Callable | _NdarrayClass) for v in obj):
                raise self.loader.bad("a set holding numpy objects")
            return obj
        return obj


def _plain_key(key: Any) -> bool:
    if isinstance(key, tuple):
        return all(isinstance(k, _ATOMS) for k in key)
    return isinstance(key, _ATOMS)


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, _ATOMS + (tuple, list)) else type(value).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def safe_load(path: str | os.PathLike, *, limits: Limits | None = None, budget: Budget | None = None) -> Any:
    """Load a pickle file: scan its opcodes (:func:`scan_pickle`), then unpickle through :class:`SafeUnpickler`.

    Parameters
    ----------
    path
        The pickle file.
    limits
        Size and depth limits (default: :meth:`Limits.from_env`).
    budget
        A running account shared with the rest of a load; made from ``limits`` when None.

    Returns
    -------
    Any
        The unpickled object: numpy arrays, scalars, and builtin containers of them.

    Raises
    ------
    UnsafePickleError
        The pickle references a global or opcode outside the allow-list (nothing is called).
    LimitError
        An array claims more bytes than the limits allow.
    DatasetError
        The file is missing, truncated, not a pickle, or holds something this reader does not build (named).
    """
    source = Path(path)
    if not source.is_file():
        raise DatasetError(f"{source}: no such file")
    budget = budget if budget is not None else resolve(limits).budget(source)
    budget.add_file(source)
    with source.open("rb") as handle:
        return safe_loads_from(handle, source=str(source), budget=budget)


def safe_loads(data: bytes, *, source: str = "<bytes>", limits: Limits | None = None) -> Any:
    """Unpickle bytes safely; see :func:`safe_load`."""
    budget = resolve(limits).budget(source, file_bytes=len(data))
    return safe_loads_from(io.BytesIO(data), source=source, budget=budget)


def safe_loads_from(handle: Any, *, source: str, limits: Limits | None = None, budget: Budget | None = None) -> Any:
    """Unpickle an open, seekable binary file safely (scan, then load), turning every failure into a DatasetError."""
    limits = resolve(limits) if budget is None else budget.limits
    budget = budget if budget is not None else limits.budget(source)
    start = handle.tell()
    with _contents(handle) as data:
        if len(data) - start <= 0:
            raise DatasetError(f"{source}: pickle is truncated (the file is empty)")
        scan_pickle(data if not start else memoryview(data)[start:].tobytes(), source=source, limits=limits)
    handle.seek(start)
    loader = SafeUnpickler(handle, source=source, budget=budget)
    try:
        return loader.resolve(loader.load())
    except DatasetError:
        raise
    except EOFError as exc:
        raise DatasetError(f"{source}: pickle is truncated (ended before its STOP opcode)") from exc
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001  (a malformed stream can fail in any pickle or builtin routine)
        raise DatasetError(f"{source}: not a readable pickle ({type(exc).__name__}: {exc})") from exc


@contextlib.contextmanager
def _contents(handle: Any) -> Iterator[Any]:
    """The whole file as something indexable: a read-only memory map of a real file, else its bytes."""
    if isinstance(handle, io.BytesIO):
        yield handle.getbuffer().tobytes()
        return
    try:
        fileno = handle.fileno()
        size = os.fstat(fileno).st_size
        mapped = mmap.mmap(fileno, 0, access=mmap.ACCESS_READ) if size else None
    except (OSError, ValueError, io.UnsupportedOperation):
        mapped = None
    if mapped is None:
        position = handle.tell()
        handle.seek(0)
        data = handle.read()
        handle.seek(position)
        yield data
        return
    try:
        yield mapped
    finally:
        mapped.close()

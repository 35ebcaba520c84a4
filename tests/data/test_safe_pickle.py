"""The restricted unpickler: numpy arrays and containers load, code never runs."""

from __future__ import annotations

import collections
import fractions
import os
import pickle
import pickletools

import numpy as np
import pytest

from modalens.data.dataset import DatasetError
from modalens.data.safe_pickle import UnsafePickleError, safe_load, safe_loads


class _RunsShell:
    """Pickles to ``os.system(<command>)``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Custom:
    def __init__(self, x: int) -> None:
        self.x = x


def _payload() -> dict:
    return {
        "train": {
            "audio": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
            "vision": np.asfortranarray(np.ones((2, 3, 2))),
            "raw_text": np.array(["hello world", "bad movie"], dtype=object),
            "id": np.array(["a$_$1", "a$_$2"]),
            "lengths": np.array([3, 2], dtype=np.int64),
            "labels": np.array([[0.5], [-1.25]], dtype=np.float32),
            "scalar": np.float64(2.5),
            "misc": [1, 2.0, "x", b"bytes", (True, None), {3, 4}, frozenset({5}), 1 + 2j, bytearray(b"ab")],
            "ordered": collections.OrderedDict(a=1),
        }
    }


def _assert_payload_equal(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key, value in want["train"].items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got["train"][key], value)
            assert got["train"][key].dtype == value.dtype
        else:
            assert got["train"][key] == value


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_round_trip_every_protocol(tmp_path, protocol):
    path = tmp_path / f"p{protocol}.pkl"
    want = _payload()
    path.write_bytes(pickle.dumps(want, protocol=protocol))
    _assert_payload_equal(safe_load(path), want)


def test_numpy1_module_spelling_is_accepted():
    # numpy 1.x pickles name numpy.core.*; rewrite a numpy-2 pickle's globals to that spelling (protocol 2 uses
    # text GLOBAL opcodes, so the module names are plain bytes in the stream).
    data = pickle.dumps(np.arange(5, dtype=np.int16), protocol=2)
    assert b"numpy._core.multiarray" in data
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    globals_seen = {arg for op, arg, _ in pickletools.genops(old) if op.name == "GLOBAL"}
    assert "numpy.core.multiarray _reconstruct" in globals_seen
    np.testing.assert_array_equal(safe_loads(old), np.arange(5, dtype=np.int16))


def test_hostile_pickle_raises_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"train": _RunsShell(f"touch {marker}")}, protocol=4))
    with pytest.raises(UnsafePickleError) as info:
        safe_load(path)
    assert not marker.exists()
    message = str(info.value)
    assert "evil.pkl" in message and "system" in message  # names the file and the forbidden global
    # Sanity check that the payload is real: the unrestricted loader would have run it.
    pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_object_array_of_custom_class_is_refused(protocol):
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = _Custom(1), _Custom(2)
    with pytest.raises(UnsafePickleError, match="_Custom"):
        safe_loads(pickle.dumps(arr, protocol=protocol), source="objects.pkl")


@pytest.mark.parametrize("obj", [np.ma.array([1, 2], mask=[0, 1]), collections.Counter("ab"), fractions.Fraction(1, 3)])
def test_other_library_globals_are_refused(obj):
    with pytest.raises(UnsafePickleError, match="refusing to load global"):
        safe_loads(pickle.dumps(obj, protocol=4))


def test_codecs_encode_only_with_latin1():
    # A hand-written protocol-2 stream calling _codecs.encode("x", "rot13").
    evil = b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(DatasetError, match="latin1"):
        safe_loads(evil)


def test_truncated_pickle_is_a_clear_error(tmp_path):
    path = tmp_path / "cut.pkl"
    data = pickle.dumps(_payload(), protocol=4)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"cut\.pkl.*truncated|cut\.pkl.*not a readable pickle"):
        safe_load(path)


def test_not_a_pickle_and_missing_file(tmp_path):
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"this is not a pickle at all")
    with pytest.raises(DatasetError, match="junk.pkl"):
        safe_load(junk)
    with pytest.raises(DatasetError, match="no such file"):
        safe_load(tmp_path / "absent.pkl")


class _RawObjectScalar:
    """Pickles to numpy's scalar(<dtype holding object pointers>, <raw bytes>): memory-unsafe if it were obeyed."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype

    def __reduce__(self):
        try:
            from numpy._core.multiarray import scalar
        except ImportError:  # numpy 1.x
            from numpy.core.multiarray import scalar

        return (scalar, (self.dtype, b"\x41" * 8))


@pytest.mark.parametrize("dtype", [np.dtype("O"), np.dtype([("a", "O")])])
def test_pointer_dtypes_from_raw_bytes_are_an_error(dtype):
    with pytest.raises(DatasetError, match="crafted.pkl: not a readable pickle"):
        safe_loads(pickle.dumps(_RawObjectScalar(dtype), protocol=4), source="crafted.pkl")

"""Each refusal of each loader, with its known answer: the error class and what the message says.

The files are the crafted hostile cases of ``tests/data/fuzz/hostile.py`` (the fuzz suite loads them in child
processes; here they are loaded in this process, so the message can be checked exactly). They are loaded with explicit
``limits=`` (128 MiB per array), so the size bombs are refused by the cap however the environment sets it.
"""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modalens.data.dataset import DatasetError, Modality, MultimodalDataset
from modalens.data.limits import LimitError, Limits, parse_bytes
from modalens.data.loaders import load_dataset, save_dataset
from modalens.data.safe_pickle import UnsafePickleError, safe_loads

from .fuzz.hostile import MARKER, write_hostile
from .fuzz.seeds import mmsa_payload, tiny_dataset

LIMITS = Limits(max_array_bytes=128 << 20, max_total_bytes=1 << 30)
U, L, D = UnsafePickleError, LimitError, DatasetError
GLOBAL = "refusing to load global"
DEEP = "nests containers more than 100 deep"
FILL = "the rest would read as fill values"

KNOWN = {
    # -- MMSA pickles ----------------------------------------------------------------------------------------------
    "mmsa:rce-os-system": (U, GLOBAL + r" (posix|os|nt)\.system"),
    "mmsa:rce-builtins-eval": (U, GLOBAL + r" __builtin__\.eval"),
    "mmsa:rce-getattr": (U, GLOBAL + r" builtins\.getattr"),
    "mmsa:rce-global-protocol0": (U, GLOBAL + r" os\.system"),
    "mmsa:rce-inst-opcode": (U, r"refusing opcode INST at byte \d+"),
    "mmsa:object-array-custom-class": (U, GLOBAL + r" .*_Custom"),
    "mmsa:object-array-short-state": (D, r"object array of shape \(100000,\) \(100000 elements\).*lists 1 elements"),
    "mmsa:object-array-long-state": (D, r"object array of shape \(1,\) \(1 elements\).*lists 3 elements"),
    "mmsa:object-array-of-containers": (D, r"object array holding a list; object arrays may hold only strings"),
    "mmsa:object-array-from-bytes": (D, r"object array of shape \(2,\) whose state holds bytes, not a list"),
    "mmsa:structured-object-field": (D, r"numpy dtype 'V8': only bool, int, uint, float, complex, bytes, str"),
    "mmsa:structured-overlapping-fields": (D, r"numpy dtype 'V8'"),
    "mmsa:scalar-object-from-bytes": (D, r"numpy scalar of object dtype"),
    "mmsa:frombuffer-object-dtype": (D, r"_frombuffer of an object dtype"),
    "mmsa:frombuffer-shape-mismatch": (D, r"float64 array of shape \(1000, 1000\) needs 8000000 bytes, .* holds 8"),
    "mmsa:array-state-shape-mismatch": (D, r"float32 array of shape \(1000000, 1000\) needs 4000000000 bytes"),
    "mmsa:array-negative-shape": (D, r"shape that is not a tuple of non-negative ints: \(-4, 2\)"),
    "mmsa:nested-tuple-1mb": (D, DEEP),
    "mmsa:nested-lists-mark": (D, DEEP),
    "mmsa:nested-lists-after-the-fact": (D, DEEP),
    "mmsa:nested-object-arrays-1mb": (D, DEEP),
    "mmsa:self-referencing-list": (D, r"a container that contains itself"),
    "mmsa:exponential-dag": (D, r"field 'text': expected an array .* nested lists of more than 1000000 items"),
    "mmsa:bytes8-claims-1gb": (D, r"truncated \(BINBYTES8 at byte 2 claims 1100000000 bytes, 1201 remain\)"),
    "mmsa:unicode8-claims-1gb": (D, r"truncated \(BINUNICODE8 at byte 2 claims 1100000000 bytes"),
    "mmsa:frame-claims-1gb": (D, r"truncated \(a FRAME at byte 2 claims 1100000000 bytes"),
    "mmsa:bytearray-of-1gb": (D, r"bytearray\(1100000000\): a size instead of content"),
    "mmsa:bytes-of-1gb": (D, r"bytes\(1100000000\): a size instead of content"),
    "mmsa:reconstruct-shape-1gb": (D, r"_reconstruct with arguments numpy never writes"),
    "mmsa:ndarray-call-8gb": (U, r"refusing REDUCE at byte \d+: it calls numpy\.ndarray"),
    "mmsa:memo-index-4g": (D, r"memo index 4294967280, more than any writer uses"),
    "mmsa:memo-index-100m": (D, r"memo index 100000000, more than any writer uses"),
    "mmsa:refs-to-one-array": (L, r"field 'audio' claims .* over the per-array cap of 128\.0 MiB"),
    "mmsa:one-string-shared-5000-times": (L, r"object array of shape \(5000,\) claims 4\.7 GiB .* per-array cap"),
    "mmsa:codecs-rot13": (U, r"_codecs\.encode with codec 'rot13' is not allowed \(only latin1\)"),
    "mmsa:build-on-a-global": (U, r"refusing BUILD at byte \d+"),
    "mmsa:build-sets-class-attribute": (U, r"refusing BUILD at byte \d+"),
    "mmsa:memo-get-undefined": (D, r"BINGET of memo index 5, which was never set"),
    "mmsa:stack-underflow": (D, r"REDUCE with too few items on the stack"),
    "mmsa:persistent-id": (U, r"refusing opcode PERSID"),
    "mmsa:extension-code": (U, r"refusing opcode EXT1"),
    "mmsa:out-of-band-buffer": (U, r"refusing opcode NEXT_BUFFER"),
    "mmsa:huge-decimal-long": (D, r"LONG argument longer than 8192 bytes"),
    "mmsa:truncated": (D, r"pickle is truncated"),
    "mmsa:not-a-pickle": (D, r"unsupported pickle protocol 116"),
    "mmsa:empty-file": (D, r"pickle is truncated \(the file is empty\)"),
    "mmsa:list-not-dict": (D, r"expected a dict of splits \(train/valid/test\), got list"),
    "mmsa:non-string-split-keys": (D, r"split names must be strings, got 0 \(int\)"),
    "mmsa:non-string-field-names": (D, r"split 'train': field names must be strings, got 7 \(int\)"),
    "mmsa:ragged-list-field": (D, r"split 'train' field 'text': expected an array \[N=3, T, D\]"),
    "mmsa:complex-audio": (D, r"field 'audio': expected real numbers \[N=3, T, D\], got complex dtype complex64"),
    "mmsa:complex-labels": (D, r"field 'regression_labels': expected real numbers \[N\], got complex"),
    "mmsa:nan-lengths": (D, r"field 'audio_lengths': expected whole-number lengths, got nan at index 0"),
    "mmsa:fractional-lengths": (D, r"field 'audio_lengths': expected whole-number lengths, got 0\.5 at index 0"),
    "mmsa:ids-of-dicts": (D, r"field 'id': entry 0 is a dict; expected \[N=3\] strings"),
    "mmsa:ids-null": (D, r"field 'id': entry 0 is null \(None\)"),
    "mmsa:datetime-audio": (D, r"numpy dtype 'M8'"),
    "mmsa:string-labels": (D, r"field 'regression_labels': expected a numeric array \[N\], got dtype <U1"),
    # -- modalens .npz ---------------------------------------------------------------------------------------------
    "native:zip-bomb-1.3gb": (L, r"entry 'values/text' \(shape \(4, 3, 27962026\), float32\) claims 1\.2 GiB"),
    "native:npy-header-claims-6gb": (D, r"'values/text': its \.npy header claims shape \(250000000, 3, 2\) .* 96 data"),
    "native:zip-entry-size-lie": (D, r"'values/text': its \.npy header claims shape \(4, 3, 2\) .* 2147483504 data"),
    "native:object-dtype-member": (D, r"entry 'values/text': expected float, int or uint values, got dtype object"),
    "native:header-nested-100k": (D, r"header __modalens__ is corrupt \(JSON nested too deeply\)"),
    "native:header-is-a-list": (D, r"header __modalens__: expected a JSON object, got list"),
    "native:header-bad-types": (D, r"modality 'text' 'feature_names' must be a list of strings"),
    "native:header-modality-not-a-dict": (D, r"modalities\[0\] must be an object, got str"),
    "native:header-name-not-a-string": (D, r"'name' must be a string, got dict"),
    "native:header-class-names-dict": (D, r"'class_names' must be a list of strings or null"),
    "native:header-not-json": (D, r"header __modalens__ is corrupt"),
    "native:duplicate-member": (D, r"entry 'values/text' appears twice in the archive"),
    "native:encrypted-member": (D, r"entry '__modalens__' is encrypted"),
    "native:unknown-compression": (D, r"uses zip compression method 99 \(only stored or deflated\)"),
    "native:complex-values": (D, r"entry 'values/text': expected float, int or uint values, got dtype complex64"),
    "native:complex-labels": (D, r"entry 'labels': expected .* values, got dtype complex128"),
    "native:structured-values": (D, r"entry 'values/text': expected .* got dtype \[\('a', '<f4'\)\]"),
    "native:words-shorter-than-steps": (D, r"entry 'words/text': expected shape \(4, 3\), got \(4, 2\)"),
    "native:mask-not-bool": (D, r"entry 'mask/text': expected bool values, got dtype float64"),
    "native:media-offsets-negative": (D, r"entry 'media/face/offsets': expected 5 non-decreasing offsets from 0"),
    "native:media-offsets-past-data": (D, r"entry 'media/face/offsets': .* data's 10 bytes"),
    "native:meta-two-dimensional": (D, r"entry 'meta/age': expected shape \(4,\), got \(4, 2\)"),
    "native:meta-null-shape": (D, r"entry 'meta_null/speaker': expected shape \(4,\), got \(7,\)"),
    "native:ids-missing": (D, r"entry 'ids' is missing"),
    "native:labels-nan": (D, r"labels must be finite; 1 NaN/inf entries"),
    "native:truncated": (D, r"not a readable modalens \.npz archive"),
    "native:not-a-zip": (D, r"not a readable modalens \.npz archive"),
    # -- modalens Parquet ------------------------------------------------------------------------------------------
    "parquet:ragged-steps": (D, r"'values/audio': ragged rows: instance 0 holds 1 steps .* \[4, 2, 3\] needs 2"),
    "parquet:ragged-features": (D, r"'values/audio': ragged rows: step 0 holds 2 features .* needs 3"),
    "parquet:null-id": (D, r"column 'id': null at row 1; expected strings"),
    "parquet:null-split": (D, r"column 'split': null at row 1"),
    "parquet:null-text": (D, r"column 'text': null at row 0"),
    "parquet:null-label": (D, r"column 'label': null at row 1; expected numeric labels"),
    "parquet:null-row-in-values": (D, r"column 'values/audio': a null instance at index 2"),
    "parquet:null-inside-values": (D, r"column 'values/audio': a null value in instance 0"),
    "parquet:decimal-values": (D, r"column 'values/audio': expected real numbers, got decimal128\(5, 2\)"),
    "parquet:string-values": (D, r"column 'values/audio': expected real numbers, got string"),
    "parquet:struct-values": (D, r"column 'values/audio': expected real numbers, got struct<re: float, im: float>"),
    "parquet:mask-not-bool": (D, r"column 'mask/text': expected booleans, got double"),
    "parquet:words-with-nulls": (D, r"column 'words/text': a null value in instance 0"),
    "parquet:ragged-mask": (D, r"column 'mask/text': ragged rows: instance 0 holds 2 steps"),
    "parquet:media-not-binary": (D, r"column 'media/face': expected binary, got int64"),
    "parquet:meta-struct": (D, r"column 'meta/age': expected numbers, booleans or strings, got struct"),
    "parquet:meta-list": (D, r"column 'meta/age': expected numbers, booleans or strings, got list"),
    "parquet:label-strings": (D, r"column 'label': expected numeric labels, got string"),
    "parquet:steps-and-features-swapped": (D, r"'values/text': each instance holds 3 steps .* \[4, 2, 3\] needs 2"),
    "parquet:steps-declared-wrong": (D, r"'values/audio': each instance holds 2 steps .* \[4, 3, 3\] needs 3"),
    "parquet:header-not-json": (D, r"schema metadata 'modalens' is not JSON"),
    "parquet:header-nested-100k": (D, r"schema metadata 'modalens' is corrupt \(JSON nested too deeply\)"),
    "parquet:header-is-a-list": (D, r"expected a JSON object, got list"),
    "parquet:header-bad-types": (D, r"modality 'text' 'feature_names' must be a list of strings"),
    "parquet:header-negative-steps": (D, r"modality 'audio' 'steps' must be a non-negative int, got -2"),
    "parquet:duplicate-columns": (D, r"column names must be distinct; \['id'\] repeat"),
    "parquet:dictionary-string-bomb-2gb": (L, r"column 'text' \(decoded strings\) claims 1\.9 GiB"),
    "parquet:zero-run-bomb-160mb": (L, r"column 'values/a' claims 152\.6 MiB"),
    "parquet:truncated": (D, r"not a readable Parquet file"),
    "parquet:not-parquet": (D, r"not a readable Parquet file"),
    # -- CMU-SDK .csd ----------------------------------------------------------------------------------------------
    "csd:external-storage-reads-local-file": (D, r"/frames/data/v1/features\) keeps its data in external files"),
    "csd:external-link-dataset": (D, r"/frames/data/v1/features is an external link to .*other\.h5:/x"),
    "csd:external-link-video-group": (D, r"/frames/data/v2 is an external link to .*other\.h5:/g"),
    "csd:soft-link-dangling": (D, r"/frames/data/v1/features is a soft link to /nowhere"),
    "csd:soft-link-alias": (D, r"/frames/data/v2/features is a soft link to /frames/data/v1/features"),
    "csd:virtual-dataset": (D, r"\(/frames/data/v1/features\) is a virtual dataset"),
    "csd:fill-value-bomb-1.2gb": (D, r"declares shape \(100000000, 3\) in 1526 chunks but stores 0; " + FILL),
    "csd:contiguous-never-written": (D, r"declares shape \(4, 3\) of float32 \(48 bytes\) but stores 0; " + FILL),
    "csd:gzip-bomb-840mb": (L, r"video 'v1' field 'features' \(shape \(31457280, 3\), float32\) claims 360\.0 MiB"),
    "csd:complex-features": (D, r"field 'features' \(/frames/data/v1/features\): expected real numbers, got .*complex"),
    "csd:compound-features": (D, r"field 'features' .*: expected real numbers, got dtype \[\('a'"),
    "csd:vlen-features": (D, r"field 'features' .*: expected real numbers, got dtype variable-length float32"),
    "csd:reference-features": (D, r"field 'features' .*: expected real numbers, got dtype object reference"),
    "csd:null-dataspace": (D, r"field 'features' \(/frames/data/v1/features\) has an empty \(null\) dataspace"),
    "csd:scalar-features": (D, r"field 'features': expected shape \[T, D\], got \(\)"),
    "csd:three-d-features": (D, r"field 'features': expected shape \[T, D\], got \(4, 3, 2\)"),
    "csd:complex-intervals": (D, r"field 'intervals' .*: expected real numbers, got dtype complex128"),
    "csd:nan-intervals": (D, r"field 'intervals': expected finite \[start, end\] rows"),
    "csd:data-is-a-dataset": (D, r"expected one root group holding 'data'"),
    "csd:video-is-a-dataset": (D, r"video 'v2' \(/frames/data/v2\) must be an HDF5 group, got Dataset"),
    "csd:metadata-is-a-dataset": (D, r"/frames/metadata must be an HDF5 group, got Dataset"),
    "csd:two-root-groups": (D, r"expected one root group holding 'data' .* found \['frames', 'frames2'\]"),
    "csd:words-not-strings": (D, r"words\.csd: video 'v1' field 'features' .*: expected strings, got dtype float64"),
    "csd:labels-without-videos": (D, r"labels\.csd: the labels sequence holds no videos"),
    "csd:labels-without-columns": (D, r"labels\.csd: label_column 0 out of range \(the labels have 0 columns\)"),
    "csd:zero-length-chunk-fletcher32": (D, r"field 'intervals' .*: chunk \(0, 0\) is stored as 0 bytes at byte \d+"),
    "csd:heap-object-overruns-collection": (D, r"metadata 'dimension names' .*: global heap object 1 .* overruns"),
    "csd:truncated": (D, r"not a readable HDF5 computational sequence"),
    "csd:not-hdf5": (D, r"not a readable HDF5 computational sequence"),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    cases = {c.label: c for c in write_hostile(folder) if c.mode == "load"}
    return folder, cases


def test_every_crafted_case_has_a_known_answer(hostile):
    _, cases = hostile
    assert sorted(label for label, c in cases.items() if c.expect == "error") == sorted(KNOWN)


def test_a_damaged_heap_that_hangs_hdf5_is_read_by_modalens(hostile):
    """HDF5 loops forever on a global heap whose free space has size 0; the strings themselves are intact."""
    seq = load_dataset(hostile[1]["csd:heap-free-space-of-size-0"].path, limits=LIMITS)
    assert seq["csd-heap-free-space-of-size-0"].feature_names == ["a", "b", "c"]  # the metadata's dimension names


@pytest.mark.parametrize("label", sorted(KNOWN))
def test_refusal(hostile, label):
    folder, cases = hostile
    error, pattern = KNOWN[label]
    path = cases[label].path
    with pytest.raises(error, match=pattern) as info:
        load_dataset(path, limits=LIMITS)
    assert path.name in str(info.value)  # every refusal names the file
    assert not (folder / MARKER).exists()


# -- limits --------------------------------------------------------------------------------------------------------
def test_limits_from_the_environment(monkeypatch):
    monkeypatch.delenv("MODALENS_MAX_BYTES", raising=False)
    monkeypatch.delenv("MODALENS_MAX_ARRAY_BYTES", raising=False)
    assert Limits.from_env() == Limits() == Limits(8 << 30, 16 << 30, 100, 200)
    monkeypatch.setenv("MODALENS_MAX_BYTES", "1G")
    assert Limits.from_env() == Limits(1 << 30, 1 << 30)  # the per-array cap never exceeds the total
    monkeypatch.setenv("MODALENS_MAX_ARRAY_BYTES", "512MiB")
    assert Limits.from_env() == Limits(512 << 20, 1 << 30)
    monkeypatch.setenv("MODALENS_MAX_BYTES", "lots")
    with pytest.raises(LimitError, match="MODALENS_MAX_BYTES: expected a number of bytes"):
        Limits.from_env()
    assert [parse_bytes(x) for x in ("1000", "2e9", "1.5k", "3 MB", "16GiB")] == [
        1000,
        2 * 10**9,
        1536,
        3 * 10**6,
        16 << 30,
    ]
    with pytest.raises(LimitError, match="max_depth must be at most 1000"):
        Limits(max_depth=5000)
    with pytest.raises(LimitError, match="max_array_bytes must be an int of at least 1"):
        Limits(max_array_bytes=0)
    monkeypatch.setenv("MODALENS_MAX_BYTES", "1G")
    monkeypatch.setenv("MODALENS_MAX_EXPANSION", "0")
    assert Limits.from_env().max_expansion == 0
    monkeypatch.setenv("MODALENS_MAX_EXPANSION", "lots")
    with pytest.raises(LimitError, match="MODALENS_MAX_EXPANSION: expected a whole number"):
        Limits.from_env()


def test_limits_apply_to_every_format_and_name_file_field_claim_and_cap(tmp_path, monkeypatch):
    ds = tiny_dataset()
    files = {
        "npz": save_dataset(ds, tmp_path / "t.npz"),
        "parquet": save_dataset(ds, tmp_path / "t.parquet"),
        "pkl": tmp_path / "t.pkl",
    }
    files["pkl"].write_bytes(pickle.dumps(mmsa_payload(), protocol=4))
    tight = Limits(max_array_bytes=40, max_total_bytes=10_000)
    expected = {
        "npz": r"t\.npz: entry '(__modalens__|values/text)' .*claims \d+ bytes, over the per-array cap of 40 bytes",
        "parquet": r"t\.parquet: column '[^']+' claims \d+ bytes, over the per-array cap of 40 bytes",
        "pkl": r"t\.pkl: an? .*array of shape .* claims \d+ bytes, over the per-array cap of 40 bytes",
    }
    for key, path in files.items():
        with pytest.raises(LimitError, match=expected[key]):
            load_dataset(path, limits=tight)
        load_dataset(path)  # the defaults admit it
    with pytest.raises(LimitError, match=r"takes this load to .* over the total cap of 500 bytes"):
        load_dataset(files["npz"], limits=Limits(max_array_bytes=400, max_total_bytes=500))
    monkeypatch.setenv("MODALENS_MAX_BYTES", "40")
    with pytest.raises(LimitError, match="MODALENS_MAX_BYTES"):
        load_dataset(files["parquet"])


@pytest.mark.parametrize(
    "label",
    [
        "native:zip-bomb-1.3gb",
        "parquet:dictionary-string-bomb-2gb",
        "mmsa:one-string-shared-5000-times",
        "csd:gzip-bomb-840mb",
    ],
)
def test_decompression_bombs_are_refused_under_the_default_limits(hostile, label, monkeypatch):
    for name in ("MODALENS_MAX_BYTES", "MODALENS_MAX_ARRAY_BYTES", "MODALENS_MAX_EXPANSION"):
        monkeypatch.delenv(name, raising=False)
    path = hostile[1][label].path
    with pytest.raises(LimitError, match=r"more than 200 times its size \(a decompression bomb") as info:
        load_dataset(path)
    assert path.name in str(info.value)


def test_csd_limits_count_every_file_of_a_folder(tmp_path):
    from .helpers import write_corpus

    corpus = write_corpus(tmp_path / "c")
    load_dataset(corpus)
    with pytest.raises(LimitError, match=r"takes this load to \d+ bytes, over the total cap of 300 bytes"):
        load_dataset(corpus, limits=Limits(max_array_bytes=300, max_total_bytes=300))


def test_a_reader_without_limits_is_told(tmp_path):
    from modalens.data.loaders import register_loader

    register_loader("plain-test", lambda p: None, extensions=(".plaintest",))
    try:
        with pytest.raises(DatasetError, match="takes no limits="):
            load_dataset(tmp_path / "x.plaintest", format="plain-test", limits=Limits())
    finally:
        from modalens.data.loaders import FORMATS

        FORMATS.unregister("plain-test")


# -- what is still read --------------------------------------------------------------------------------------------
def test_parquet_with_many_row_groups_and_none_loads(tmp_path):
    path = save_dataset(tiny_dataset(), tmp_path / "t.parquet")
    table = pq.read_table(path)
    pq.write_table(table, tmp_path / "groups.parquet", row_group_size=1)  # each row group its own dictionaries
    pq.write_table(table.slice(0, 0), tmp_path / "empty.parquet")
    from .test_loaders import assert_same

    assert_same(load_dataset(tmp_path / "groups.parquet"), tiny_dataset())
    assert len(load_dataset(tmp_path / "empty.parquet")) == 0
    bad = table.set_column(0, "id", pa.array(["a", "b", "c", None]))
    pq.write_table(bad, tmp_path / "late-null.parquet", row_group_size=2)
    with pytest.raises(DatasetError, match=r"column 'id': null at row 3"):  # the row counts across row groups
        load_dataset(tmp_path / "late-null.parquet")


def test_parquet_variable_length_lists_of_the_declared_shape_load(tmp_path):
    path = save_dataset(tiny_dataset(), tmp_path / "t.parquet")
    table = pq.read_table(path)
    lists = pa.array(table.column("values/text").to_pylist(), pa.list_(pa.list_(pa.float32())))
    table = table.set_column(table.column_names.index("values/text"), "values/text", lists)
    pq.write_table(table, tmp_path / "lists.parquet")
    np.testing.assert_array_equal(
        load_dataset(tmp_path / "lists.parquet")["text"].values, tiny_dataset()["text"].values
    )


def test_pickled_arrays_come_back_as_numpy_unpickles_them():
    arrays = {
        "be": np.arange(6, dtype=">f8").reshape(2, 3),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
        "text": np.array(["a", "bcd"]),
        "bytes": np.array([b"x", b"yz"]),
        "objects": np.array(["a", None, 3, 2.5, b"q"], dtype=object),
        "empty": np.zeros((0, 3), np.float32),
        "scalar": np.float32(1.5),
    }
    for protocol in (2, 3, 4, 5):
        data = pickle.dumps(arrays, protocol=protocol)
        got, want = safe_loads(data), pickle.loads(data)  # numpy's own reconstruction is the reference
        for key in arrays:
            assert type(got[key]) is type(want[key])
            if isinstance(want[key], np.ndarray):
                assert got[key].dtype == want[key].dtype and got[key].shape == want[key].shape
                assert got[key].flags.f_contiguous == want[key].flags.f_contiguous
                assert got[key].flags.writeable == want[key].flags.writeable
                assert got[key].tolist() == want[key].tolist()
            else:
                assert got[key] == want[key] and got[key].dtype == want[key].dtype


def test_dataset_refuses_complex_values_and_null_ids():
    with pytest.raises(DatasetError, match="modality 'a': values must be real numbers, got dtype complex64"):
        Modality("a", "audio", np.ones((2, 1, 1), np.complex64))
    good = Modality("a", "audio", np.ones((2, 1, 1)))
    with pytest.raises(DatasetError, match="labels must be real numbers"):
        MultimodalDataset([good], np.array([1 + 1j, 2]))
    with pytest.raises(DatasetError, match=r"ids\[1\] is missing \(null\)"):
        MultimodalDataset([good], ids=["a", None])
    with pytest.raises(DatasetError, match=r"texts\[0\] is missing \(null\)"):
        MultimodalDataset([good], texts=[None, "x"])

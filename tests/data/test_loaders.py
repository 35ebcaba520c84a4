"""load_dataset / save_dataset: detection, registry, Parquet round trip and bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modalens.data.dataset import DatasetError, MediaColumn, Modality, MultimodalDataset
from modalens.data.loaders import (
    detect_format,
    list_formats,
    load_dataset,
    load_parquet,
    register_loader,
    save_dataset,
)

from .helpers import write_corpus, write_mmsa


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "csd")


def make_dataset(n: int = 5, *, label_kind: str = "regression") -> MultimodalDataset:
    rng = np.random.default_rng(1)
    mask = np.ones((n, 4), bool)
    mask[0, 3] = False
    labels = rng.normal(size=n).astype(np.float32) if label_kind == "regression" else rng.integers(0, 3, n)
    return MultimodalDataset(
        [
            Modality(
                "text",
                "text",
                rng.normal(size=(n, 4, 3)),
                mask=mask,
                words=[["a", "b", "c", ""] if i == 0 else ["w", "x", "y", "z"] for i in range(n)],
            ),
            Modality("audio", "audio", rng.normal(size=(n, 2, 2)), feature_names=["pitch", "energy"]),
            Modality("image", "image", rng.normal(size=(n, 6))),
        ],
        labels,
        label_kind=label_kind,
        ids=[f"clip{i}" for i in range(n)],
        splits=["train"] * (n - 2) + ["test"] * 2,
        texts=[f"utterance {i}" for i in range(n)],
        meta=pd.DataFrame({"speaker": [f"s{i % 2}" for i in range(n)], "age": np.arange(n) * 1.5}),
        class_names=["neg", "neu", "pos"] if label_kind == "classification" else None,
        media={"face": MediaColumn("image/png", [b"\x89PNG" + bytes([i]) if i % 2 else None for i in range(n)])},
        name="tiny",
    )


def assert_same(a: MultimodalDataset, b: MultimodalDataset) -> None:
    assert a.describe() == b.describe()
    for name in a.modality_names:
        np.testing.assert_array_equal(a[name].values, b[name].values)
        np.testing.assert_array_equal(a[name].step_mask(), b[name].step_mask())
        assert a[name].words == b[name].words
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.labels.dtype == b.labels.dtype
    for key in ("ids", "splits", "texts"):
        assert getattr(a, key).tolist() == getattr(b, key).tolist()
    pd.testing.assert_frame_equal(a.meta, b.meta, check_dtype=False)
    assert {k: (c.mime, c.items) for k, c in a.media.items()} == {k: (c.mime, c.items) for k, c in b.media.items()}


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
@pytest.mark.parametrize("label_kind", ["regression", "classification"])
def test_round_trip(tmp_path, suffix, label_kind):
    ds = make_dataset(label_kind=label_kind)
    path = save_dataset(ds, tmp_path / f"tiny{suffix}")
    assert detect_format(path) == {".npz": "native", ".parquet": "parquet"}[suffix]
    assert_same(ds, load_dataset(path))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_parquet_is_plain_table(tmp_path):
    ds = make_dataset()
    path = save_dataset(ds, tmp_path / "t.parquet")
    table = pq.read_table(path)
    assert table.num_rows == 5
    assert table.schema.field("values/text").type == pa.list_(pa.list_(pa.float32(), 3), 4)
    first = np.array(table.column("values/text")[0].as_py(), dtype=np.float32)
    np.testing.assert_array_equal(first, ds["text"].values[0])


def test_detection_by_magic_when_extension_is_unknown(tmp_path, corpus):
    ds = make_dataset()
    (tmp_path / "a.bin").write_bytes(save_dataset(ds, tmp_path / "a.npz").read_bytes())
    (tmp_path / "b.bin").write_bytes(save_dataset(ds, tmp_path / "b.parquet").read_bytes())
    write_mmsa(tmp_path / "c.pkl")
    (tmp_path / "c.bin").write_bytes((tmp_path / "c.pkl").read_bytes())
    (tmp_path / "d.bin").write_bytes((corpus / "covarep.csd").read_bytes())
    assert [detect_format(tmp_path / f"{x}.bin") for x in "abcd"] == ["native", "parquet", "mmsa", "csd"]
    assert len(load_dataset(tmp_path / "c.bin", split="valid")) == 2
    assert_same(ds, load_dataset(tmp_path / "b.bin"))


def test_mmsa_and_csd_through_load_dataset(tmp_path, corpus):
    write_mmsa(tmp_path / "aligned_50.pkl")
    assert load_dataset(tmp_path / "aligned_50.pkl").modality_names == ["text", "audio", "vision"]
    # a folder of csd files: labels and words found by name, the rest are modalities named by stem
    (corpus / "nan.csd").unlink(missing_ok=True)
    ds = load_dataset(corpus)
    assert sorted(ds.modality_names) == ["covarep", "facet"]
    assert ds["covarep"].kind == "audio" and ds["facet"].kind == "vision"
    assert ds.ids.tolist() == ["v1[0]", "v1[1]", "v2[0]"] and ds["covarep"].words[0] == ["hello", "world"]
    one = load_dataset(corpus / "covarep.csd")
    assert one.ids.tolist() == ["v1", "v2"] and one.labels is None
    named = load_dataset(corpus, modalities={"audio": "covarep.csd"}, labels_csd="labels.csd", words_csd="words.csd")
    assert named.modality_names == ["audio"]


def test_unknown_format_lists_supported(tmp_path):
    odd = tmp_path / "data.xyz"
    odd.write_bytes(b"hello there")
    with pytest.raises(DatasetError, match=r"data\.xyz: unknown dataset format.*csd.*mmsa.*native.*parquet"):
        load_dataset(odd)
    with pytest.raises(DatasetError, match=r"unknown dataset format 'hdf'.*supported"):
        load_dataset(odd, format="hdf")
    with pytest.raises(DatasetError, match="no .csd file"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "absent.npz")
    with pytest.raises(DatasetError, match=r"'csd' is read only.*\['mmsa', 'native', 'parquet'\]"):
        save_dataset(make_dataset(), tmp_path / "x.csd", format="csd")


def test_registry(tmp_path):
    from modalens._core.errors import ConfigurationError
    from modalens._core.registry import Registry
    from modalens.data.loaders import FORMATS

    assert isinstance(FORMATS, Registry)  # the one registry helper, shared with methods, extractors, architectures
    assert list_formats() == ["csd", "mmsa", "native", "parquet"]
    assert {f: FORMATS.get(f).save is not None for f in list_formats()} == {
        "csd": False,
        "mmsa": True,  # modalens.data.mmsa_export.save_mmsa
        "native": True,
        "parquet": True,
    }
    with pytest.raises(ConfigurationError, match="already registered"):
        register_loader("native", lambda p: None)
    calls = []

    def load(path, **kwargs):
        calls.append((path.name, kwargs))
        return make_dataset(2)

    from modalens.data import loaders

    try:
        register_loader("tsv-test", load, extensions=(".tsvtest",), description="test only")
        (tmp_path / "x.tsvtest").write_text("a\tb\n")
        assert len(load_dataset(tmp_path / "x.tsvtest", flag=1)) == 2
        assert calls == [("x.tsvtest", {"flag": 1})] and "tsv-test" in list_formats()
    finally:
        if "tsv-test" in loaders.FORMATS:
            loaders.FORMATS.unregister("tsv-test")
    assert "tsv-test" not in list_formats()


def test_parquet_bad_input(tmp_path):
    path = save_dataset(make_dataset(), tmp_path / "t.parquet")
    data = path.read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"cut\.parquet: not a readable Parquet"):
        load_parquet(cut)
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), plain)
    with pytest.raises(DatasetError, match=r"plain\.parquet: not a modalens Parquet dataset"):
        load_parquet(plain)
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["values/audio"]), tmp_path / "nocol.parquet")
    with pytest.raises(DatasetError, match=r"nocol\.parquet: column 'values/audio' is missing"):
        load_parquet(tmp_path / "nocol.parquet")
    # NaN in a modality: the dataset validation message, prefixed with the file
    values = np.array(table.column("values/audio").to_pylist(), dtype=np.float32)
    values[3, 1, 0] = np.nan
    inner = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), 2)
    bad = table.set_column(
        table.column_names.index("values/audio"), "values/audio", pa.FixedSizeListArray.from_arrays(inner, 2)
    )
    pq.write_table(bad, tmp_path / "nan.parquet")
    with pytest.raises(DatasetError, match=r"nan\.parquet: modality 'audio'.*first at index \(3, 1, 0\)"):
        load_parquet(tmp_path / "nan.parquet")
    # wrong [T, D] for the header
    short = pa.FixedSizeListArray.from_arrays(pa.array(values[:, :, :1].reshape(-1)), 1)
    wrong = table.set_column(
        table.column_names.index("values/audio"), "values/audio", pa.FixedSizeListArray.from_arrays(short, 2)
    )
    pq.write_table(wrong, tmp_path / "shape.parquet")
    with pytest.raises(
        DatasetError, match=r"shape\.parquet: column 'values/audio': each step holds 1 features.*\[5, 2, 2\]"
    ):
        load_parquet(tmp_path / "shape.parquet")
    meta = dict(table.schema.metadata)
    meta[b"modalens"] = meta[b"modalens"].replace(b'"format_version": 1', b'"format_version": 9')
    pq.write_table(table.replace_schema_metadata(meta), tmp_path / "v9.parquet")
    with pytest.raises(DatasetError, match="format version 9 unsupported"):
        load_parquet(tmp_path / "v9.parquet")


def test_pickle_extension_never_unpickles_unsafely(tmp_path):
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(DatasetError, match="refusing to load global"):
        load_dataset(tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned").exists()

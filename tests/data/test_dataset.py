"""MultimodalDataset / Modality validation and the native .npz format."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest

from modalens.data import native
from modalens.data.dataset import DatasetError, MediaColumn, Modality, MultimodalDataset

from .test_loaders import assert_same, make_dataset


def test_modality_shapes_and_defaults():
    m = Modality("tab", "tabular", np.arange(6, dtype=np.int32).reshape(2, 3))
    assert m.shape == (2, 1, 3) and m.values.dtype == np.float32
    assert m.feature_names == ["f0", "f1", "f2"]
    np.testing.assert_array_equal(m.step_mask(), np.ones((2, 1), bool))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"values": np.zeros((2, 3, 4, 5))}, r"modality 'x': values must be \[N, T, D\].*\(2, 3, 4, 5\)"),
        ({"values": np.zeros(3)}, r"values must be \[N, T, D\]"),
        ({"values": np.array([["a"]])}, "values must be numeric"),
        ({"kind": "smell"}, "kind must be one of"),
        ({"name": ""}, "name must be a non-empty string"),
        ({"mask": np.ones((2, 4), bool)}, r"mask must have shape \(2, 3\), got \(2, 4\)"),
        ({"feature_names": ["a", "b"]}, "2 feature_names for D = 4"),
        ({"feature_names": ["a", "a", "b", "c"]}, "feature_names must be unique"),
        ({"words": [["a"]]}, "words must hold N = 2 token lists"),
        ({"words": [["a"] * 4, ["b"]]}, r"words\[0\] has 4 tokens for T = 3"),
    ],
)
def test_modality_errors_name_the_field(kwargs, pattern):
    args = {"name": "x", "kind": "text", "values": np.zeros((2, 3, 4))} | kwargs
    with pytest.raises(DatasetError, match=pattern):
        Modality(**args)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_values_report_count_and_index(bad):
    values = np.zeros((3, 2, 2))
    values[2, 1, 0] = bad
    values[2, 1, 1] = bad
    with pytest.raises(DatasetError, match=r"modality 'a'.*2 NaN/inf entries, first at index \(2, 1, 0\)"):
        Modality("a", "audio", values)


def test_words_are_padded_to_steps():
    m = Modality("t", "text", np.zeros((1, 3, 1)), words=[["hi", "there"]])
    assert m.words == [["hi", "there", ""]]


def _mods(n: int = 3) -> list[Modality]:
    return [Modality("a", "audio", np.zeros((n, 2, 1))), Modality("v", "vision", np.ones((n, 1, 2)))]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"modalities": []}, "at least one modality"),
        ({"modalities": [Modality("a", "audio", np.zeros((3, 1, 1)))] * 2}, "modality names must be unique"),
        (
            {"modalities": [Modality("a", "audio", np.zeros((3, 1, 1))), Modality("b", "audio", np.zeros((2, 1, 1)))]},
            "modality 'b' has N = 2 instances, modality 'a' has 3",
        ),
        ({"ids": ["x", "y", "x"]}, "ids must be unique"),
        ({"ids": ["x", "y"]}, "ids must hold N = 3 entries, got 2"),
        ({"splits": ["train"]}, "splits must hold N = 3"),
        ({"labels": [1.0, 2.0]}, r"labels must have shape \(3,\), got \(2,\)"),
        ({"labels": [1.0, np.nan, 2.0]}, "labels must be finite; 1 NaN/inf"),
        ({"labels": ["a", "b", "c"]}, "labels must be numeric"),
        ({"labels": [0.5, 1.0, 2.0], "label_kind": "classification"}, "whole numbers"),
        ({"labels": [0, 1, 2], "label_kind": "ordinal"}, "label_kind must be"),
        ({"meta": pd.DataFrame({"x": [1]})}, "meta must be a DataFrame with N = 3 rows"),
        ({"media": {"face": MediaColumn("image/png", [None])}}, "media 'face' must hold N = 3 items"),
    ],
)
def test_dataset_errors_name_the_field(kwargs, pattern):
    args = {"modalities": _mods()} | kwargs
    with pytest.raises(DatasetError, match=pattern):
        MultimodalDataset(**args)


def test_label_kinds_are_inferred_and_cast():
    reg = MultimodalDataset(_mods(), [0.5, -1.0, 2.0])
    assert reg.label_kind == "regression" and reg.labels.dtype == np.float32
    cls = MultimodalDataset(_mods(), np.array([0, 2, 1]))
    assert cls.label_kind == "classification" and cls.labels.dtype == np.int64
    whole = MultimodalDataset(_mods(), np.array([[0.0], [1.0], [1.0]]), label_kind="classification")
    assert whole.labels.tolist() == [0, 1, 1]
    assert MultimodalDataset(_mods()).labels is None and MultimodalDataset(_mods()).ids.tolist() == ["0", "1", "2"]


def test_take_split_select_and_media():
    ds = make_dataset(5)
    sub = ds.take([4, 1])
    assert sub.ids.tolist() == ["clip4", "clip1"]
    np.testing.assert_array_equal(sub["text"].values, ds["text"].values[[4, 1]])
    assert sub.media["face"].items == [None, ds.media["face"].items[1]]
    assert sub.meta["speaker"].tolist() == ["s0", "s1"] and sub.meta.index.tolist() == [0, 1]
    assert sub["text"].words == [ds["text"].words[4], ds["text"].words[1]]
    boolean = ds.take(np.array([True, False, False, False, True]))
    assert boolean.ids.tolist() == ["clip0", "clip4"]
    np.testing.assert_array_equal(boolean["text"].mask[0], [True, True, True, False])
    test = ds.split("test")
    assert test.ids.tolist() == ["clip3", "clip4"] and set(test.splits) == {"test"}
    with pytest.raises(DatasetError, match=r"no split 'dev'; it has \['test', 'train'\]"):
        ds.split("dev")
    with pytest.raises(DatasetError, match="has no splits"):
        MultimodalDataset(_mods()).split("train")
    two = ds.select_modalities(["image", "text"])
    assert two.modality_names == ["image", "text"] and len(two) == 5
    with pytest.raises(KeyError, match=r"no modality 'smell'"):
        ds.select_modalities(["smell"])
    assert ds.media["face"].extension == "png" and MediaColumn("x/unknown", []).extension == "bin"
    arrays, masks = ds.arrays([0, 1]), ds.masks(slice(0, 2))
    assert arrays["audio"].shape == (2, 2, 2) and masks["image"].shape == (2, 1)
    desc = ds.describe()
    assert desc["splits"] == ["test", "train"] and desc["modalities"][0]["has_words"]


def test_native_round_trip(tmp_path):
    ds = make_dataset(5, label_kind="classification")
    path = native.save_dataset(ds, tmp_path / "sub" / "d.npz")
    assert_same(ds, native.load_dataset(path))
    with np.load(path, allow_pickle=False) as archive:  # readable without pickle
        assert "values/text" in archive.files and archive["values/text"].dtype == np.float32


def test_native_truncated_and_corrupt(tmp_path):
    path = native.save_dataset(make_dataset(), tmp_path / "d.npz")
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"cut\.npz: .*(not a readable|corrupt or truncated)"):
        native.load_dataset(cut)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"garbage" * 10)
    with pytest.raises(DatasetError, match=r"junk\.npz: not a readable modalens \.npz"):
        native.load_dataset(junk)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(2))
    with pytest.raises(DatasetError, match=r"other\.npz: not a modalens dataset"):
        native.load_dataset(other)
    # drop one entry from a valid archive: the missing entry is named
    gap = tmp_path / "gap.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(gap, "w") as dst:
        for item in src.infolist():
            if item.filename != "values/audio.npy":
                dst.writestr(item, src.read(item.filename))
    with pytest.raises(DatasetError, match=r"gap\.npz: entry 'values/audio' is missing"):
        native.load_dataset(gap)
    with pytest.raises(DatasetError, match="no such file"):
        native.load_dataset(tmp_path / "absent.npz")


def test_corrupt_member_through_load_dataset(tmp_path):
    from modalens.data.loaders import load_dataset

    path = native.save_dataset(make_dataset(50), tmp_path / "d.npz")
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("values/text.npy")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)  # local header, then deflate data
    middle = start + info.compress_size // 2
    data[middle : middle + 16] = bytes(16)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"bad\.npz: .*corrupt"):
        load_dataset(bad)

"""MMSA pickle loader: fixtures in the MMSA layout, known masks/words/labels, and every bad-input case."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from modalens.data.dataset import DatasetError
from modalens.data.mmsa import COVAREP_FEATURES, load_mmsa, trim_zero_mask
from modalens.data.safe_pickle import UnsafePickleError

from .helpers import SIZES
from .helpers import write_mmsa as _write


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_aligned_file_loads_with_known_masks_words_and_labels(tmp_path, protocol):
    path = tmp_path / "MOSI" / "aligned_50.pkl"
    path.parent.mkdir()
    data = _write(path, aligned=True, protocol=protocol)
    ds = load_mmsa(path)
    assert len(ds) == sum(SIZES.values())
    assert ds.name == "MOSI/aligned_50"
    assert ds.modality_names == ["text", "audio", "vision"]
    assert ds.splits.tolist() == ["train"] * 4 + ["valid"] * 2 + ["test"] * 3
    assert ds.ids[0] == "vid0$_$0" and ds.ids[4] == "vid4$_$0"
    assert ds.label_kind == "regression"
    np.testing.assert_allclose(ds.labels[4:6], data["valid"]["regression_labels"])
    assert ds.texts[1] == data["train"]["raw_text"][1]
    # text mask from text_bert; audio/vision masks from front zero padding: k real steps at the end.
    for i in range(len(ds)):
        k = len(ds.texts[i].split())
        np.testing.assert_array_equal(ds["text"].mask[i], np.arange(6) < k + 2)
        np.testing.assert_array_equal(ds["audio"].mask[i], np.arange(6) >= 6 - k)
        np.testing.assert_array_equal(ds["vision"].mask[i], np.arange(6) >= 6 - k)
        # words sit between [CLS] and [SEP]
        assert ds["text"].words[i][1 : k + 1] == ds.texts[i].split()
        assert ds["text"].words[i][0] == "" and ds["text"].words[i][k + 1 :] == [""] * (5 - k)
    assert ds.meta["words_aligned"].all()
    assert ds["audio"].feature_names == list(COVAREP_FEATURES) and ds["audio"].kind == "audio"
    assert ds["vision"].feature_names[:2] == ["vision_0", "vision_1"]
    assert {"classification_labels", "annotations"} <= set(ds.meta.columns)
    assert ds.meta["annotations"].tolist()[:2] == ["Negative", "Positive"]
    np.testing.assert_array_equal(ds["audio"].values[:4], data["train"]["audio"])


def test_unaligned_file_masks_come_from_lengths(tmp_path):
    path = tmp_path / "unaligned_50.pkl"
    data = _write(path, aligned=False)
    ds = load_mmsa(path, split="test")
    assert len(ds) == 3 and set(ds.splits) == {"test"}
    lengths = data["test"]["audio_lengths"]
    np.testing.assert_array_equal(ds["audio"].mask.sum(1), lengths)
    np.testing.assert_array_equal(ds["vision"].mask.sum(1), data["test"]["vision_lengths"])
    assert ds["audio"].values.shape == (3, 8, 74) and ds["vision"].values.shape == (3, 7, 35)
    assert "audio_lengths" not in ds.meta.columns


def test_construction_errors_carry_the_file_name(tmp_path):
    path = tmp_path / "frac.pkl"
    _write(path)
    with pytest.raises(DatasetError, match=r"frac\.pkl: classification labels must be whole numbers"):
        load_mmsa(path, label_kind="classification")


def test_classification_labels_and_modality_subset(tmp_path):
    path = tmp_path / "a.pkl"
    data = _write(path)
    ds = load_mmsa(path, modalities=("audio",), label_field="classification_labels", split="train")
    assert ds.modality_names == ["audio"] and ds.label_kind == "classification"
    assert ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.labels, data["train"]["classification_labels"].astype(int))


def test_words_left_out_where_alignment_is_ambiguous(tmp_path):
    path = tmp_path / "a.pkl"

    def edit(data):
        data["train"]["raw_text"][0] = "one two three four five six seven"  # 7 tokens, 3 real steps

    _write(path, edit=edit)
    ds = load_mmsa(path, split="train")
    assert not ds.meta["words_aligned"][0] and ds.meta["words_aligned"][1:].all()
    assert ds["text"].words[0] == [""] * 6
    assert load_mmsa(path, split="train", words=None)["text"].words is None


def test_nonfinite_is_refused_or_zeroed(tmp_path):
    path = tmp_path / "inf.pkl"

    def edit(data):
        data["valid"]["audio"][1, 2, 3] = -np.inf
        data["valid"]["audio"][0, 0, 0] = np.nan

    _write(path, edit=edit)
    with pytest.raises(DatasetError) as info:
        load_mmsa(path)
    msg = str(info.value)
    assert "inf.pkl" in msg and "'valid'" in msg and "'audio'" in msg and "(0, 0, 0)" in msg and "nonfinite" in msg
    ds = load_mmsa(path, nonfinite="zero")
    assert ds.load_report["nonfinite_replaced"] == {"text": 0, "audio": 2, "vision": 0}
    assert ds["audio"].values[5, 2, 3] == 0.0 and np.isfinite(ds["audio"].values).all()


def _broken(tmp_path, edit):
    path = tmp_path / "broken.pkl"
    _write(path, edit=edit)
    return path


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda d: d["test"].pop("vision"), r"split 'test'.*missing field 'vision'"),
        (lambda d: d["train"].pop("regression_labels"), r"split 'train'.*missing field 'regression_labels'"),
        (
            lambda d: d["valid"].update(audio=d["valid"]["audio"][:, :, 0]),
            r"'valid' field 'audio'.*expected shape \[N=2, T, D\]",
        ),
        (
            lambda d: d["valid"].update(audio=d["valid"]["audio"][:1]),
            r"'valid' field 'audio'.*expected shape \[N=2, T, D\]",
        ),
        (
            lambda d: d["test"].update(vision=d["test"]["vision"][:, :, :5]),
            r"'vision' has different \[T, D\] across splits",
        ),
        (lambda d: d["train"].update(audio=np.array([["a"]] * 4, dtype=object)), r"'train' field 'audio'.*numeric"),
        (lambda d: d["train"].update(regression_labels=np.zeros((4, 2))), r"'regression_labels'.*\[N\] or \[N, 1\]"),
        (lambda d: d["train"].update(id=d["valid"]["id"].tolist()), r"'train' field 'id'.*expected \[N=4\]"),
        (lambda d: d["test"].update(id=d["train"]["id"][:3]), r"'id' must be unique across splits"),
        (lambda d: d["test"].update(text_bert=d["test"]["text_bert"][:, :2]), r"'text_bert'.*\[N=3, 3, 6\]"),
        (lambda d: d.update(train=[1, 2]), r"split 'train' must be a dict"),
    ],
)
def test_bad_input_names_file_split_field(tmp_path, edit, pattern):
    path = _broken(tmp_path, edit)
    with pytest.raises(DatasetError, match=pattern) as info:
        load_mmsa(path)
    assert "broken.pkl" in str(info.value)


def test_bad_lengths_and_missing_split(tmp_path):
    path = tmp_path / "u.pkl"

    def edit(data):
        data["train"]["audio_lengths"][2] = 99

    _write(path, aligned=False, edit=edit)
    with pytest.raises(DatasetError, match=r"u\.pkl.*'train' field 'audio_lengths'.*lengths in \[0, 8\]"):
        load_mmsa(path)
    with pytest.raises(DatasetError, match=r"no split 'dev'.*'train', 'valid', 'test'"):
        load_mmsa(path, split="dev")
    # text_field="text_bert" loads token ids now (tests/data/test_mmsa_text_bert.py); this file is broken elsewhere
    with pytest.raises(DatasetError, match="audio_lengths"):
        load_mmsa(path, text_field="text_bert")


def test_not_a_dict_truncated_and_hostile(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DatasetError, match="expected a dict of splits"):
        load_mmsa(path)
    good = tmp_path / "good.pkl"
    _write(good)
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(DatasetError, match=r"cut\.pkl.*(truncated|not a readable)"):
        load_mmsa(cut)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(
        b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94."
    )
    with pytest.raises(UnsafePickleError, match="posix.system"):
        load_mmsa(evil)


def test_trim_zero_mask_keeps_interior_zero_steps():
    values = np.zeros((3, 5, 2), dtype=np.float32)
    values[0, [1, 3]] = 1.0  # interior zero at step 2 stays real
    values[1, 4] = -2.0
    mask = trim_zero_mask(values)
    np.testing.assert_array_equal(mask[0], [False, True, True, True, False])
    np.testing.assert_array_equal(mask[1], [False, False, False, False, True])
    np.testing.assert_array_equal(mask[2], [False] * 5)

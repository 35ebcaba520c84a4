"""CMU-SDK computational sequences: fixtures written with h5py in the SDK's layout, known alignments, bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modalens.data.csd import OVERLAP_EPSILON, load_csd, read_csd
from modalens.data.dataset import DatasetError

from .helpers import audio_frames as _audio
from .helpers import vision_frames as _vision
from .helpers import write_corpus, write_csd


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path)


def _load(corpus, **kwargs):
    kwargs.setdefault("labels_csd", corpus / "labels.csd")
    kwargs.setdefault("words_csd", corpus / "words.csd")
    return load_csd({"audio": corpus / "covarep.csd", "vision": corpus / "facet.csd"}, **kwargs)


def test_word_alignment_known_values(corpus):
    ds = _load(corpus, splits={"train": ["v1"], "test": ["v2"]})
    assert ds.ids.tolist() == ["v1[0]", "v1[1]", "v2[0]"]
    np.testing.assert_allclose(ds.labels, [1.5, -2.0, 0.5])
    assert ds.splits.tolist() == ["train", "train", "test"]
    assert ds.texts.tolist() == ["hello world", "good bye", "so fine"]  # 'sp' dropped, words split by segment
    audio, vision = ds["audio"], ds["vision"]
    assert audio.kind == "audio" and vision.kind == "vision"
    assert audio.feature_names == ["start_s", "twice_start_s"]  # from the metadata's dimension names
    assert vision.feature_names == ["vision_0"]
    assert audio.words[0] == ["hello", "world"] and audio.words[1] == ["good", "bye"]
    # hello [0, 1): audio frames starting 0 and 0.5 inside -> mean start 0.25; world [1.5, 2.5) -> 1.75
    np.testing.assert_allclose(audio.values[0, :, 0], [0.25, 1.75])
    np.testing.assert_allclose(audio.values[0, :, 1], [0.5, 3.5])
    np.testing.assert_allclose(audio.values[1, :, 0], [3.25, 4.25])
    # vision frames of 0.4 s: hello [0, 1) overlaps frames 0, 1 fully and frame 2 by 0.2 -> (0 + 0.4 + 0.4) / 1.0
    assert vision.values[0, 0, 0] == pytest.approx(0.8)
    # bye [4, 5) lies after the last vision frame (ends at 4.0): zeros and masked out
    np.testing.assert_array_equal(vision.mask[1], [True, False])
    assert vision.values[1, 1, 0] == 0.0
    np.testing.assert_array_equal(audio.mask, [[True, True], [True, True], [True, True]])
    assert ds.meta["video"].tolist() == ["v1", "v1", "v2"] and ds.meta["end"].tolist() == [2.6, 5.0, 2.0]


def test_uniform_weighting_matches_the_sdk_average(corpus):
    ds = _load(corpus, weighting="uniform")
    # hello [0, 1) overlaps vision frames 0, 1, 2 (the last by 0.2 s): plain mean (0 + 1 + 2) / 3
    assert ds["vision"].values[0, 0, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(ds["audio"].values[0, :, 0], [0.25, 1.75])  # frames wholly inside: same as overlap
    with pytest.raises(DatasetError, match="weighting must be"):
        _load(corpus, weighting="median")


def _reference_align(feats, ivals, word_ivals):
    out = []
    for ws, we in word_ivals:
        acc, tot = np.zeros(feats.shape[1]), 0.0
        for f, (fs, fe) in zip(feats, ivals, strict=True):
            w = min(fe, we) - max(fs, ws)
            w = w if w > OVERLAP_EPSILON else 0.0  # the SDK's rule: overlaps of 1e-5 s or less do not count
            acc += w * f
            tot += w
        out.append(acc / tot if tot else np.zeros(feats.shape[1]))
    return np.array(out)


def test_alignment_matches_a_loop_on_random_intervals(tmp_path):
    rng = np.random.default_rng(3)
    edges = np.sort(rng.uniform(0, 10, 40))
    frames = np.stack([edges[:-1], edges[1:]], axis=1)
    feats = rng.normal(size=(len(frames), 3)).astype(np.float32)
    wedges = np.sort(rng.uniform(0.5, 9.5, 13))
    word_ivals = np.stack([wedges[:-1:2], wedges[1::2]], axis=1)
    tokens = np.array([[f"t{i}".encode()] for i in range(len(word_ivals))])
    write_csd(tmp_path / "a.csd", "A", {"v": (feats, frames)})
    write_csd(tmp_path / "w.csd", "W", {"v": (tokens, word_ivals)})
    ds = load_csd({"audio": tmp_path / "a.csd"}, words_csd=tmp_path / "w.csd")
    assert ds.ids.tolist() == ["v"] and ds.labels is None
    np.testing.assert_allclose(ds["audio"].values[0], _reference_align(feats, frames, word_ivals), rtol=1e-5, atol=1e-6)


def test_unaligned_frames_per_segment(corpus):
    ds = _load(corpus, align_to=None)
    audio = ds["audio"]
    # segment v1[0] = [0, 2.6): audio frames starting 0 .. 2.5 overlap -> 6 frames; v2[0] = [0, 2) -> 4
    np.testing.assert_array_equal(audio.mask.sum(1), [6, 5, 4])
    np.testing.assert_allclose(audio.values[0, :6, 0], [0, 0.5, 1, 1.5, 2, 2.5])
    assert audio.words is None and ds.texts.tolist() == ["hello world", "good bye", "so fine"]


def test_whole_videos_without_labels(corpus):
    ds = load_csd({"audio": corpus / "covarep.csd"}, align_to=None)
    assert ds.ids.tolist() == ["v1", "v2"] and ds.labels is None
    np.testing.assert_array_equal(ds["audio"].mask.sum(1), [10, 4])


def test_label_column_and_classification(corpus):
    ds = _load(corpus, label_column=1, label_kind="classification")
    assert ds.label_kind == "classification" and ds.labels.tolist() == [0, 1, 1]
    with pytest.raises(DatasetError, match=r"labels\.csd: classification labels must be whole numbers"):
        _load(corpus, label_column=0, label_kind="classification")
    with pytest.raises(DatasetError, match="label_column 5 out of range"):
        _load(corpus, label_column=5)


def test_missing_video_error_or_drop(corpus):
    write_csd(corpus / "facet1.csd", "FACET", {"v1": _vision()})
    kwargs = {"labels_csd": corpus / "labels.csd", "words_csd": corpus / "words.csd"}
    with pytest.raises(DatasetError, match=r"video 'v2'.*missing from .*facet1\.csd.*missing='drop'"):
        load_csd({"audio": corpus / "covarep.csd", "vision": corpus / "facet1.csd"}, **kwargs)
    with pytest.warns(UserWarning, match="dropping 1 videos"):
        ds = load_csd({"audio": corpus / "covarep.csd", "vision": corpus / "facet1.csd"}, missing="drop", **kwargs)
    assert ds.ids.tolist() == ["v1[0]", "v1[1]"]


def test_bad_files_are_named(corpus):
    audio, ivals = _audio()
    write_csd(corpus / "nan.csd", "X", {"v1": (np.where(audio > 4, np.nan, audio), ivals)})
    with pytest.raises(
        DatasetError, match=r"nan\.csd: video 'v1' field 'features'.*NaN/inf.*first at index \(5, 1\).*nonfinite='zero'"
    ):
        read_csd(corpus / "nan.csd")
    assert np.isfinite(read_csd(corpus / "nan.csd", nonfinite="zero").features["v1"]).all()

    write_csd(corpus / "shape.csd", "X", {"v1": (audio, ivals[:, :1])})
    with pytest.raises(DatasetError, match=r"shape\.csd: video 'v1' field 'intervals': expected shape \[T=10, 2\]"):
        read_csd(corpus / "shape.csd")
    write_csd(corpus / "back.csd", "X", {"v1": (audio, ivals[:, ::-1])})
    with pytest.raises(DatasetError, match="end >= start"):
        read_csd(corpus / "back.csd")
    write_csd(corpus / "width.csd", "X", {"v1": (audio, ivals), "v2": (audio[:, :1], ivals)})
    with pytest.raises(DatasetError, match=r"width\.csd: video 'v\d' field 'features': expected D = \d"):
        read_csd(corpus / "width.csd")
    write_csd(corpus / "cube.csd", "X", {"v1": (audio[:, :, None], ivals)})
    with pytest.raises(DatasetError, match=r"expected shape \[T, D\]"):
        read_csd(corpus / "cube.csd")
    with h5py.File(corpus / "noroot.csd", "w") as f:
        f.create_group("a")
    with pytest.raises(DatasetError, match=r"noroot\.csd: expected one root group"):
        read_csd(corpus / "noroot.csd")
    data = (corpus / "covarep.csd").read_bytes()
    (corpus / "cut.csd").write_bytes(data[: len(data) // 3])
    with pytest.raises(DatasetError, match=r"cut\.csd: .*(truncated|unreadable)"):
        read_csd(corpus / "cut.csd")
    (corpus / "text.csd").write_text("not hdf5")
    with pytest.raises(DatasetError, match=r"text\.csd: not a readable HDF5"):
        read_csd(corpus / "text.csd")
    with pytest.raises(DatasetError, match="no such file"):
        read_csd(corpus / "absent.csd")


def test_bad_arguments(corpus):
    with pytest.raises(DatasetError, match="needs words_csd"):
        load_csd({"audio": corpus / "covarep.csd"})
    with pytest.raises(DatasetError, match="align_to"):
        load_csd({"audio": corpus / "covarep.csd"}, align_to="phones")
    with pytest.raises(DatasetError, match="at least one modality"):
        load_csd({})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edges=st.lists(st.floats(0, 20, allow_nan=False), min_size=2, max_size=30, unique=True),
    words=st.lists(st.tuples(st.floats(0, 19, allow_nan=False), st.floats(0.05, 3)), min_size=1, max_size=8),
    seed=st.integers(0, 10_000),
)
def test_aligned_values_are_convex_combinations(tmp_path_factory, edges, words, seed):
    # Property: every aligned step is a weighted mean of overlapping frames, so it lies between their min and max;
    # a constant feature stays that constant wherever the mask is True.
    folder = tmp_path_factory.mktemp("prop")
    edges = np.sort(np.array(edges))
    frames = np.stack([edges[:-1], edges[1:]], axis=1)
    rng = np.random.default_rng(seed)
    feats = np.concatenate([rng.normal(size=(len(frames), 1)), np.full((len(frames), 1), 7.0)], axis=1)
    word_ivals = np.array(sorted((a, a + d) for a, d in words))
    write_csd(folder / "a.csd", "A", {"v": (feats.astype(np.float32), frames)})
    write_csd(folder / "w.csd", "W", {"v": (np.array([[b"x"]] * len(word_ivals)), word_ivals)})
    ds = load_csd({"audio": folder / "a.csd"}, words_csd=folder / "w.csd")
    values, mask = ds["audio"].values[0], ds["audio"].mask[0]
    assert ds["audio"].words[0].count("x") == len(word_ivals)  # a whole-video instance keeps every word
    overlaps = [
        np.any(np.minimum(frames[:, 1], we) - np.maximum(frames[:, 0], ws) > OVERLAP_EPSILON) for ws, we in word_ivals
    ]
    assert mask.tolist() == overlaps
    np.testing.assert_allclose(values[mask, 1], 7.0, rtol=1e-6)
    assert (values[mask, 0] >= feats[:, 0].min() - 1e-5).all() and (values[mask, 0] <= feats[:, 0].max() + 1e-5).all()
    assert (values[~mask] == 0).all()

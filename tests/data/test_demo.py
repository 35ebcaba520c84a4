"""The embedded demo dataset: the committed file, its documented structure, and the known answers its roles imply."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modalens.data.dataset import DatasetError
from modalens.data.demo import DEMO_PATH, ROLES, demo_build_info, load_demo

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def demo():
    return load_demo()


@pytest.fixture(scope="module")
def builder():
    """The builder's pure pieces (they need only numpy/pandas/scipy to import)."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        import build_demo_data
        from demo_data import roles, speech, text

        yield {"build": build_demo_data, "roles": roles, "speech": speech, "text": text}
    finally:
        sys.path.remove(str(SCRIPTS))


def _word_mean(modality, feature: str, *, where: np.ndarray | None = None) -> np.ndarray:
    """Per-instance mean of one feature over real steps (and, optionally, a further step condition)."""
    k = modality.feature_names.index(feature)
    keep = modality.step_mask() if where is None else modality.step_mask() & where
    vals = np.where(keep, modality.values[..., k], np.nan)
    return np.nanmean(vals, axis=1)


# -- the committed file ---------------------------------------------------------------------------------------------


def test_file_is_committed_and_small():
    assert DEMO_PATH.is_file()
    assert DEMO_PATH.stat().st_size < 25 * 2**20


def test_structure(demo):
    assert len(demo) >= 2000
    assert demo.modality_names == ["text", "audio", "vision"]
    assert [demo[m].kind for m in demo.modality_names] == ["text", "audio", "vision"]
    assert demo.label_kind == "regression"
    steps = demo["text"].values.shape[1]
    for m in demo.modality_names:
        assert demo[m].values.shape[:2] == (len(demo), steps)
        # audio and vision are aligned to the words: same real steps as the text
        np.testing.assert_array_equal(demo[m].step_mask(), demo["text"].step_mask())
    words = np.asarray(demo["text"].words)
    np.testing.assert_array_equal(words != "", demo["text"].step_mask())
    assert all(" ".join(w for w in row if w) == t for row, t in zip(words, demo.texts, strict=True))


def test_feature_names(demo):
    audio = demo["audio"].feature_names
    assert audio[:4] == ["F0", "VUV", "energy_db", "word_duration"]
    assert audio[4:] == [f"MCEP_{k}" for k in range(25)]
    assert demo["vision"].feature_names[:7] == ["Anger", "Disgust", "Fear", "Joy", "Sadness", "Surprise", "Neutral"]
    assert demo["text"].feature_names[0] == "vader_valence"


def test_labels_follow_corpus_label(demo):
    labels, meta = demo.labels, demo.meta
    assert labels.min() >= -3 and labels.max() <= 3
    assert (labels[meta["corpus_label"] == "positive"] > 0).all()
    assert (labels[meta["corpus_label"] == "negative"] < 0).all()
    assert (np.abs(labels[meta["corpus_label"] == "neutral"]) <= 0.5).all()
    shares = meta["corpus_label"].value_counts(normalize=True)
    assert shares["positive"] == pytest.approx(0.4, abs=0.01)
    assert shares["neutral"] == pytest.approx(0.2, abs=0.01)


def test_splits(demo):
    counts = pd.Series(demo.splits).value_counts(normalize=True)
    assert set(counts.index) == {"train", "valid", "test"}
    assert counts["train"] == pytest.approx(0.60, abs=0.01)
    assert counts["valid"] == pytest.approx(0.15, abs=0.01)
    assert counts["test"] == pytest.approx(0.25, abs=0.01)
    assert len(set(demo.ids)) == len(demo)


def test_roles_and_expressed_polarity(demo):
    meta = demo.meta
    opposite = {"positive": "negative", "negative": "positive"}
    for m in ("audio", "vision"):
        roles = meta[f"{m}_role"]
        assert set(roles) == set(ROLES)
        rates = roles.value_counts(normalize=True)
        assert rates["agree"] == pytest.approx(0.5, abs=0.04)
        assert rates["contradict"] == pytest.approx(0.25, abs=0.04)
        expressed, label = meta[f"{m}_expressed"], meta["label_polarity"]
        assert (expressed[roles == "agree"] == label[roles == "agree"]).all()
        assert (expressed[roles == "neutral"] == "neutral").all()
        contra = (roles == "contradict") & (label != "neutral")
        assert (expressed[contra] == label[contra].map(opposite)).all()
        assert (expressed[(roles == "contradict") & (label == "neutral")] != "neutral").all()
    assert (meta["face_polarity"] == meta["vision_expressed"]).all()


def test_audio_prosody_follows_role(demo):
    """Known answer: agreeing speech is higher, faster and louder for positive than negative labels; contradicting
    speech is the reverse."""
    audio, meta = demo["audio"], demo.meta
    voiced = audio.values[..., audio.feature_names.index("VUV")] > 0.5
    f0 = _word_mean(audio, "F0", where=voiced)
    duration = _word_mean(audio, "word_duration")
    energy = _word_mean(audio, "energy_db")
    for role, sign in (("agree", 1), ("contradict", -1)):
        pos = ((meta["audio_role"] == role) & (meta["label_polarity"] == "positive")).to_numpy()
        neg = ((meta["audio_role"] == role) & (meta["label_polarity"] == "negative")).to_numpy()
        assert sign * (np.nanmean(f0[pos]) - np.nanmean(f0[neg])) > 30  # Hz
        assert sign * (np.mean(duration[neg]) - np.mean(duration[pos])) > 0.03  # s per word
        assert sign * (np.mean(energy[pos]) - np.mean(energy[neg])) > 1  # dB
    neutral = (meta["audio_role"] == "neutral").to_numpy()
    by_label = [np.nanmean(f0[neutral & (meta["label_polarity"] == p).to_numpy()]) for p in ("positive", "negative")]
    assert abs(by_label[0] - by_label[1]) < 15  # neutral speech does not reveal the label


def test_face_expression_follows_role(demo):
    """Known answer: the network's Joy is higher on agreeing faces of positive than of negative utterances."""
    vision, meta = demo["vision"], demo.meta
    joy, sadness = _word_mean(vision, "Joy"), _word_mean(vision, "Sadness")
    for role, sign in (("agree", 1), ("contradict", -1)):
        pos = ((meta["vision_role"] == role) & (meta["label_polarity"] == "positive")).to_numpy()
        neg = ((meta["vision_role"] == role) & (meta["label_polarity"] == "negative")).to_numpy()
        assert sign * (joy[pos].mean() - joy[neg].mean()) > 0.4
        assert sign * (sadness[neg].mean() - sadness[pos].mean()) > 0.0
    probs = vision.values[..., :7][vision.step_mask()]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def test_text_valence_is_vader_lexicon(demo):
    """Known answer: the ``vader_valence`` of a word is its VADER lexicon value (love 3.2, hate -2.7)."""
    text = demo["text"]
    words = np.asarray(text.words)
    valence = text.values[..., 0]
    for word, value in (("love", 3.2), ("hate", -2.7)):
        hits = np.char.lower(words) == word
        assert hits.any()
        np.testing.assert_allclose(valence[hits], value, atol=1e-5)
    assert (valence[~text.step_mask()] == 0).all()


def test_word_durations_fill_the_speech(demo):
    audio, meta = demo["audio"], demo.meta
    total = np.where(audio.step_mask(), audio.values[..., audio.feature_names.index("word_duration")], 0).sum(axis=1)
    seconds = meta["speech_seconds"].to_numpy()
    assert (total <= seconds + 1e-3).all()
    assert (total >= 0.7 * seconds).all()


def test_media(demo):
    faces, clips = demo.media["face"], demo.media["speech"]
    assert faces.mime == "image/png" and clips.mime == "audio/ogg"
    assert all(item is not None and item[:8] == b"\x89PNG\r\n\x1a\n" for item in faces.items)
    has_clip = np.array([c is not None for c in clips.items])
    np.testing.assert_array_equal(has_clip, demo.splits == "test")
    assert all(c[:4] == b"OggS" for c in clips.items if c is not None)


def test_build_info_matches_file(demo):
    info = demo_build_info()
    assert info["n"] == len(demo)
    assert info["bytes"] == DEMO_PATH.stat().st_size
    assert info["splits"] == {s: int((demo.splits == s).sum()) for s in ("train", "valid", "test")}


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(DatasetError, match="nope.npz"):
        load_demo(missing)


# -- the builder's pure pieces --------------------------------------------------------------------------------------


def test_clean_words(builder):
    clean = builder["text"].clean_words
    assert clean("@bob I LOVE this!! http://t.co/x #happy") == ["I", "LOVE", "this", "happy"]
    assert clean("caf\xe9 2015 -- ok...") == ["caf", "ok"]


def test_sentiment_score(builder):
    score = builder["text"].sentiment_score
    assert score("positive", 1.0, 1.0) == 3.0
    assert score("negative", 1.0, -1.0) == -3.0
    assert score("positive", 0.0, -0.9) == 0.5  # VADER disagreeing never flips the human label
    assert score("neutral", 0.7, 0.6) == 0.3


def test_assign_roles_rates_and_seed(builder):
    assign = builder["roles"].assign_roles
    labels = pd.Series(np.repeat(["positive", "negative", "neutral"], 4000))
    a, b = assign(labels, seed=3), assign(labels, seed=3)
    pd.testing.assert_frame_equal(a, b)
    rates = a["audio_role"].value_counts(normalize=True)
    assert rates["agree"] == pytest.approx(0.5, abs=0.02)
    assert rates["neutral"] == pytest.approx(0.25, abs=0.02)
    assert not (a["audio_role"] == a["vision_role"]).all()


def test_word_features_average_inside_intervals(builder):
    speech = builder["speech"]
    n = 100  # 1 s of frames
    frames = {
        "F0": np.r_[np.full(50, 100.0), np.zeros(20), np.full(30, 200.0)],
        "VUV": np.r_[np.ones(50), np.zeros(20), np.ones(30)],
        "energy_db": np.linspace(-40, -20, n),
        "mcep": np.tile(np.arange(25.0), (n, 1)),
    }
    out = speech.word_features(frames, np.array([[0.0, 0.5], [0.5, 1.0]]))
    assert out[0, 0] == pytest.approx(100.0) and out[0, 1] == pytest.approx(1.0)
    assert out[1, 0] == pytest.approx(200.0)  # unvoiced frames do not pull F0 down
    assert out[1, 1] == pytest.approx(0.6)
    assert out[1, 3] == pytest.approx(0.5)
    np.testing.assert_allclose(out[1, 4:], np.arange(25.0))


def test_splits_are_stratified(builder):
    labels = pd.Series(np.repeat(["positive", "negative", "neutral"], [400, 400, 200]))
    splits = builder["build"].assign_splits(labels, seed=1)
    table = pd.crosstab(labels, splits, normalize="index")
    np.testing.assert_allclose(table["train"], 0.6, atol=0.01)
    np.testing.assert_allclose(table["test"], 0.25, atol=0.01)


def test_word_intervals_share_merged_groups_by_letters(builder):
    """Known answer: a word without its own espeak-ng event shares its group's interval in proportion to letters."""
    speech = builder["speech"]
    # "to be clear": espeak-ng reports one event for "to be" (sample 0) and one for "clear" (at 0.3 s)
    starts_char = np.array([0, 3, 6])
    starts = speech._word_starts([(1, 0), (7, int(0.3 * speech.SR))], starts_char, 3, scale=1.0)
    assert np.isnan(starts[1])
    audio = np.zeros(speech.SR, dtype=np.float32)
    audio[: int(0.6 * speech.SR)] = 0.5 * np.sin(np.arange(int(0.6 * speech.SR)) * 0.3)
    iv = speech._intervals(starts, [2, 2, 5], audio)
    np.testing.assert_allclose(iv[:2], [[0.0, 0.15], [0.15, 0.3]], atol=1e-9)
    assert iv[2, 0] == pytest.approx(0.3)
    assert 0.59 <= iv[2, 1] <= 0.6 + speech.FRAME / 2 / speech.SR + 1e-9  # speech ends where the tone stops
    # one event per word: taken in order, whatever positions espeak-ng reported
    in_order = speech._word_starts([(1, 0), (3, 160), (3, 320)], starts_char, 3, scale=1.0)
    np.testing.assert_allclose(in_order, [0.0, 0.01, 0.02])

"""Token modalities through the engine, with known answers.

An additive model over token ids, f = sum over real pieces of weight[id] + sum of v * audio, has closed-form Shapley
values: a piece gets weight[id] - weight[baseline id], a word the sum over its pieces, the audio step v * (x - b);
special tokens ([CLS], [SEP], padding) are no players and get nothing. A max game over words checks word players
(all pieces of a word absent together) against Shapley values enumerated by hand.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

import modalens as ml
from modalens.data.dataset import DatasetError, Modality, MultimodalDataset, TokenSpec
from modalens.interactions.attribution import (
    AttributionError,
    exact_feature_shapley,
    integrated_gradients,
    permutation_shapley,
)
from modalens.interactions.explanation import load_run
from modalens.models import CallablePredictor, Masker, MaskerError

PAD, CLS, SEP, MASK = 0, 1, 2, 3
VOCAB = 24
SPEC = TokenSpec(pad_id=PAD, mask_id=MASK, special_ids=(CLS, SEP), vocab_size=VOCAB, tokenizer="toy")
WEIGHT = np.random.default_rng(7).normal(size=VOCAB)
AUDIO_V = np.array([0.5, -1.5])


def toy_dataset() -> MultimodalDataset:
    """Three sentences of word pieces (WordPiece marks), padded; a 1-step, 2-feature audio modality."""
    sentences = [
        ["[CLS]", "great", "##ly", "fun", "[SEP]"],
        ["[CLS]", "not", "bad", "##ish", "##ly", "[SEP]"],
        ["[CLS]", "ok", "[SEP]"],
    ]
    ids_of = {"[CLS]": CLS, "[SEP]": SEP}
    t = max(len(s) for s in sentences)
    ids = np.full((len(sentences), t), PAD, np.int64)
    words = []
    for i, pieces in enumerate(sentences):
        for k, piece in enumerate(pieces):
            ids[i, k] = ids_of.setdefault(piece, len(ids_of) + 2 + 2)  # ids 6, 7, ... for the pieces
        words.append(pieces)
    text = Modality("text", "text", ids, mask=ids != PAD, words=words, tokens=SPEC)
    audio = Modality("audio", "audio", np.random.default_rng(1).normal(size=(len(sentences), 1, 2)))
    return MultimodalDataset([text, audio], np.array([0.1, -0.2, 0.3], np.float32), name="toy tokens")


def additive(values: dict, masks: dict) -> np.ndarray:
    ids = values["text"]
    text = (WEIGHT[ids] * masks["text"]).sum(1)
    return text + (values["audio"][:, 0, :] * AUDIO_V).sum(1)


def predictor(token_baseline: str | int = "mask") -> CallablePredictor:
    return CallablePredictor(additive, ["text", "audio"], masker=Masker("zeros", token_baseline=token_baseline))


def expected_pieces(ds: MultimodalDataset, baseline_id: int) -> np.ndarray:
    text = ds["text"]
    return np.where(text.player_mask(), WEIGHT[text.values] - WEIGHT[baseline_id], 0.0)


def test_the_word_map_follows_the_pieces() -> None:
    text = toy_dataset()["text"]
    assert text.word_texts == [["greatly", "fun"], ["not", "badishly"], ["ok"]]
    assert text.word_index[1].tolist() == [-1, 0, 1, 1, 1, -1]
    assert text.describe()["features"] == 0 and text.describe()["tokens"]["special_ids"] == [PAD, CLS, SEP]


@pytest.mark.parametrize("baseline", ["mask", "pad", 5])
@pytest.mark.parametrize("method", [exact_feature_shapley, permutation_shapley])
def test_additive_model_pieces_and_words_in_closed_form(method, baseline) -> None:
    ds = toy_dataset()
    pred = predictor(baseline)
    b = {"mask": MASK, "pad": PAD}.get(baseline, baseline)
    kwargs = {"n_permutations": 2} if method is permutation_shapley else {}
    fa = method(pred, ds, granularity="steps", progress=False, **kwargs)
    pieces = expected_pieces(ds, b)
    np.testing.assert_allclose(fa.values["text"], pieces, atol=1e-9)
    np.testing.assert_allclose(fa.values["audio"][:, 0], (ds["audio"].values[:, 0] * AUDIO_V).sum(1), atol=1e-9)
    index = ds["text"].word_index
    for i in range(len(ds)):
        expected = [pieces[i, index[i] == w].sum() for w in range(ds["text"].word_counts()[i])]
        np.testing.assert_allclose(fa.word_values["text"][i, : len(expected)], expected, atol=1e-9)
    # special tokens are not players: no rows for them, and the rows of the pieces carry their strings
    frame = fa.to_frame(ds)
    text_rows = frame[frame.modality == "text"]
    assert not text_rows["token"].isin(["[CLS]", "[SEP]", ""]).any()
    assert set(text_rows.token) >= {"great", "##ly", "##ish"}
    words = fa.word_frame(ds)
    assert words[words.instance == 1].text.tolist() == ["not", "badishly"]
    assert words[words.instance == 1].pieces.tolist() == [1, 3]


def test_word_players_are_absent_together() -> None:
    """A max game over the pieces: exact Shapley values over word players equal a hand enumeration over words."""
    ds = toy_dataset().select_modalities(["text"])

    def top(values: dict, masks: dict) -> np.ndarray:
        w = np.where(masks["text"], WEIGHT[values["text"]], -np.inf)
        return w.max(1)

    pred = CallablePredictor(top, ["text"], masker=Masker(token_baseline="mask"))
    fa = exact_feature_shapley(pred, ds, granularity="steps", players="words", progress=False)
    text = ds["text"]
    for i in range(len(ds)):
        words = text.word_counts()[i]
        ids, index = text.values[i], text.word_index[i]

        def value(present: frozenset, ids=ids, index=index, real=text.step_mask()[i : i + 1]) -> float:
            row = np.where((index < 0) | np.isin(index, list(present)), ids, MASK)
            return float(top({"text": row[None]}, {"text": real})[0])

        for w in range(words):
            others = [x for x in range(words) if x != w]
            phi = sum(
                math.factorial(len(c))
                * math.factorial(words - len(c) - 1)
                / math.factorial(words)
                * (value(frozenset(c) | {w}) - value(frozenset(c)))
                for k in range(len(others) + 1)
                for c in itertools.combinations(others, k)
            )
            assert fa.word_values["text"][i, w] == pytest.approx(phi, abs=1e-9)
            # a word's pieces share its value equally
            np.testing.assert_allclose(fa.values["text"][i, index == w], phi / (index == w).sum(), atol=1e-12)
    # word players: the permutation estimator is exact for 2 words per instance (pairs of antithetic walks)
    est = permutation_shapley(pred, ds, granularity="steps", players="words", n_permutations=2, progress=False)
    np.testing.assert_allclose(est.word_values["text"][:2], fa.word_values["text"][:2], atol=1e-9)


def test_features_granularity_skips_token_modalities() -> None:
    ds = toy_dataset()
    fa = permutation_shapley(predictor(), ds, granularity="features", n_permutations=2, progress=False)
    assert fa.values["text"].shape == (3, 0)
    assert fa.word_values is None
    np.testing.assert_allclose(fa.values["audio"], ds["audio"].values[:, 0] * AUDIO_V, atol=1e-9)


def test_explain_stores_pieces_words_and_mm_shap(tmp_path) -> None:
    ds = toy_dataset()
    expl = ml.explain(predictor(), ds, feature_method="exact", projection=None, templates=False, progress=False)
    pieces = expected_pieces(ds, MASK)
    fa = expl.feature_attributions
    steps = fa[(fa.modality == "text") & (fa.feature == "*")]
    np.testing.assert_allclose(steps.value, pieces[steps.instance, steps.position], atol=1e-9)
    words = expl.word_attributions
    assert words is not None and len(words) == 5
    total = words.groupby("instance").value.sum()
    np.testing.assert_allclose(total.to_numpy(), pieces.sum(1), atol=1e-9)
    # the modality-level text Shapley value is the sum of its pieces (an additive model)
    np.testing.assert_allclose(expl.shapley[:, 0], pieces.sum(1), atol=1e-9)
    shares = expl.mm_shap()
    assert shares is not None
    np.testing.assert_allclose(shares.groupby("instance").share.sum(), 1.0)
    audio_step = np.abs((ds["audio"].values[:, 0] * AUDIO_V).sum(1))  # one audio step: |sum of its features|
    expected = np.abs(pieces).sum(1) / (np.abs(pieces).sum(1) + audio_step)
    np.testing.assert_allclose(shares[shares.modality == "text"].share, expected, atol=1e-9)
    assert expl.summary()["mm_shap"]["text"] == pytest.approx(expected.mean())
    importance = expl.feature_importance()
    assert "word:badishly" in set(importance.feature) and "word:##ly" not in set(importance.feature)

    back = load_run(expl.save(tmp_path / "run"))
    assert back.dataset["text"].tokens == SPEC
    np.testing.assert_array_equal(back.dataset["text"].values, ds["text"].values)
    assert back.dataset["text"].word_texts == ds["text"].word_texts
    pd.testing.assert_frame_equal(back.word_attributions, expl.word_attributions, check_dtype=False)
    assert back.subset([1]).word_attributions.instance.tolist() == [0, 0]


def test_token_baselines_and_their_errors() -> None:
    ds = toy_dataset()
    masker = Masker(token_baseline={"text": "pad"}).bind(ds)
    ids = ds["text"].values
    filled = masker.fill("text", ids)
    assert (filled[ids == CLS] == CLS).all() and (filled[ids == SEP] == SEP).all()
    assert (filled[ds["text"].player_mask()] == PAD).all()
    assert masker.describe()["text"] == "token pad (0)"
    no_mask = TokenSpec(pad_id=0, special_ids=(1, 2))
    text = Modality("text", "text", ids, mask=ids != 0, tokens=no_mask)
    with pytest.raises(MaskerError, match="no \\[MASK\\] token"):
        Masker(token_baseline="mask").bind(MultimodalDataset([text]))
    assert Masker().bind(MultimodalDataset([text])).token_id("text") == 0  # no [MASK]: padding by default
    with pytest.raises(MaskerError, match="outside its vocabulary"):
        Masker(token_baseline=99).bind(ds)
    with pytest.raises(MaskerError, match="has not seen its vocabulary"):
        Masker().fill("text", ids)


def test_integrated_gradients_refuses_token_ids() -> None:
    torch = pytest.importorskip("torch")

    class Bag(torch.nn.Module):
        def forward(self, text, audio):
            return audio.sum((1, 2)) + text.float().sum(1) * 0

    pred = ml.wrap(Bag(), ["text", "audio"])
    with pytest.raises(AttributionError, match="holds token ids"):
        integrated_gradients(pred, toy_dataset(), progress=False)


def test_dataset_refuses_bad_token_modalities() -> None:
    ids = np.array([[1, 6, 7, 2]])
    with pytest.raises(DatasetError, match="word_index"):
        Modality("text", "text", ids, tokens=SPEC, word_index=np.array([[-1, 0, 2, -1]]))
    with pytest.raises(ValueError, match="special token"):
        Modality("text", "text", ids, tokens=SPEC, word_index=np.array([[0, 0, 1, -1]]))
    with pytest.raises(ValueError, match="whole numbers"):
        Modality("text", "text", ids + 0.5, tokens=SPEC)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        Modality("text", "text", ids + VOCAB, tokens=SPEC)
    with pytest.raises(ValueError, match="word_texts\\[0\\] holds 1 words"):
        Modality("text", "text", ids, tokens=SPEC, word_texts=[["a"]])
    with pytest.raises(ValueError, match="belongs to token modalities"):
        Modality("audio", "audio", np.zeros((1, 4, 2)), word_index=np.zeros((1, 4), int))

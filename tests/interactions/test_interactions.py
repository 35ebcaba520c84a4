"""Interaction types on glass-box models whose answer is known."""

import numpy as np
import pytest

from modalens import CallablePredictor, Masker, Modality, MultimodalDataset
from modalens.interactions import TypingConfig, classify, evaluate_coalitions, interaction_indices, shapley_values


def make_dataset(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return MultimodalDataset(
        [
            Modality("text", "text", rng.normal(size=(n, 5, 4))),
            Modality("audio", "audio", rng.normal(size=(n, 7, 3))),
            Modality("vision", "vision", rng.normal(size=(n, 7, 2))),
        ],
        rng.normal(size=n),
    )


def explain_glass_box(fn, ds):
    predictor = CallablePredictor(fn, ["text", "audio", "vision"], masker=Masker("zeros"))
    v = evaluate_coalitions(predictor, ds, batch_size=50, progress=False)[..., :1]
    phi, inter = shapley_values(v)[..., 0], interaction_indices(v)[..., 0]
    return phi, inter, classify(phi, inter)


def mean(v, name):
    return v[name].mean((1, 2)).astype(np.float64)


def test_text_only_model_is_text_dominant_everywhere():
    ds = make_dataset()
    phi, _, types = explain_glass_box(lambda v: 3 * mean(v, "text"), ds)
    assert (types.types == "dominance").all()
    assert (types.dominant == 0).all()
    assert np.allclose(phi[:, 1:], 0, atol=1e-6)
    assert (types.roles[:, 0] == "dominant").all() and (types.roles[:, 1:] == "minor").all()


def test_same_sign_additive_contributions_are_complement():
    ds = make_dataset()
    # audio copies the text mean, so text and audio push the same way with equal size; vision is ignored
    ds.modalities["audio"].values[:] = (ds["text"].values.mean((1, 2))[:, None, None]).astype(np.float32)
    phi, inter, types = explain_glass_box(lambda v: mean(v, "text") + mean(v, "audio"), ds)
    assert (types.types == "complement").all()
    assert np.allclose(types.strength, 0, atol=1e-6)  # additive: no interaction
    assert (types.roles[:, :2] == "supporting").all()


def test_opposite_signs_are_conflict():
    ds = make_dataset()
    ds.modalities["audio"].values[:] = (-ds["text"].values.mean((1, 2))[:, None, None]).astype(np.float32)
    # audio is minus 0.8 times the text mean: equal-ish and opposite pushes
    ds.modalities["audio"].values[:] *= 0.0
    ds.modalities["audio"].values[:] += (-0.8 * ds["text"].values.mean((1, 2))[:, None, None]).astype(np.float32)
    phi, _, types = explain_glass_box(lambda v: mean(v, "text") + mean(v, "audio"), ds)
    keep = np.abs(phi[:, 0]) > 1e-3
    assert keep.sum() > 50
    assert (types.types[keep] == "conflict").all()
    assert (phi[keep, 0] * phi[keep, 1] < 0).all()
    # text pushes harder, so it supports the net push and audio opposes it
    assert (types.roles[keep, 0] == "supporting").all() and (types.roles[keep, 1] == "opposing").all()


def test_multiplicative_model_shows_interaction():
    ds = make_dataset()
    _, inter, types = explain_glass_box(lambda v: 4 * mean(v, "audio") * mean(v, "vision"), ds)
    a, b = mean(ds.arrays(), "audio"), mean(ds.arrays(), "vision")
    assert np.allclose(inter[:, 1, 2], 4 * a * b, atol=1e-5)
    # a pure product with a zero baseline is all interaction: phi_audio = phi_vision = I/2, strength 1/2
    assert np.allclose(types.strength, 0.5, atol=1e-4)
    assert np.allclose(inter[:, 0, 1], 0, atol=1e-6)


def test_dominance_with_a_weak_opposing_modality():
    phi = np.array([[2.0, -0.3, 0.1]])
    types = classify(phi)
    assert types.types[0] == "dominance" and types.dominant[0] == 0
    assert list(types.roles[0]) == ["dominant", "minor", "minor"]
    phi = np.array([[2.0, -0.8, 0.1]])  # share of text 0.69 -> still dominant, audio relevant and opposing
    assert list(classify(phi).roles[0]) == ["dominant", "opposing", "minor"]


def test_thresholds_are_configurable_and_checked():
    phi = np.array([[1.0, 0.6, 0.0]])  # text share 0.625
    assert classify(phi).types[0] == "dominance"
    assert classify(phi, config=TypingConfig(dominance_share=0.7)).types[0] == "complement"
    assert classify(np.array([[1e-9, 0.0]])).types[0] == "none"
    with pytest.raises(ValueError, match="dominance_share"):
        TypingConfig(dominance_share=0.4)
    with pytest.raises(ValueError, match="relevance_share"):
        TypingConfig(relevance_share=0.7)

import json

import numpy as np
import pytest
import torch

from modalens.features.interventions import (
    ablate_features,
    attribute_scores,
    concept_removal,
    feature_attack,
    group_ablation,
    probe_accuracy,
    prompt_attribute_scores,
    retrieval_recall,
    steer,
    steer_text,
    steering_retrieval,
    zero_shot_accuracy,
)
from modalens.features.mds import analyze_mds


@pytest.fixture(scope="module")
def axis_setup(axis_pairs):
    from modalens.features.sae import ReLUSAE, ReLUSAEConfig

    sae = ReLUSAE(ReLUSAEConfig(d_in=16, d_sae=32))
    eye = torch.eye(16)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    res = analyze_mds(sae.encode_numpy(axis_pairs.image), sae.encode_numpy(axis_pairs.text), n_boot=50)
    return sae, res.categories


def test_axis_categories_are_exact(axis_setup):
    _, cats = axis_setup
    assert list(cats[:4]) == ["vision"] * 4
    assert list(cats[4:8]) == ["language"] * 4
    assert list(cats[8:12]) == ["cross-modal"] * 4
    assert set(cats[12:]) == {"inactive"}


def test_retrieval_and_zero_shot_known_values():
    eye = np.eye(3)
    assert retrieval_recall(eye, eye, ks=(1,)) == {"i2t@1": 1.0, "t2i@1": 1.0}
    # everything equally similar: ties count against the partner
    assert retrieval_recall(np.ones((3, 2)), np.ones((3, 2)), ks=(1, 3)) == {
        "i2t@1": 0.0,
        "t2i@1": 0.0,
        "i2t@3": 1.0,
        "t2i@3": 1.0,
    }
    assert zero_shot_accuracy(eye, eye, np.array([0, 1, 1])) == pytest.approx(2 / 3)


def test_empty_ablation_is_identity(trained_topk, planted):
    edited = ablate_features(trained_topk.extractor, planted.image, [])
    np.testing.assert_allclose(edited, planted.image, atol=1e-6)


def test_group_ablation_known_answer(axis_setup, axis_pairs):
    sae, cats = axis_setup
    p = axis_pairs
    table = group_ablation(sae, p.image, p.text, cats, class_text_emb=p.class_emb, labels=p.label, ks=(1,), n_random=2)
    get = {(r.group, r.metric): r for r in table.itertuples()}
    assert get[("vision", "zero_shot_accuracy")].before == pytest.approx(1.0)
    # the class lives in the cross-modal features: removing them leaves chance (all prompts become 0 -> class 0)
    assert get[("cross-modal", "zero_shot_accuracy")].after == pytest.approx(np.mean(p.label == 0))
    assert get[("vision", "zero_shot_accuracy")].after == pytest.approx(1.0)
    assert get[("language", "zero_shot_accuracy")].after == pytest.approx(1.0)
    # retrieval: without the shared concepts images and texts are orthogonal
    assert get[("cross-modal", "i2t@1")].after == pytest.approx(0.0)
    assert get[("vision", "i2t@1")].after >= get[("vision", "i2t@1")].before
    assert get[("cross-modal", "i2t@1")].n_features == 4
    assert np.isfinite(get[("vision", "zero_shot_accuracy")].control)


def test_concept_removal_known_answer(axis_setup, axis_pairs):
    sae, cats = axis_setup
    p = axis_pairs
    attr = (p.vision < 2).astype(int)  # the protected attribute is carried by vision features 0-3
    scores = attribute_scores(sae, p.image, attr)
    assert set(np.argsort(-scores)[:4]) == {0, 1, 2, 3}
    table = concept_removal(
        sae,
        p.image,
        attr,
        cats,
        scores=scores,
        n_features=4,
        class_text_emb=p.class_emb,
        labels=p.label,
        n_random=1,
        cv=3,
    )
    get = {(r.group, r.metric): r for r in table.itertuples()}
    leak = get[("vision", "attribute_leakage")]
    assert leak.before > 0.95
    chance = json.loads(leak.details)["chance"]
    assert leak.after <= chance + 0.1  # gone
    assert get[("language", "attribute_leakage")].after > 0.95  # wrong group: still leaks
    assert get[("vision", "task_accuracy")].after == pytest.approx(1.0)  # task untouched
    assert sorted(json.loads(get[("all", "attribute_leakage")].details)["features"]) == [0, 1, 2, 3]


def test_prompt_attribute_scores_pick_the_prompted_feature(axis_setup):
    sae, _ = axis_setup
    eye = np.eye(16, dtype=np.float32)
    scores = prompt_attribute_scores(sae, eye[[5]] + 0.2 * eye[[9]], eye[[9]])
    assert int(np.argmax(scores)) == 5


def test_probe_accuracy_detects_signal_and_chance():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 50)
    assert probe_accuracy(np.c_[y + 0.1 * rng.normal(size=100), rng.normal(size=100)], y) > 0.95
    assert probe_accuracy(rng.normal(size=(100, 3)), y) < 0.75


def test_feature_attack_raises_and_lowers_within_budget(fake_model, axis_sae):
    sae = axis_sae
    rng = np.random.default_rng(0)
    images = rng.uniform(0.2, 0.8, (6, 3, 8, 8)).astype(np.float32)
    classes = fake_model.encode_texts(["red", "green", "blue"])
    up = feature_attack(fake_model, sae, images, [3], eps=0.05, steps=10, class_text_emb=classes)
    assert up.delta_linf <= 0.05 + 1e-6
    assert float(up.pixels.min()) >= 0.0 and float(up.pixels.max()) <= 1.0
    assert (up.activation_after[:, 0] > up.activation_before[:, 0]).all()
    assert up.objective[-1] > up.objective[0]
    down = feature_attack(fake_model, sae, torch.from_numpy(images), [3, 16 + 3], direction="lower", eps=0.05, steps=10)
    assert (down.activation_after.sum(axis=1) <= down.activation_before.sum(axis=1) + 1e-6).all()
    assert up.pred_before.shape == (6,) and 0.0 <= up.flip_rate <= 1.0
    assert set(up.to_frame().columns) >= {"image", "feature", "activation_before", "activation_after", "pred_after"}
    rows = up.summary_rows()
    assert rows[rows.metric == "mean_target_activation"].delta.iloc[0] > 0
    with pytest.raises(ValueError, match="direction"):
        feature_attack(fake_model, sae, images, [3], direction="sideways")


def test_steering_raises_rank_of_feature_carriers(trained_topk, planted):
    sae = trained_topk.extractor
    gallery = planted.image
    acts = sae.encode_numpy(gallery)
    # a feature that fires on a minority of images, so steering has something to find
    freq = (acts > 0).mean(axis=0)
    j = int(np.flatnonzero((freq > 0.05) & (freq < 0.4))[0])
    table = steering_retrieval(sae, planted.text[:50], gallery, j, alphas=(0.0, 0.5, 1.0, 2.0), k=10)
    assert table.precision_at_k.iloc[-1] > table.precision_at_k.iloc[0]
    assert table.mean_rank_carriers.iloc[-1] < table.mean_rank_carriers.iloc[0]
    assert table.precision_at_k.is_monotonic_increasing


def test_steer_modes(trained_topk, planted, fake_model, axis_sae):
    sae = trained_topk.extractor
    e = planted.text[:5]
    np.testing.assert_allclose(steer(sae, e, 0, alpha=1.0, mode="scale"), e, atol=1e-5)
    out = steer(sae, e, 0, alpha=0.5)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.linalg.norm(e, axis=1), rtol=1e-5)
    with pytest.raises(ValueError, match="mode"):
        steer(sae, e, 0, mode="push")
    steered = steer_text(fake_model, axis_sae, ["a red cat"], 2, alpha=1.0)
    assert steered.shape == (1, 16)

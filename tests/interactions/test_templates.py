"""Known-answer tests for templates: discretisation into items and FP-growth mining of planted itemsets."""

from __future__ import annotations

import numpy as np
import pytest

from modalens.data.dataset import Modality, MultimodalDataset
from modalens.interactions.attribution import permutation_shapley
from modalens.interactions.templates import (
    TEMPLATE_COLUMNS,
    TemplateError,
    discretise,
    item_attributions,
    mine_templates,
)
from modalens.models import CallablePredictor

VOCAB = ["the", "movie", "was", "plot", "actor", "it"]


def planted(n: int = 300, seed: int = 0) -> tuple[MultimodalDataset, np.ndarray, np.ndarray, CallablePredictor]:
    """Text whose feature e0 is a word's sentiment (great +1, awful -1, else 0), vision Joy/AU12/AU4, audio F0.

    Instances in ``pos`` say "great" with high Joy; instances in ``neg`` say "awful" with low F0. The model is
    f = 2 * sum of word sentiment + mean Joy + mean F0 (additive, so permutation Shapley is exact).
    """
    rng = np.random.default_rng(seed)
    t_text, t_vis, t_aud = 5, 3, 4
    order = rng.permutation(n)
    pos, neg = np.sort(order[: n // 6]), np.sort(order[n // 6 : n // 3])
    words = [[VOCAB[k] for k in rng.integers(len(VOCAB), size=t_text)] for _ in range(n)]
    lengths = rng.integers(3, t_text + 1, size=n)
    text = np.zeros((n, t_text, 2), np.float32)
    text[:, :, 1] = rng.normal(size=(n, t_text))
    for group, word, sentiment in ((pos, "Great", 1.0), (neg, "awful", -1.0)):
        for i in group:
            t = rng.integers(lengths[i])
            words[i][t] = word
            text[i, t, 0] = sentiment
    words = [w[: lengths[i]] for i, w in enumerate(words)]
    mask = np.arange(t_text)[None] < lengths[:, None]
    vision = rng.normal(size=(n, t_vis, 3)).astype(np.float32) * 0.5
    vision[pos, :, 0] += 3.0
    audio = rng.normal(size=(n, t_aud, 1)).astype(np.float32) * 0.5
    audio[neg, :, 0] -= 3.0
    ds = MultimodalDataset(
        [
            Modality("text", "text", text, mask=mask, words=words, feature_names=["sentiment", "e1"]),
            Modality("vision", "vision", vision, feature_names=["Joy", "AU12", "AU4"]),
            Modality("audio", "audio", audio, feature_names=["F0"]),
        ]
    )

    def model(values: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        return 2 * values["text"][:, :, 0].sum(1) + values["vision"][:, :, 0].mean(1) + values["audio"][:, :, 0].mean(1)

    return ds, pos, neg, CallablePredictor(model, ["text", "vision", "audio"])


@pytest.fixture(scope="module")
def mined() -> dict:
    ds, pos, neg, pred = planted()
    steps = permutation_shapley(pred, ds, n_permutations=2, progress=False)
    feats = permutation_shapley(pred, ds, granularity="features", n_permutations=2, progress=False)
    items = discretise(ds, [steps, feats], top_words=1, top_features=1)
    scores = item_attributions(ds, [steps, feats], items)
    prediction = steps.prediction
    templates, members = mine_templates(items, prediction, scores, min_support=0.2, max_len=3)
    return dict(
        ds=ds,
        pos=pos,
        neg=neg,
        steps=steps,
        feats=feats,
        items=items,
        prediction=prediction,
        templates=templates,
        members=members,
    )


def find(templates, items: list[str], polarity: str):
    hit = templates[(templates.polarity == polarity) & templates["items"].map(lambda x: list(x) == items)]
    return None if hit.empty else hit.iloc[0]


def test_planted_positive_template_found_with_exact_support(mined: dict) -> None:
    templates, members, prediction, pos = mined["templates"], mined["members"], mined["prediction"], mined["pos"]
    assert (prediction[pos] > 0).all()
    n_positive = int((prediction >= 0).sum())
    row = find(templates, ["text:great", "vision:Joy high"], "positive")
    assert row is not None, templates
    assert row["count"] == len(pos)
    assert row["support"] == pytest.approx(len(pos) / n_positive)
    assert 0.25 < row["support"] < 0.4  # the planted share of positive predictions
    assert list(row["modalities"]) == ["text", "vision"]
    assert row["rank"] == 0  # the most frequent multimodal itemset on its side
    got = np.sort(members[members.template_id == row["template_id"]].instance.to_numpy())
    np.testing.assert_array_equal(got, pos)
    np.testing.assert_allclose(row["mean_prediction"], prediction[pos].mean())
    # mean attribution: the word's step value (2 * sentiment) plus Joy's feature value (its mean, baseline 0)
    joy = mined["ds"]["vision"].values[pos, :, 0].mean(1)
    np.testing.assert_allclose(row["mean_attribution"], np.mean(2.0 + joy), rtol=1e-5)


def test_negative_side_is_mined_separately(mined: dict) -> None:
    templates, prediction, neg = mined["templates"], mined["prediction"], mined["neg"]
    row = find(templates, ["audio:F0 low", "text:awful"], "negative")
    assert row is not None, templates
    assert row["count"] == len(neg)
    assert row["support"] == pytest.approx(len(neg) / int((prediction < 0).sum()))
    assert row["mean_attribution"] < 0 and row["mean_prediction"] < 0
    assert find(templates, ["audio:F0 low", "text:awful"], "positive") is None
    assert not templates[templates.polarity == "negative"]["items"].map(lambda x: "text:great" in x).any()
    assert list(templates.columns) == TEMPLATE_COLUMNS
    assert templates.template_id.is_unique
    # every template is multimodal and at least min_support on its side
    assert (templates.modalities.map(len) >= 2).all() and (templates.support >= 0.2).all()


def test_templates_ranked_and_limited() -> None:
    ds, pos, neg, pred = planted(n=240, seed=4)
    items = discretise(ds, None, top_features=2)
    prediction = pred.predict(ds.arrays(), ds.masks())[:, 0]
    templates, members = mine_templates(items, prediction, None, min_support=0.05, top_k=3, multimodal_only=False)
    for _side, group in templates.groupby("polarity"):
        assert len(group) <= 3
        assert group["rank"].tolist() == list(range(len(group)))
        assert group.support.is_monotonic_decreasing
    assert templates.mean_attribution.isna().all()  # no attributions given
    assert set(members.template_id) == set(templates.template_id)
    # counts agree with a direct scan of the items
    for _, row in templates.iterrows():
        side = prediction >= 0 if row.polarity == "positive" else prediction < 0
        holds = np.array([set(row["items"]) <= set(it) for it in items]) & side
        assert row["count"] == holds.sum()


def test_closed_itemsets_drop_redundant_subsets() -> None:
    items = [["a:x", "b:y", "c:z"]] * 6 + [["a:x", "b:y"]] * 2 + [["d:w"]] * 2
    prediction = np.ones(10)
    closed, _ = mine_templates(items, prediction, min_support=0.5)
    assert sorted(map(tuple, closed["items"])) == [("a:x", "b:y"), ("a:x", "b:y", "c:z")]
    every, _ = mine_templates(items, prediction, min_support=0.5, closed=False)
    assert len(every) == 4  # ab, ac, bc, abc
    assert find(closed, ["a:x", "b:y"], "positive")["support"] == pytest.approx(0.8)


def test_classification_sides_are_predicted_classes() -> None:
    items = [["text:good", "vision:Joy high"]] * 4 + [["text:bad", "audio:F0 low"]] * 4
    probs = np.array([[0.1, 0.9]] * 4 + [[0.7, 0.3]] * 4)
    templates, members = mine_templates(items, probs, min_support=0.5, class_names=["neg", "pos"])
    assert find(templates, ["text:good", "vision:Joy high"], "pos")["mean_prediction"] == pytest.approx(0.9)
    assert find(templates, ["audio:F0 low", "text:bad"], "neg")["mean_prediction"] == pytest.approx(0.7)
    ids = mine_templates(items, probs.argmax(1), output_kind="classification", min_support=0.5)[0]
    assert sorted(ids.polarity) == ["0", "1"] and ids.mean_prediction.isna().all()


def test_regression_threshold_moves_the_sides() -> None:
    items = [["text:a", "vision:b high"]] * 5
    prediction = np.array([0.5, 1.0, 1.5, 2.0, 2.5])
    t, _ = mine_templates(items, prediction, min_support=0.3, threshold=1.2)
    assert dict(zip(t.polarity, t["count"], strict=True)) == {"positive": 3, "negative": 2}


def test_discretise_levels_and_selection() -> None:
    n = 9
    feature = np.arange(n, dtype=np.float32)  # quantile terciles: 0-2 low, 3-5 mid, 6-8 high
    ds = MultimodalDataset(
        [
            Modality("vision", "vision", np.stack([feature, np.zeros(n)], 1)[:, None, :], feature_names=["Joy", "c"]),
            Modality(
                "text",
                "text",
                np.zeros((n, 3, 1)),
                mask=np.tile([True, True, False], (n, 1)),
                words=[["Hi", "there", "pad"]] * n,
            ),
        ]
    )
    items = discretise(ds)
    assert items[0] == ["text:hi", "text:there", "vision:Joy low"]  # padding word left out; constant "c" has no level
    assert items[4] == ["text:hi", "text:there"]  # mid is not informative without an attribution
    assert items[8][-1] == "vision:Joy high"
    levels = [next(x for x in discretise(ds, n_bins=5)[i] if x.startswith("vision")) for i in (0, 8)]
    assert levels == ["vision:Joy very-low", "vision:Joy very-high"]


def test_discretise_keeps_only_influential_items(mined: dict) -> None:
    ds, steps, items = mined["ds"], mined["steps"], mined["items"]
    for i in mined["pos"][:10]:
        assert "text:great" in items[i] and "vision:Joy high" in items[i]
    # an instance without a sentiment word has zero step attribution on every word: no word items at all
    plain = np.setdiff1d(np.arange(len(ds)), np.concatenate([mined["pos"], mined["neg"]]))
    assert all(not any(x.startswith("text:") for x in items[i]) for i in plain)
    assert np.abs(steps.values["text"][plain]).max() == 0.0
    # features need |attribution| above the floor: none of these reaches 10
    strict = discretise(ds, mined["feats"], top_features=None, min_abs_attribution=10.0, modalities=["vision", "audio"])
    assert all(not x for x in strict)
    loose = discretise(ds, mined["feats"], top_features=None, modalities=["vision"])
    # the model reads only Joy of the vision features: AU12 and AU4 (attribution 0) never become items
    assert all(len(x) == 1 and x[0].startswith("vision:Joy ") for x in loose)
    # with only a features attribution, words cannot be ranked: every distinct real word is an item
    assert discretise(ds, mined["feats"], modalities=["text"])[0] == sorted(
        {f"text:{w.lower()}" for w in ds["text"].words[0] if w}
    )


def test_bad_inputs_are_named() -> None:
    items = [["text:a", "vision:b high"]] * 4
    with pytest.raises(TemplateError, match="predictions hold 3 instances; items hold 4"):
        mine_templates(items, np.ones(3))
    with pytest.raises(TemplateError, match="attributions"):
        mine_templates(items, np.ones(4), np.ones(2))
    with pytest.raises(TemplateError, match=r"items\[1\]"):
        mine_templates([["text:a"], "text:b", ["x"], ["y"]], np.ones(4))
    with pytest.raises(TemplateError, match="min_support"):
        mine_templates(items, np.ones(4), min_support=0)
    with pytest.raises(TemplateError, match="rank_by"):
        mine_templates(items, np.ones(4), rank_by="fun")
    with pytest.raises(TemplateError, match="finite"):
        mine_templates(items, np.array([1.0, np.nan, 0.0, 1.0]))
    ds, _, _, pred = planted(n=30)
    with pytest.raises(TemplateError, match="n_bins"):
        discretise(ds, n_bins=7)
    partial = permutation_shapley(pred, ds, n_permutations=2, index=np.arange(10), progress=False)
    with pytest.raises(TemplateError, match="must cover every row"):
        discretise(ds, partial)
    with pytest.raises(KeyError, match="no modality 'audio2'"):
        discretise(ds, modalities=["audio2"])

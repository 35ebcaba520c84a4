"""The feature card's tables, the null test of the categories, and the automatic labels, on cases worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from modalens.features.dashboard import (
    activation_histograms,
    class_effects,
    decoder_neighbours,
    duplicate_groups,
    feature_examples,
    feature_labels,
    sparse_codes,
)
from modalens.features.interventions import mark_uninformative, retrieval_ceiling
from modalens.features.mds import CROSS_MODAL, analyze_dominance, category_shares, modality_swap_null


# ------------------------------------------------------------------------------------------------ labels
def test_label_is_the_word_that_predicts_the_activation_and_its_score_is_that_correlation():
    texts = ["a red coat", "a blue coat", "a red shoe", "a blue shoe", "a green hat", "a green coat"] * 5
    coat = np.array([1.0 if "coat" in t else 0.0 for t in texts])
    noise = np.zeros(len(texts))
    acts = np.stack([coat, noise], axis=1)
    frame = feature_labels(acts, texts, min_count=3)
    assert frame.loc[0, "label"] == "coat"
    # the activation is exactly "holds coat": correlation 1, all its mass on coat captions, fires on all of them
    assert frame.loc[0, "label_score"] == pytest.approx(1.0)
    assert frame.loc[0, "label_coverage"] == pytest.approx(1.0)
    assert frame.loc[0, "label_precision"] == pytest.approx(1.0)
    assert frame["label"].isna()[1] and np.isnan(frame.loc[1, "label_score"])  # never fires: no label


def test_label_adds_an_alternative_word_only_when_it_raises_the_correlation():
    texts = ["a coat", "a jacket", "a shoe", "a hat"] * 6
    fires = np.array([1.0 if ("coat" in t or "jacket" in t) else 0.0 for t in texts])
    frame = feature_labels(fires[:, None], texts, min_count=3)
    assert set(frame.loc[0, "label"].split(" / ")) == {"coat", "jacket"}
    assert frame.loc[0, "label_score"] == pytest.approx(1.0)
    # by hand: "holds coat" alone against fires (12 of 24 pairs fire, 6 hold coat): r = 1/sqrt(3)
    only_coat = feature_labels(fires[:, None], texts, min_count=3, max_terms=1)
    assert only_coat.loc[0, "label_score"] == pytest.approx(1 / np.sqrt(3))


# ------------------------------------------------------------------------------------------------ examples
def test_examples_collapse_duplicates_with_their_count_and_cover_three_levels():
    n = 100
    acts = np.zeros((n, 1))
    acts[:, 0] = np.linspace(1.0, 0.01, n)  # sample 0 strongest
    texts = [f"caption {i}" for i in range(n)]
    texts[1] = texts[2] = texts[3] = "the same caption"  # three strong duplicates
    groups = {"text": duplicate_groups(texts)}
    ex = feature_examples({"text": acts}, groups, top=5, per_level=4, seed=0)
    top = ex[ex.level == "top"].sort_values("rank")
    assert top["sample"].tolist() == [0, 1, 4, 5, 6]  # samples 2 and 3 are sample 1's duplicates
    assert top["count"].tolist() == [1, 3, 1, 1, 1]
    assert set(ex.level) == {"top", "middle", "low"}
    middle, low = ex[ex.level == "middle"], ex[ex.level == "low"]
    q = np.quantile(acts[:, 0], [0.0, 0.2, 0.4, 0.6])
    assert middle.activation.between(q[2], q[3]).all() and low.activation.between(q[0], q[1]).all()
    assert not set(middle["sample"]) & set(top["sample"])  # nothing shown twice
    assert len(set(ex["sample"])) == len(ex)


def test_duplicate_groups_of_embedding_rows():
    rows = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    g = duplicate_groups(rows)
    assert g[0] == g[2] != g[1]


def test_histograms_share_edges_across_modalities_and_count_zeros_apart():
    img = np.array([[0.0], [1.0], [2.0], [4.0]])
    txt = np.array([[0.0], [0.0], [3.0], [0.0]])
    h = activation_histograms({"image": img, "text": txt}, bins=4)
    a, b = h[h.modality == "image"].iloc[0], h[h.modality == "text"].iloc[0]
    assert list(a.edges) == list(b.edges) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert list(a.counts) == [0, 1, 1, 1] and a.n_zero == 1  # bins [0,1) [1,2) [2,3) [3,4]: 1, 2 and 4
    assert list(b.counts) == [0, 0, 0, 1] and b.n_zero == 3


def test_neighbours_by_decoder_cosine_and_class_effects():
    w = np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    nb = decoder_neighbours(w, n=2)
    first = nb[nb.feature == 0].sort_values("rank")
    assert first.neighbour.tolist()[0] == 1 and first.cosine.iloc[0] == pytest.approx(0.9 / np.sqrt(0.82))
    assert 0 not in nb[nb.feature == 0].neighbour.tolist()
    classes = np.eye(3)  # class c is axis c
    eff = class_effects(w, classes, ["a", "b", "c"], n=1)
    top = eff[(eff.feature == 3) & (eff["rank"] == 0)].iloc[0]
    assert top["class"] == "c" and top.effect == pytest.approx(1 - 1 / 3)  # centred over the classes
    low = eff[(eff.feature == 0) & (eff["rank"] == -1)].iloc[0]
    assert low.effect == pytest.approx(-1 / 3)


def test_sparse_codes_are_the_non_zero_entries():
    a = np.array([[0.0, 2.0], [1.0, 0.0]])
    c = sparse_codes({"image": a, "text": np.zeros_like(a)})
    assert c[["sample", "modality", "feature", "activation"]].values.tolist() == [
        [0, "image", 1, 2.0],
        [1, "image", 0, 1.0],
    ]


# ------------------------------------------------------------------------------------------------ null test
def _noise(n=400, f=64, seed=0):
    rng = np.random.default_rng(seed)
    on = rng.random((n, f)) < 0.1
    img = np.where(on & (rng.random((n, f)) < 0.8), rng.exponential(1.0, (n, f)), 0.0)
    txt = np.where(on & (rng.random((n, f)) < 0.8), rng.exponential(1.0, (n, f)), 0.0)
    return img, txt


def test_on_pure_noise_the_real_shares_are_what_chance_gives():
    img, txt = _noise()
    res = analyze_dominance({"image": img, "text": txt}, n_boot=50, n_null=40, seed=0)
    real = res.proportions()
    null = res.null_shares()
    single = real["vision"] + real["language"]
    assert single > 0.15  # relative thresholds always label some noise features: the 19 of 64
    for c in ("vision", "language"):
        # no modality structure: the real share lies inside the spread of the swapped data's shares, both when the
        # swapped data get thresholds of their own (the same rule) and against the run's thresholds
        assert null[c]["low"] - 1 / 64 <= real[c] <= null[c]["high"] + 1 / 64, (c, real[c], null[c])
        lo, hi = null[c]["at_thresholds_low"], null[c]["at_thresholds_high"]
        assert lo - 1 / 64 <= real[c] <= hi + 1 / 64, (c, real[c], null[c])


def test_with_planted_modality_features_the_real_shares_exceed_chance():
    img, txt = _noise(seed=1)
    img[:, :12] *= 8.0  # 12 features driven by the image
    txt[:, :12] *= 0.05
    txt[:, 12:24] *= 8.0
    img[:, 12:24] *= 0.05
    res = analyze_dominance({"image": img, "text": txt}, n_boot=50, n_null=40, seed=0, k=1.0)
    null = res.null_shares()
    real = res.proportions()
    # against the run's thresholds the swapped data put almost no feature outside the cross-modal band: the 12 + 12
    # planted features are far beyond chance
    for c in ("vision", "language"):
        assert real[c] >= 10 / 64
        assert null[c]["at_thresholds_high"] < 0.05
    # the same relative rule re-applied to the swapped data still labels its tails: that share says how many
    # labels the rule hands out anyway, not how many are real (why the app shows the at-thresholds chance)
    assert null["vision"]["mean"] > 0.05


def test_swap_null_exchanges_whole_pairs():
    img = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]])
    txt = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    reps = modality_swap_null([img.astype(np.float32), txt.astype(np.float32)], 200, 1e-8, seed=0)
    # feature 0 fires on images only: after a swap its MDS is the share of pairs not swapped; the mean over many
    # replicates is 1/2, and every replicate's MDS is a multiple of 1/4
    mds = reps[:, 0, 0]
    assert np.allclose(mds * 4, np.round(mds * 4))
    assert mds.mean() == pytest.approx(0.5, abs=0.06)
    assert category_shares(reps[0], 1.0, ["vision", "language"])[CROSS_MODAL] >= 0


def test_share_intervals_contain_the_shares_of_a_clear_split():
    img, txt = _noise(seed=2)
    img[:, :16] *= 10
    txt[:, :16] *= 0.01
    res = analyze_dominance({"image": img, "text": txt}, n_boot=100, n_null=0, seed=0)
    ci = res.share_intervals()
    summary = res.summary()
    assert summary["share_ci"] == ci and summary["share_boot"] == 100
    lo, hi = ci["vision"]
    assert lo <= res.proportions()["vision"] + 1 / 64 and hi >= res.proportions()["vision"] - 1 / 64
    assert sum(summary["stable_counts"].values()) == int(res.stable.sum())


# ------------------------------------------------------------------------------------------------ notes
def test_retrieval_ceiling_from_duplicate_captions():
    img = np.eye(6)
    txt = np.array([[1.0, 0, 0, 0, 0, 0]] * 3 + [[0, 1.0, 0, 0, 0, 0]] * 3)  # two captions, three pairs each
    ceil = retrieval_ceiling(img, txt, ks=(1, 5))
    assert ceil["i2t@1"] == 0.0  # every caption ties with two others
    assert ceil["t2i@1"] == pytest.approx(2 / 6)  # two distinct queries: at most one partner each at k = 1
    assert ceil["i2t@5"] == 1.0


def test_constant_metrics_get_a_note():
    import pandas as pd

    t = pd.DataFrame(
        {
            "intervention": ["a", "a", "a", "a"],
            "metric": ["m", "m", "n", "n"],
            "group": ["x", "y", "x", "y"],
            "before": [0.5, 0.5, 0.5, 0.5],
            "after": [0.5, 0.5, 0.4, 0.5],
            "control": [0.5, 0.5, 0.5, 0.5],
            "note": [None] * 4,
        }
    )
    out = mark_uninformative(t)
    assert out.note[:2].notna().all() and out.note[2:].isna().all()

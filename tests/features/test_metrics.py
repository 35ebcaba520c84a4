import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modalens.features.metrics import (
    compare_methods,
    emb_sim,
    monosemanticity,
    top_activating,
    top_samples_table,
    win_rate,
)


def test_top_activating_order_ties_and_silent_samples():
    acts = np.array([[0.0, 1.0], [3.0, 1.0], [2.0, 0.0], [3.0, 0.5]])
    idx, val = top_activating(acts, k=3)
    assert idx[0].tolist() == [1, 3, 2]  # tie 3.0 at rows 1 and 3: lower index first
    assert val[0].tolist() == [3.0, 3.0, 2.0]
    assert idx[1].tolist() == [0, 1, 3]
    idx, val = top_activating(np.array([[0.0], [1.0], [0.0]]), k=3)
    assert idx[0].tolist() == [1, -1, -1] and np.isnan(val[0, 1:]).all()


def test_embsim_identical_samples_is_one_and_orthogonal_is_zero():
    ref = np.array([[1.0, 0, 0], [2.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 0, 0]])
    index = np.array([[0, 1, 4], [2, 3, -1], [0, -1, -1]])
    sims = emb_sim(index, ref)
    assert sims[0] == pytest.approx(1.0)
    assert sims[1] == pytest.approx(0.0)
    assert np.isnan(sims[2])  # one sample: undefined


def test_embsim_known_value():
    # unit vectors at 0, 60 and 120 degrees: cosines 0.5, -0.5, 0.5 -> mean 1/6
    ang = np.deg2rad([0, 60, 120])
    ref = np.c_[np.cos(ang), np.sin(ang)]
    assert emb_sim(np.array([[0, 1, 2]]), ref)[0] == pytest.approx(1 / 6)


def test_monosemanticity_weights_by_activation():
    ang = np.deg2rad([0, 60, 120])
    ref = np.c_[np.cos(ang), np.sin(ang)]
    index = np.array([[0, 1, 2]])
    equal = monosemanticity(index, np.array([[1.0, 1.0, 1.0]]), ref)[0]
    assert equal == pytest.approx(emb_sim(index, ref)[0])
    # weights a = (1, 1, eps): only the 0-60 pair counts -> cos 60 = 0.5
    skew = monosemanticity(index, np.array([[1.0, 1.0, 1e-9]]), ref)[0]
    assert skew == pytest.approx(0.5, abs=1e-6)


def test_win_rate_paired_with_ties():
    res = win_rate([0.9, 0.5, 0.2, np.nan], [0.1, 0.5, 0.3, 0.4])
    assert res.paired and res.n_comparisons == 3
    assert (res.wins, res.ties, res.losses) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert res.rate_half_ties == pytest.approx(0.5)


def test_win_rate_unpaired_matches_brute_force():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 30).astype(float)
    b = rng.integers(0, 5, 17).astype(float)
    res = win_rate(a, b)
    assert not res.paired and res.n_comparisons == 30 * 17
    diff = a[:, None] - b[None, :]
    assert res.wins == pytest.approx((diff > 0).mean())
    assert res.ties == pytest.approx((diff == 0).mean())
    assert win_rate(b, a).wins == pytest.approx(res.losses)


def test_compare_methods_per_category():
    scores = {"raw": np.array([0.1, 0.2, 0.3]), "sae": np.array([0.5, 0.6, 0.7, 0.0])}
    cats = {"sae": np.array(["vision", "vision", "cross-modal", "language"])}
    summary, wins = compare_methods(scores, cats)
    row = summary[(summary.method == "sae") & (summary.category == "vision")].iloc[0]
    assert row.n_features == 2 and row["mean"] == pytest.approx(0.55)
    overall = wins[(wins.category == "all") & (wins.method_a == "sae")].iloc[0]
    # sae features 0.5, 0.6, 0.7 beat every raw one, 0.0 beats none: 9 / 12
    assert overall.wins == pytest.approx(9 / 12)


def test_top_samples_table_columns():
    acts = {"image": np.array([[0.0, 2.0], [1.0, 0.0]]), "text": np.array([[0.5, 0.0], [0.0, 0.0]])}
    t = top_samples_table(acts, k=2, texts=["a cat", "a dog"], labels=["cat", "dog"])
    assert list(t.columns) == ["feature", "rank", "modality", "sample", "activation", "label", "text"]
    f0 = t[t.feature == 0]
    assert f0[f0.modality == "image"]["sample"].tolist() == [1]
    assert f0[f0.modality == "text"]["text"].tolist() == ["a cat"]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=30),
    st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=30),
)
def test_win_rate_antisymmetry(a, b):
    ab, ba = win_rate(a, b, paired=False), win_rate(b, a, paired=False)
    assert ab.wins == pytest.approx(ba.losses) and ab.ties == pytest.approx(ba.ties)
    assert ab.wins + ab.ties + ab.losses == pytest.approx(1.0)
    assert ab.rate_half_ties + ba.rate_half_ties == pytest.approx(1.0)

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from modalens.features.mds import (
    CROSS_MODAL,
    INACTIVE,
    analyze_dominance,
    analyze_mds,
    bootstrap_dominance,
    categorize,
    dominance_scores,
    modality_dominance_score,
)


def _known_activations(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Feature 0 fires only on images, 1 only on text, 2 equally on both; 3..9 are filler with MDS near 0.5
    so that mu/sigma make 0 and 1 stand out; feature 10 never fires."""
    rng = np.random.default_rng(seed)
    img = np.zeros((n, 11))
    txt = np.zeros((n, 11))
    img[:, 0] = rng.uniform(0.5, 1.0, n)
    txt[:, 1] = rng.uniform(0.5, 1.0, n)
    both = rng.uniform(0.5, 1.0, n)
    img[:, 2] = both
    txt[:, 2] = both
    for j in range(3, 10):
        s = rng.uniform(0.1, 1.0, n)
        r = rng.beta(20, 20, n)
        img[:, j], txt[:, j] = s * r, s * (1 - r)
    return img, txt


def test_mds_known_values():
    img, txt = _known_activations()
    mds = modality_dominance_score(img, txt)
    assert mds[0] == pytest.approx(1.0, abs=1e-6)
    assert mds[1] == pytest.approx(0.0, abs=1e-6)
    assert mds[2] == pytest.approx(0.5, abs=1e-6)
    assert np.isnan(mds[10])


def test_categories_known_answer():
    img, txt = _known_activations()
    res = analyze_mds(img, txt, n_boot=200, seed=1)
    assert res.categories[0] == "vision"
    assert res.categories[1] == "language"
    assert res.categories[2] == CROSS_MODAL
    assert res.categories[10] == INACTIVE
    assert res.n_active[10] == 0 and res.n_excluded[10] == len(img)
    # the extreme features sit far outside their thresholds: their category is stable
    assert res.stable[0] and res.stable[1]
    props = res.proportions()
    assert props["vision"] == pytest.approx(0.1) and props["language"] == pytest.approx(0.1)
    assert sum(props.values()) == pytest.approx(1.0)
    frame = res.to_frame()
    assert list(frame.category[:3]) == ["vision", "language", CROSS_MODAL]
    assert (frame.ci_low <= frame.mds + 1e-9).iloc[:10].all() and (frame.ci_high >= frame.mds - 1e-9).iloc[:10].all()


def test_pairs_zero_in_both_are_excluded():
    img = np.array([[1.0], [0.0], [0.0], [3.0]])
    txt = np.array([[1.0], [0.0], [2.0], [1.0]])
    scores, n_active = dominance_scores({"image": img, "text": txt})
    # pair 1 is zero in both: mean over pairs 0, 2, 3 of 0.5, 0, 0.75
    assert n_active[0] == 3
    assert scores[0, 0] == pytest.approx((0.5 + 0.0 + 0.75) / 3, abs=1e-6)


def test_thresholds_follow_k():
    scores = np.array([[0.9, 0.1], [0.5, 0.5], [0.45, 0.55], [0.55, 0.45], [0.1, 0.9]])
    cats, mu, sigma = categorize(scores, k=1.0, category_names=["vision", "language"])
    assert mu[0] == pytest.approx(0.5) and sigma[0] == pytest.approx(scores[:, 0].std())
    assert list(cats) == ["vision", CROSS_MODAL, CROSS_MODAL, CROSS_MODAL, "language"]
    cats_wide, _, _ = categorize(scores, k=3.0, category_names=["vision", "language"])
    assert set(cats_wide) == {CROSS_MODAL}


def test_bootstrap_ci_covers_true_value():
    # z_v = s r, z_t = s (1 - r) with r ~ Beta(a, b): true MDS = a / (a + b)
    rng = np.random.default_rng(3)
    n, f = 400, 40
    a = rng.uniform(0.5, 5, f)
    b = rng.uniform(0.5, 5, f)
    s = rng.exponential(1.0, (n, f))
    r = rng.beta(a, b, (n, f))
    lo, hi, sd = bootstrap_dominance({"image": s * r, "text": s * (1 - r)}, n_boot=500, seed=0)
    truth = a / (a + b)
    covered = (lo[:, 0] <= truth) & (truth <= hi[:, 0])
    assert covered.mean() >= 0.85  # nominal 95 %
    assert (sd[:, 0] > 0).all() and (hi[:, 0] - lo[:, 0] < 0.15).all()
    # two modalities: the text interval mirrors the image one
    np.testing.assert_allclose(lo[:, 1], 1 - hi[:, 0], atol=1e-5)


def test_general_k_modalities():
    rng = np.random.default_rng(0)
    n = 200
    audio = np.zeros((n, 12))
    text = np.zeros((n, 12))
    video = np.zeros((n, 12))
    audio[:, 0] = 1.0
    text[:, 1] = 1.0
    video[:, 2] = 1.0
    for j in range(3, 12):
        audio[:, j], text[:, j], video[:, j] = rng.dirichlet([30, 30, 30], n).T
    res = analyze_dominance({"audio": audio, "text": text, "video": video}, n_boot=100)
    assert res.scores.shape == (12, 3)
    np.testing.assert_allclose(res.scores.sum(axis=1), 1.0, atol=1e-6)
    assert list(res.categories[:3]) == ["audio", "language", "video"]
    assert res.stable[:3].all()
    assert set(res.categories[3:]) == {CROSS_MODAL}
    assert "dominance_video" in res.to_frame().columns


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match="negative"):
        analyze_mds(np.array([[-1.0]]), np.array([[1.0]]), n_boot=0)
    with pytest.raises(ValueError, match="text"):
        analyze_mds(np.ones((3, 2)), np.ones((4, 2)), n_boot=0)
    with pytest.raises(ValueError, match="at least 2"):
        analyze_dominance({"image": np.ones((3, 2))})


def test_rarely_active_feature_is_never_stable():
    img, txt = _known_activations(n=100)  # features 0..9 as above, 10 silent
    img[0, 10] = 1.0  # feature 10 fires once, on an image only: MDS 1 from a single pair
    res = analyze_mds(img, txt, n_boot=100, min_active=5)
    assert res.categories[10] == "vision" and res.n_active[10] == 1
    assert res.stable[0] and not res.stable[10]


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, (12, 3), elements=st.one_of(st.just(0.0), st.floats(1e-3, 5))),
    arrays(np.float64, (12, 3), elements=st.one_of(st.just(0.0), st.floats(1e-3, 5))),
    st.floats(0.1, 10),
)
def test_mds_symmetry_and_scale_invariance(img, txt, scale):
    """Swapping modalities maps MDS to 1 - MDS; scaling a feature on both sides leaves it unchanged; MDS in [0, 1].
    (Activations are float32 inside, so values are kept clear of float32 underflow.)"""
    mds = modality_dominance_score(img, txt, eps=0)
    swapped = modality_dominance_score(txt, img, eps=0)
    live = np.isfinite(mds)
    np.testing.assert_allclose(swapped[live], 1 - mds[live], atol=1e-6)
    np.testing.assert_allclose(modality_dominance_score(img * scale, txt * scale, eps=0), mds, atol=1e-6)
    assert ((mds[live] >= 0) & (mds[live] <= 1)).all()
    assert np.array_equal(live, ((img + txt) > 0).any(axis=0))

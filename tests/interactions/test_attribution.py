"""Known-answer tests for feature-level attribution: permutation Shapley, exact enumeration, Integrated Gradients."""

from __future__ import annotations

import numpy as np
import pytest
import shapiq
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modalens.data.dataset import Modality, MultimodalDataset
from modalens.interactions.attribution import (
    FEATURE_METHODS,
    AttributionError,
    FeatureAttribution,
    exact_feature_shapley,
    integrated_gradients,
    list_feature_methods,
    permutation_shapley,
)
from modalens.interactions.coalitions import InterruptedExplanation
from modalens.models import CallablePredictor, Masker, TorchPredictor

T_TEXT, T_VIS, D = 4, 3, 2


def make_dataset(n: int = 6, seed: int = 0, classes: bool = False) -> MultimodalDataset:
    """Two modalities; text has padding (instance 0 lacks its last word, instance 1 its last two)."""
    rng = np.random.default_rng(seed)
    text = rng.normal(size=(n, T_TEXT, D)).astype(np.float32)
    vision = rng.normal(size=(n, T_VIS, D)).astype(np.float32)
    mask = np.ones((n, T_TEXT), bool)
    mask[0, 3] = False
    mask[1, 2:] = False
    vocab = ["great", "movie", "not", "bad", "so"]
    words = [[vocab[(i + t) % len(vocab)] for t in range(int(mask[i].sum()))] for i in range(n)]
    labels = rng.integers(0, 3, size=n) if classes else rng.normal(size=n).astype(np.float32)
    return MultimodalDataset(
        [
            Modality("text", "text", text, mask=mask, words=words, feature_names=["e0", "e1"]),
            Modality("vision", "vision", vision, feature_names=["Joy", "AU12"]),
        ],
        labels,
    )


W = {
    "text": np.array([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25], [2.0, 1.0]]),
    "vision": np.array([[0.7, -0.3], [1.2, 2.2], [-0.9, 0.4]]),
}


def linear_fn(values: dict[str, np.ndarray]) -> np.ndarray:
    return sum((values[m] * W[m][None]).sum((1, 2)) for m in W)


def nonlinear_fn(values: dict[str, np.ndarray]) -> np.ndarray:
    """Products and a max across modalities: strong interactions, so Shapley values are not w * x."""
    t, v = values["text"], values["vision"]
    return (
        t[:, 0, 0] * v[:, 1, 1]
        + np.maximum(t[:, 1, 1], v[:, 0, 0])
        + t[:, :, 0].sum(1) * 0.5
        + np.tanh(t[:, 2, 1] * v[:, 2, 0] * t[:, 3, 0])
    )


def masked_input(ds: MultimodalDataset, i: int, keep_slots: np.ndarray, masker: Masker) -> dict[str, np.ndarray]:
    """Instance i with step players outside keep_slots at the baseline, built independently of the library."""
    out, o = {}, 0
    for name in ("text", "vision"):
        m = ds[name]
        t, d = m.values.shape[1:]
        keep = keep_slots[o : o + t] | ~m.step_mask()[i]
        base = masker.baseline(name, t, d)
        out[name] = np.where(keep[:, None], m.values[i], base)[None]
        o += t
    return out


def scale_of(attr: FeatureAttribution) -> float:
    return float(np.mean(np.abs(np.concatenate([v.ravel() for v in attr.values.values()]))))


def mean_abs_error(a: FeatureAttribution, b: FeatureAttribution) -> float:
    return float(np.mean(np.abs(np.concatenate([(a.values[m] - b.values[m]).ravel() for m in a.values]))))


# -- additive models: every method is exact ----------------------------------------------------------------------


@pytest.mark.parametrize("antithetic", [True, False])
def test_linear_model_steps_equal_w_times_x(antithetic: bool) -> None:
    ds = make_dataset()
    pred = CallablePredictor(linear_fn, ["text", "vision"])
    expected = {m: (ds[m].values * W[m][None]).sum(2) * ds[m].step_mask() for m in W}
    for attr in (
        exact_feature_shapley(pred, ds, progress=False),
        permutation_shapley(pred, ds, n_permutations=2, antithetic=antithetic, progress=False),
    ):
        for m in W:
            np.testing.assert_allclose(attr.values[m], expected[m], atol=1e-5)
        assert attr.values["text"][0, 3] == 0.0 and (attr.values["text"][1, 2:] == 0.0).all()


def test_linear_model_features_equal_summed_w_times_x() -> None:
    ds = make_dataset()
    pred = CallablePredictor(linear_fn, ["text", "vision"])
    expected = {m: (ds[m].values * W[m][None] * ds[m].step_mask()[:, :, None]).sum(1) for m in W}
    for attr in (
        exact_feature_shapley(pred, ds, granularity="features", progress=False),
        permutation_shapley(pred, ds, granularity="features", n_permutations=4, progress=False),
    ):
        assert attr.granularity == "features" and attr.values["vision"].shape == (len(ds), D)
        for m in W:
            np.testing.assert_allclose(attr.values[m], expected[m], atol=1e-5)


def test_mean_baseline_gives_w_times_x_minus_baseline() -> None:
    ds = make_dataset()
    masker = Masker("mean").fit(ds)
    pred = CallablePredictor(linear_fn, ["text", "vision"], masker=masker)
    attr = permutation_shapley(pred, ds, n_permutations=2, progress=False)
    for m in W:
        b = masker.baseline(m, *ds[m].values.shape[1:])
        expected = ((ds[m].values - b[None]) * W[m][None]).sum(2) * ds[m].step_mask()
        np.testing.assert_allclose(attr.values[m], expected, atol=1e-5)


# -- nonlinear models: exact enumeration against an independent reference; the estimator against exact -----------


def test_exact_matches_shapiq_on_nonlinear_model() -> None:
    ds = make_dataset(n=3)
    masker = Masker()
    pred = CallablePredictor(nonlinear_fn, ["text", "vision"], masker=masker)
    exact = exact_feature_shapley(pred, ds, progress=False)
    for i in range(len(ds)):
        slots = np.concatenate([ds["text"].step_mask()[i], np.ones(T_VIS, bool)])
        players = np.flatnonzero(slots)

        def game(coalitions: np.ndarray, i: int = i, players: np.ndarray = players) -> np.ndarray:
            out = []
            for row in coalitions:
                keep = np.zeros(T_TEXT + T_VIS, bool)
                keep[players[row.astype(bool)]] = True
                out.append(nonlinear_fn(masked_input(ds, i, keep, masker))[0])
            return np.asarray(out)

        sv = shapiq.ExactComputer(game, n_players=len(players))("SV", order=1)
        reference = np.zeros(T_TEXT + T_VIS)
        reference[players] = [sv[(j,)] for j in range(len(players))]
        ours = np.concatenate([exact.values["text"][i], exact.values["vision"][i]])
        np.testing.assert_allclose(ours, reference, atol=1e-9)


def test_permutation_error_against_exact_is_small_and_shrinks(record_property: pytest.RecordProperty) -> None:
    ds = make_dataset(n=8, seed=3)
    pred = CallablePredictor(nonlinear_fn, ["text", "vision"])
    exact = exact_feature_shapley(pred, ds, progress=False)
    scale = scale_of(exact)
    errors = {}
    for n_perm in (4, 16, 64, 256):
        runs = [permutation_shapley(pred, ds, n_permutations=n_perm, seed=s, progress=False) for s in range(3)]
        errors[n_perm] = float(np.mean([mean_abs_error(r, exact) for r in runs]) / scale)
    record_property("relative_mean_abs_error_by_permutations", errors)
    print("permutation Shapley, mean abs error / mean |phi|:", errors)
    assert errors[64] < 0.05
    assert errors[4] > errors[16] > errors[64] > errors[256]
    # Monte-Carlo error falls like 1/sqrt(n): 64x the permutations should cut it by far more than 2x
    assert errors[256] < errors[4] / 3


def test_std_error_is_calibrated() -> None:
    ds = make_dataset(n=8, seed=5)
    pred = CallablePredictor(nonlinear_fn, ["text", "vision"])
    exact = exact_feature_shapley(pred, ds, progress=False)
    est = permutation_shapley(pred, ds, n_permutations=32, seed=1, progress=False)
    err = np.concatenate([np.abs(est.values[m] - exact.values[m]).ravel() for m in W])
    se = np.concatenate([est.std_error[m].ravel() for m in W])
    real = se > 0  # padded steps: value 0, error 0
    assert (err[real] <= 3 * se[real] + 1e-9).mean() > 0.9
    conv = est.convergence()
    assert 0 < conv["mean_relative"] <= conv["max_relative"] < 1
    assert conv["max_std_error"] == pytest.approx(np.nanmax(se))


def test_antithetic_beats_independent_orders_on_nearly_additive_model() -> None:
    ds = make_dataset(n=8, seed=7)

    def nearly_additive(values: dict[str, np.ndarray]) -> np.ndarray:
        return linear_fn(values) + 0.1 * values["text"][:, 0, 0] * values["vision"][:, 0, 0]

    pred = CallablePredictor(nearly_additive, ["text", "vision"])
    exact = exact_feature_shapley(pred, ds, progress=False)
    anti = np.mean(
        [
            mean_abs_error(permutation_shapley(pred, ds, n_permutations=8, seed=s, progress=False), exact)
            for s in range(4)
        ]
    )
    plain = np.mean(
        [
            mean_abs_error(
                permutation_shapley(pred, ds, n_permutations=8, antithetic=False, seed=s, progress=False), exact
            )
            for s in range(4)
        ]
    )
    assert anti < plain


def test_orthogonal_orders_are_uniform_permutations_spread_in_blocks() -> None:
    from modalens.interactions.attribution import _orthogonal_directions

    rng = np.random.default_rng(0)
    keys = _orthogonal_directions(rng, 20, 6)  # 4 blocks of 5 directions (p - 1)
    assert keys.shape == (20, 6)
    np.testing.assert_allclose(keys.sum(axis=1), 0, atol=1e-12)  # orthogonal to the all-ones vector
    block = keys[:5]
    np.testing.assert_allclose(block @ block.T, np.eye(5), atol=1e-12)  # mutually orthogonal within a block
    # every order is equally likely: over many draws each player takes each position about 1/p of the time
    ranks = np.argsort(np.argsort(_orthogonal_directions(rng, 12_000, 4), axis=1), axis=1)
    share = np.stack([(ranks == k).mean(axis=0) for k in range(4)])
    np.testing.assert_allclose(share, 0.25, atol=0.02)


def test_orthogonal_orders_are_unbiased_and_beat_random_orders() -> None:
    pred = CallablePredictor(nonlinear_fn, ["text", "vision"])
    ds = make_dataset(n=8, seed=11)
    exact = exact_feature_shapley(pred, ds, progress=False)
    runs = [permutation_shapley(pred, ds, n_permutations=6, seed=s, progress=False) for s in range(40)]
    # unbiased: the mean over seeds approaches the exact values, far closer than any single run does
    mean = {m: np.mean([r.values[m] for r in runs], axis=0) for m in W}
    single = np.mean([mean_abs_error(r, exact) for r in runs])
    assert np.mean([np.abs(mean[m] - exact.values[m]).mean() for m in W]) < single / 3
    # at equal cost closer to the truth than independent orders, over several instance sets
    errors = {"orthogonal": [], "random": []}
    for data_seed in (3, 5, 11):
        ds = make_dataset(n=8, seed=data_seed)
        exact = exact_feature_shapley(pred, ds, progress=False)
        for orders, errs in errors.items():
            errs += [
                mean_abs_error(
                    permutation_shapley(pred, ds, n_permutations=16, orders=orders, seed=s, progress=False), exact
                )
                for s in range(30)
            ]
    assert np.mean(errors["orthogonal"]) < 0.95 * np.mean(errors["random"])
    with pytest.raises(AttributionError, match="orders"):
        permutation_shapley(pred, ds, orders="sobol", progress=False)


def test_efficiency_and_base_value() -> None:
    ds = make_dataset(n=5, seed=2)
    masker = Masker("mean").fit(ds)
    pred = CallablePredictor(nonlinear_fn, ["text", "vision"], masker=masker)
    for attr in (
        exact_feature_shapley(pred, ds, progress=False),
        permutation_shapley(pred, ds, n_permutations=3, progress=False),
        permutation_shapley(pred, ds, granularity="features", n_permutations=3, progress=False),
    ):
        np.testing.assert_allclose(attr.total(), attr.prediction - attr.base_value, atol=1e-9)
        np.testing.assert_allclose(attr.prediction, nonlinear_fn(ds.arrays()), atol=1e-6)
        for i in range(len(ds)):
            empty = masked_input(ds, i, np.zeros(T_TEXT + T_VIS, bool), masker)
            assert attr.base_value[i] == pytest.approx(nonlinear_fn(empty)[0], abs=1e-6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_perm=st.integers(1, 9), antithetic=st.booleans())
def test_efficiency_holds_for_any_sample(seed: int, n_perm: int, antithetic: bool) -> None:
    ds = make_dataset(n=3, seed=seed)
    pred = CallablePredictor(nonlinear_fn, ["text", "vision"])
    attr = permutation_shapley(pred, ds, n_permutations=n_perm, antithetic=antithetic, seed=seed, progress=False)
    np.testing.assert_allclose(attr.total(), attr.prediction - attr.base_value, atol=1e-9)
    assert attr.values["text"][0, 3] == 0.0


def test_cost_results_independent_of_batching_and_index() -> None:
    ds = make_dataset(n=6)
    pred = CallablePredictor(nonlinear_fn, ["text", "vision"])
    big = permutation_shapley(pred, ds, n_permutations=6, progress=False)
    small = permutation_shapley(pred, ds, n_permutations=6, batch_size=7, progress=False)
    sub = permutation_shapley(pred, ds, n_permutations=6, index=np.array([4, 1]), progress=False)
    for m in W:
        np.testing.assert_array_equal(big.values[m], small.values[m])
        np.testing.assert_array_equal(sub.values[m], big.values[m][[4, 1]])
    np.testing.assert_array_equal(sub.instances, [4, 1])
    players = ds["text"].step_mask().sum(1) + T_VIS
    assert big.n_evaluations == int((2 + 6 * (players - 1)).sum())
    # an odd count with antithetic pairs rounds up to the next pair
    assert permutation_shapley(pred, ds, n_permutations=5, progress=False).info["n_permutations"] == 6


# -- targets -------------------------------------------------------------------------------------------------------


def softmax_model(values: dict[str, np.ndarray]) -> np.ndarray:
    logits = np.stack([linear_fn(values), values["vision"][:, 0, 0] * 2, -values["text"][:, 0, 1]], 1)
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_classification_target_selection() -> None:
    ds = make_dataset(n=6, classes=True)
    pred = CallablePredictor(softmax_model, ["text", "vision"], output_kind="classification")
    probs = softmax_model(ds.arrays())
    auto = exact_feature_shapley(pred, ds, progress=False)
    np.testing.assert_array_equal(auto.target, probs.argmax(1))
    np.testing.assert_allclose(auto.prediction, probs.max(1), atol=1e-6)
    fixed = exact_feature_shapley(pred, ds, target=2, progress=False)
    assert (fixed.target == 2).all()
    np.testing.assert_allclose(fixed.total(), probs[:, 2] - fixed.base_value, atol=1e-6)
    per_row = np.array([0, 1, 2, 0, 1, 2])
    chosen = exact_feature_shapley(pred, ds, target=per_row, progress=False)
    np.testing.assert_array_equal(chosen.target, per_row)
    sub = exact_feature_shapley(pred, ds, target=per_row, index=np.array([5, 2]), progress=False)
    np.testing.assert_array_equal(sub.target, [2, 2])
    np.testing.assert_allclose(sub.values["text"], chosen.values["text"][[5, 2]])


def test_bad_arguments_are_named() -> None:
    ds = make_dataset(n=4, classes=True)
    pred = CallablePredictor(softmax_model, ["text", "vision"], output_kind="classification")
    with pytest.raises(AttributionError, match="target"):
        permutation_shapley(pred, ds, target=3, progress=False)
    with pytest.raises(AttributionError, match="target"):
        permutation_shapley(pred, ds, target=np.array([0, 1, 2]), progress=False)
    with pytest.raises(AttributionError, match="granularity"):
        permutation_shapley(pred, ds, granularity="words", progress=False)
    with pytest.raises(AttributionError, match="index"):
        permutation_shapley(pred, ds, index=np.array([0, 9]), progress=False)
    with pytest.raises(AttributionError, match="lacks"):
        permutation_shapley(CallablePredictor(softmax_model, ["text", "audio"]), ds, progress=False)
    with pytest.raises(AttributionError, match="n_permutations"):
        permutation_shapley(pred, ds, n_permutations=0, progress=False)
    with pytest.raises(AttributionError, match="TorchPredictor"):
        integrated_gradients(pred, ds, progress=False)


def test_exact_refuses_too_many_players() -> None:
    rng = np.random.default_rng(0)
    ds = MultimodalDataset([Modality("audio", "audio", rng.normal(size=(2, 20, 1)))])
    pred = CallablePredictor(lambda v: v["audio"].sum((1, 2)), ["audio"])
    with pytest.raises(AttributionError, match=r"at most 14 players.*row 0 has 20"):
        exact_feature_shapley(pred, ds, progress=False)
    # the same data at feature granularity has one player and is fine
    attr = exact_feature_shapley(pred, ds, granularity="features", progress=False)
    np.testing.assert_allclose(attr.values["audio"][:, 0], ds["audio"].values.sum((1, 2)), rtol=1e-5)


# -- Integrated Gradients --------------------------------------------------------------------------------------------


class LinearTorch(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w_text = torch.nn.Parameter(torch.tensor(W["text"], dtype=torch.float32))
        self.w_vision = torch.nn.Parameter(torch.tensor(W["vision"], dtype=torch.float32))

    def forward(self, text: torch.Tensor, vision: torch.Tensor) -> torch.Tensor:
        return (text * self.w_text).sum((1, 2)) + (vision * self.w_vision).sum((1, 2))


def test_integrated_gradients_on_linear_torch_model() -> None:
    ds = make_dataset()
    masker = Masker({"text": "zeros", "vision": "mean"}).fit(ds)
    pred = TorchPredictor(LinearTorch(), ["text", "vision"], masker=masker)
    steps = integrated_gradients(pred, ds, n_steps=8, progress=False)
    feats = integrated_gradients(pred, ds, granularity="features", n_steps=8, batch_size=16, progress=False)
    for m in W:
        b = masker.baseline(m, *ds[m].values.shape[1:])
        cells = (ds[m].values - b[None]) * W[m][None] * ds[m].step_mask()[:, :, None]
        np.testing.assert_allclose(steps.values[m], cells.sum(2), atol=1e-4)
        np.testing.assert_allclose(feats.values[m], cells.sum(1), atol=1e-4)
    assert steps.std_error is None and steps.info["max_completeness_gap"] < 1e-4
    np.testing.assert_allclose(steps.total(), steps.prediction - steps.base_value, atol=1e-4)


def test_integrated_gradients_classification_agrees_with_completeness() -> None:
    torch.manual_seed(0)
    ds = make_dataset(n=5, classes=True)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(T_TEXT * D, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
    )

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net, self.vis = net, torch.nn.Linear(T_VIS * D, 3)

        def forward(self, text: torch.Tensor, vision: torch.Tensor) -> torch.Tensor:
            return self.net(text) + self.vis(vision.flatten(1))

    pred = TorchPredictor(Head(), ["text", "vision"], output_kind="classification")
    attr = integrated_gradients(pred, ds, n_steps=64, progress=False)
    probs = pred.predict(ds.arrays(), ds.masks())
    np.testing.assert_array_equal(attr.target, probs.argmax(1))
    np.testing.assert_allclose(attr.total(), attr.prediction - attr.base_value, atol=2e-3)
    assert (attr.values["text"][1, 2:] == 0).all()


# -- interruption, tables, registry ---------------------------------------------------------------------------------


def test_interrupt_keeps_finished_instances() -> None:
    ds = make_dataset(n=6)
    calls = {"n": 0}

    def flaky(values: dict[str, np.ndarray]) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return nonlinear_fn(values)

    full = permutation_shapley(
        CallablePredictor(nonlinear_fn, ["text", "vision"]), ds, n_permutations=4, batch_size=40, progress=False
    )
    with pytest.raises(InterruptedExplanation) as info:
        permutation_shapley(
            CallablePredictor(flaky, ["text", "vision"]), ds, n_permutations=4, batch_size=40, progress=False
        )
    finished, partial = info.value.finished, info.value.partial
    assert 0 < len(finished) < len(ds)
    assert isinstance(partial, FeatureAttribution)
    np.testing.assert_array_equal(partial.instances, finished)
    for m in W:
        np.testing.assert_array_equal(partial.values[m], full.values[m][finished])


def test_to_frame_lists_real_steps_with_tokens_and_named_features() -> None:
    ds = make_dataset(n=3)
    pred = CallablePredictor(linear_fn, ["text", "vision"])
    steps = permutation_shapley(pred, ds, n_permutations=2, progress=False).to_frame(ds)
    assert list(steps.columns[:6]) == ["instance", "modality", "position", "feature", "value", "token"]
    text = steps[steps.modality == "text"]
    assert len(text) == int(ds["text"].step_mask().sum())  # 3 + 2 + 4 real words
    assert (text.feature == "*").all()
    row = text[(text.instance == 2) & (text.position == 1)].iloc[0]
    assert row.token == ds["text"].words[2][1]
    assert steps[steps.modality == "vision"].token.isna().all()
    feats = exact_feature_shapley(pred, ds, granularity="features", progress=False).to_frame(ds)
    assert (feats.position == -1).all() and len(feats) == 3 * (D + D)
    joy = feats[(feats.modality == "vision") & (feats.feature == "Joy")].sort_values("instance")
    np.testing.assert_allclose(joy.value, (ds["vision"].values[:, :, 0] * W["vision"][:, 0]).sum(1), atol=1e-5)


def test_registry() -> None:
    assert list_feature_methods() == ["exact", "integrated_gradients", "permutation"]
    assert FEATURE_METHODS["permutation"].run is permutation_shapley


@pytest.mark.slow
def test_reference_lstm_with_masks_and_mean_baseline() -> None:
    """A real reference model (late-fusion LSTMs on packed sequences, masks passed): the estimators agree."""
    from modalens.models.reference import build_model, make_config

    torch.manual_seed(0)
    ds = make_dataset(n=4, seed=11)
    model = build_model(make_config("late_lstm", {"text": D, "vision": D}))
    pred = TorchPredictor(model, ["text", "vision"], pass_masks=True, masker=Masker("mean").fit(ds))
    exact = exact_feature_shapley(pred, ds, progress=False)
    perm = permutation_shapley(pred, ds, n_permutations=64, progress=False)
    ig = integrated_gradients(pred, ds, n_steps=64, progress=False)
    assert mean_abs_error(perm, exact) / scale_of(exact) < 0.05
    np.testing.assert_allclose(perm.total(), exact.prediction - exact.base_value, atol=1e-5)
    np.testing.assert_allclose(ig.base_value, exact.base_value, atol=1e-5)
    assert ig.info["max_completeness_gap"] < 1e-2
    assert (ig.values["text"][~ds["text"].step_mask()] == 0).all()
    # IG and Shapley are different attributions, but on this smooth model they rank the players alike
    ig_flat, exact_flat = (np.concatenate([a.values[m].ravel() for m in W]) for a in (ig, exact))
    assert np.corrcoef(ig_flat, exact_flat)[0, 1] > 0.8


def test_instances_with_zero_or_one_player() -> None:
    rng = np.random.default_rng(1)
    text_mask = np.array([[False, False], [True, False], [True, True]])
    ds = MultimodalDataset(
        [
            Modality("text", "text", rng.normal(size=(3, 2, 1)), mask=text_mask),
            Modality("tab", "tabular", rng.normal(size=(3, 1)), mask=np.array([[False], [False], [True]])),
        ]
    )

    def fn(values: dict[str, np.ndarray]) -> np.ndarray:
        return np.exp(values["text"][:, :, 0].sum(1)) * (1 + values["tab"][:, 0, 0])

    pred = CallablePredictor(fn, ["text", "tab"])
    exact = exact_feature_shapley(pred, ds, progress=False)
    perm = permutation_shapley(pred, ds, n_permutations=4, progress=False)
    for attr in (exact, perm):
        assert attr.values["text"][0].tolist() == [0.0, 0.0] and attr.values["tab"][:2, 0].tolist() == [0.0, 0.0]
        assert attr.prediction[0] == attr.base_value[0]  # no players: nothing to share out
        np.testing.assert_allclose(attr.values["text"][1, 0], attr.prediction[1] - attr.base_value[1])
        np.testing.assert_allclose(attr.total(), attr.prediction - attr.base_value, atol=1e-12)
    assert perm.std_error["text"][1, 0] == 0.0  # a lone player is known exactly
    assert perm.n_evaluations == 2 + 2 + (2 + 4 * 2)

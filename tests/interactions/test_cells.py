"""Known-answer tests for the "cells" granularity: each (step, named feature) of a modality is a player."""

from __future__ import annotations

import math
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from modalens.data.dataset import Modality, MultimodalDataset
from modalens.data.synthetic import GLASS_BOX_WEIGHTS, make_synthetic
from modalens.interactions import explain, load_run
from modalens.interactions.attribution import (
    AttributionError,
    attribute_cells,
    exact_feature_shapley,
    integrated_gradients,
    permutation_shapley,
)
from modalens.interactions.config import ExplainConfig
from modalens.models import CallablePredictor, Masker, TorchPredictor
from modalens.models.glass_box import glass_box_model

# the glass box reads one feature of each modality: text valence (summed), audio F0 and vision AU12 (averaged)
READ = {"text": 0, "audio": 0, "vision": 2}
WEIGHT = dict(zip(("text", "audio", "vision"), GLASS_BOX_WEIGHTS, strict=True))


def glass_box_cells(ds: MultimodalDataset, masker: Masker) -> dict[str, np.ndarray]:
    """The glass box's exact cell contributions ``[N, T, D]``, from its formula: w * (x - b) on the one feature it
    reads, over the step count for the averaged modalities; 0 on every other cell and on padding."""
    mask = ds["text"].step_mask()
    count = np.maximum(mask.sum(1), 1)[:, None]
    out = {}
    for m, d in READ.items():
        x = ds[m].values.astype(np.float64)
        b = masker.baseline(m, x.shape[1], x.shape[2]).astype(np.float64)
        cells = np.zeros_like(x)
        scale = 1.0 if m == "text" else 1.0 / count
        cells[:, :, d] = WEIGHT[m] * (x[:, :, d] - b[None, :, d]) * mask * scale
        out[m] = cells
    return out


@pytest.fixture(scope="module")
def synthetic() -> MultimodalDataset:
    return make_synthetic(24, steps=6, seed=3)


@pytest.fixture(scope="module")
def glass_box(synthetic: MultimodalDataset) -> CallablePredictor:
    pred = glass_box_model()
    pred.masker = Masker("mean").fit(synthetic)  # a non-zero baseline, so x - b is not just x
    return pred


# -- the additive glass box: cells are exact -----------------------------------------------------------------------


@pytest.mark.parametrize("walks", [2, 8])
def test_glass_box_cells_equal_the_known_contributions(synthetic, glass_box, walks) -> None:
    attr = permutation_shapley(glass_box, synthetic, granularity="cells", n_permutations=walks, progress=False)
    expected = glass_box_cells(synthetic, glass_box.masker)
    assert attr.granularity == "cells"
    for m in READ:
        assert attr.values[m].shape == synthetic[m].values.shape
        np.testing.assert_allclose(attr.values[m], expected[m], atol=2e-5)
    # the model reads one feature per modality: every other cell is exactly 0 (not merely small)
    assert (attr.values["text"][:, :, 1:] == 0).all() and (attr.values["vision"][:, :, :2] == 0).all()


def test_glass_box_cells_sum_over_steps_to_the_features_granularity(synthetic, glass_box) -> None:
    cells = permutation_shapley(glass_box, synthetic, granularity="cells", n_permutations=4, progress=False)
    features = permutation_shapley(glass_box, synthetic, granularity="features", n_permutations=4, progress=False)
    steps = permutation_shapley(glass_box, synthetic, granularity="steps", n_permutations=4, progress=False)
    for m in READ:
        np.testing.assert_allclose(cells.values[m].sum(1), features.values[m], atol=2e-5)
        np.testing.assert_allclose(cells.values[m].sum(2), steps.values[m], atol=2e-5)


def test_cells_add_up_to_the_output_change_for_every_instance(synthetic) -> None:
    """Efficiency on a model with strong interactions, checked against f(x) - f(every cell masked) computed here."""

    def tangled(values: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        t, a, v = values["text"], values["audio"], values["vision"]
        return np.tanh(t[:, :, 0].sum(1) * v[:, :, 2].mean(1)) + np.maximum(a[:, :, 0], t[:, :, 1]).max(1) * 0.3

    pred = CallablePredictor(tangled, ["text", "audio", "vision"])
    pred.masker = Masker("mean").fit(synthetic)
    attr = permutation_shapley(pred, synthetic, granularity="cells", n_permutations=4, seed=5, progress=False)
    masks = {m: synthetic[m].step_mask() for m in READ}
    full = tangled({m: synthetic[m].values for m in READ}, masks)
    empty = tangled({m: pred.masker.apply(m, synthetic[m].values, ~masks[m][:, :, None]) for m in READ}, masks)
    np.testing.assert_allclose(attr.prediction, full, atol=1e-6)
    np.testing.assert_allclose(attr.base_value, empty, atol=1e-6)
    np.testing.assert_allclose(attr.total(), full - empty, atol=1e-5)
    assert np.abs(attr.total()).max() > 0.1  # not a model that is flat on this data
    # an interacting model: the walks disagree, so the standard errors are positive where a cell matters
    assert np.nanmax(attr.std_error["vision"]) > 0


def test_padding_steps_are_not_players(synthetic, glass_box) -> None:
    attr = permutation_shapley(glass_box, synthetic, granularity="cells", n_permutations=2, progress=False)
    pad = ~synthetic["text"].step_mask()
    assert pad.any()
    for m in READ:
        assert (attr.values[m][pad] == 0).all() and (attr.std_error[m][pad] == 0).all()
    frame = attr.to_frame(synthetic)
    real = int(synthetic["text"].step_mask().sum())
    assert len(frame) == 3 * real * 3  # three modalities x real steps x three named features
    assert (frame["position"] >= 0).all() and not (frame["feature"] == "*").any()
    assert set(frame.loc[frame["modality"] == "vision", "feature"]) == {"Joy", "Sadness", "AU12"}
    one = frame[(frame["instance"] == 2) & (frame["modality"] == "text") & (frame["feature"] == "valence")]
    assert one["token"].tolist() == synthetic["text"].words[2]  # the word at each step
    np.testing.assert_allclose(one["value"], attr.values["text"][2, : len(one), 0])


# -- exact enumeration on a tiny instance --------------------------------------------------------------------------


def tiny() -> MultimodalDataset:
    """Two modalities of 2 steps x 2 named features; instance 1 lacks its second text step (6 players, not 8)."""
    rng = np.random.default_rng(7)
    text = rng.normal(size=(3, 2, 2)).astype(np.float32)
    vision = rng.normal(size=(3, 2, 2)).astype(np.float32)
    mask = np.ones((3, 2), bool)
    mask[1, 1] = False
    return MultimodalDataset(
        [
            Modality("text", "text", text, mask=mask, feature_names=["e0", "e1"]),
            Modality("vision", "vision", vision, feature_names=["Joy", "AU12"]),
        ],
        rng.normal(size=3).astype(np.float32),
    )


def interacting(values: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
    t, v = values["text"] * masks["text"][:, :, None], values["vision"]
    return t[:, 0, 0] * v[:, 1, 1] + np.maximum(t[:, 1, 1], v[:, 0, 0]) + np.tanh(t[:, :, 0].sum(1) * v[:, 0, 1])


def brute_force_shapley(ds: MultimodalDataset, i: int, masker: Masker) -> dict[str, np.ndarray]:
    """Shapley values of instance i's real cells by the textbook formula, written independently of the library."""
    cells = [(m, t, d) for m in ("text", "vision") for t in range(2) for d in range(2) if ds[m].step_mask()[i, t]]
    n = len(cells)

    def value(coalition: frozenset) -> float:
        inputs = {}
        for m in ("text", "vision"):
            x = ds[m].values[i].copy()
            b = masker.baseline(m, 2, 2)
            for t in range(2):
                for d in range(2):
                    if ds[m].step_mask()[i, t] and (m, t, d) not in coalition:
                        x[t, d] = b[t, d]
            inputs[m] = x[None]
        return float(interacting(inputs, {m: ds[m].step_mask()[i : i + 1] for m in inputs})[0])

    out = {m: np.zeros((2, 2)) for m in ("text", "vision")}
    for j, cell in enumerate(cells):
        others = cells[:j] + cells[j + 1 :]
        for k in range(n):
            weight = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
            for s in combinations(others, k):
                out[cell[0]][cell[1], cell[2]] += weight * (value(frozenset(s) | {cell}) - value(frozenset(s)))
    return out


def test_exact_cells_match_the_textbook_formula_and_the_estimator_converges_to_them() -> None:
    ds = tiny()
    pred = CallablePredictor(interacting, ["text", "vision"])
    pred.masker = Masker("mean").fit(ds)
    exact = exact_feature_shapley(pred, ds, granularity="cells", progress=False)
    for i in range(len(ds)):
        expected = brute_force_shapley(ds, i, pred.masker)
        for m in expected:
            np.testing.assert_allclose(exact.values[m][i], expected[m], atol=1e-6)
    assert exact.n_evaluations == 2 * (2 + 2**8) + (2 + 2**6)  # instance 1 has 6 players
    sampled = permutation_shapley(pred, ds, granularity="cells", n_permutations=400, seed=1, progress=False)
    for m in ("text", "vision"):
        gap = np.abs(sampled.values[m] - exact.values[m])
        assert gap.max() < 0.05
        # within 4 standard errors (cells with no spread at all are exact)
        assert (gap <= 4 * sampled.std_error[m] + 1e-9).all()


def test_integrated_gradients_cells_of_a_linear_model_are_w_times_x_minus_b() -> None:
    import torch

    ds = tiny()
    w = {"text": torch.tensor([[1.0, -2.0], [0.5, 3.0]]), "vision": torch.tensor([[0.7, -0.3], [1.2, 2.2]])}

    class Linear(torch.nn.Module):
        def forward(self, text: torch.Tensor, vision: torch.Tensor) -> torch.Tensor:
            return (text * w["text"]).sum((1, 2)) + (vision * w["vision"]).sum((1, 2))

    pred = TorchPredictor(Linear(), ["text", "vision"])
    pred.masker = Masker("mean").fit(ds)
    attr = integrated_gradients(pred, ds, granularity="cells", progress=False)
    for m in ("text", "vision"):
        b = pred.masker.baseline(m, 2, 2)
        expected = (ds[m].values - b[None]) * w[m].numpy()[None] * ds[m].step_mask()[:, :, None]
        np.testing.assert_allclose(attr.values[m], expected, atol=1e-5)


# -- attribute_cells: the live server's entry ----------------------------------------------------------------------


def test_attribute_cells_reports_cost_and_does_not_depend_on_the_other_rows(synthetic, glass_box) -> None:
    one = attribute_cells(glass_box, synthetic, [5], n_permutations=4, seed=2)
    both = attribute_cells(glass_box, synthetic, np.array([1, 5]), n_permutations=4, seed=2)
    players = 9 * int(synthetic["text"].step_mask()[5].sum())
    assert one.evaluations == 2 + 4 * (players - 1)
    assert one.seconds > 0 and one.values["audio"].shape == (1, 6, 3)
    for m in READ:
        np.testing.assert_array_equal(one.values[m][0], both.values[m][1])
    frame = one.to_frame(synthetic)
    assert set(frame.columns) == {"instance", "modality", "position", "feature", "value", "token", "std_error"}
    assert (frame["instance"] == 5).all() and len(frame) == players
    np.testing.assert_allclose(frame["value"].sum(), one.prediction[0] - one.base_value[0], atol=1e-5)


def test_attribute_cells_std_error_shrinks_with_more_walks(synthetic) -> None:
    def bumpy(values: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        return np.sin(values["text"][:, :, 0].sum(1) * values["audio"][:, :, 0].sum(1))

    pred = CallablePredictor(bumpy, ["text", "audio", "vision"])
    pred.masker = Masker("mean").fit(synthetic)
    few = attribute_cells(pred, synthetic, [0, 1, 2], n_permutations=4)
    many = attribute_cells(pred, synthetic, [0, 1, 2], n_permutations=64)
    assert np.nanmean(many.std_error["text"]) < 0.5 * np.nanmean(few.std_error["text"])


@pytest.mark.parametrize("rows", [[], [[1, 2]], ["a"], [1.5]])
def test_attribute_cells_refuses_bad_rows(synthetic, glass_box, rows) -> None:
    with pytest.raises(AttributionError, match="rows"):
        attribute_cells(glass_box, synthetic, rows)


def test_attribute_cells_refuses_rows_outside_the_dataset(synthetic, glass_box) -> None:
    with pytest.raises(AttributionError, match="row numbers must lie"):
        attribute_cells(glass_box, synthetic, [len(synthetic)])


# -- through explain(): a granularity on request, its cost in the timings, a valid run ----------------------------


def test_cells_are_not_computed_by_default() -> None:
    assert "cells" not in ExplainConfig().granularities
    assert ExplainConfig(granularities=("cells",)).granularities == ("cells",)


def test_explain_with_cells_records_their_cost_and_keeps_features_apart(synthetic, glass_box, tmp_path: Path) -> None:
    common = {"n_permutations": 4, "progress": False, "projection": None, "templates": True}
    plain = explain(glass_box, synthetic, **common)
    both = explain(glass_box, synthetic, granularities=("steps", "features", "cells"), **common)
    timings = both.timings
    assert timings["cells"] > 0 and "features" in timings
    players = 9 * synthetic["text"].step_mask().sum(1)
    assert timings["cells_evaluations"] == float((2 + 4 * (players - 1)).sum())
    assert timings["features_evaluations"] == plain.timings["features_evaluations"]
    fa = both.feature_attributions
    cells = fa[(fa["position"] >= 0) & (fa["feature"] != "*")]
    assert len(cells) == 9 * int(synthetic["text"].step_mask().sum())
    # the steps and features rows are those of a run without cells; importance and templates ignore the cells
    rest = fa.drop(cells.index).reset_index(drop=True)
    np.testing.assert_allclose(rest["value"], plain.feature_attributions["value"])
    np.testing.assert_allclose(
        both.feature_importance()["mean_abs"].to_numpy(), plain.feature_importance()["mean_abs"].to_numpy()
    )
    assert len(both.templates) == len(plain.templates)
    # a feature's cells add up to its features value for this additive model, inside one run
    named = fa[(fa["position"] < 0) & (fa["feature"] != "*")].set_index(["instance", "modality", "feature"])
    summed = cells.groupby(["instance", "modality", "feature"])["value"].sum()
    np.testing.assert_allclose(summed.reindex(named.index).to_numpy(), named["value"].to_numpy(), atol=2e-5)
    # the run is valid and reads back whole
    path = both.save(tmp_path / "run")
    back = load_run(path)
    assert len(back.feature_attributions) == len(fa)
    assert back.timings["cells_evaluations"] == timings["cells_evaluations"]


def test_explain_with_only_cells() -> None:
    ds = make_synthetic(12, steps=4, seed=1)
    pred = glass_box_model()
    expl = explain(pred, ds, granularities=("cells",), n_permutations=2, progress=False, projection=None)
    assert "features" not in expl.timings and expl.timings["cells"] > 0
    fa = expl.feature_attributions
    assert (fa["position"] >= 0).all() and (fa["feature"] != "*").all()
    per_instance = fa.groupby("instance")["value"].sum().to_numpy()
    np.testing.assert_allclose(per_instance, expl.predictions - expl.base_values, atol=1e-5)

"""``orders="grid"``: walks within each modality, every interleaving of the modalities averaged exactly.

Known answers: exact for additive games; exact for one player against two (the antithetic pair covers both orders
of the two, the grid every interleaving); unbiased (the mean over seeds converges to the
exact values); efficiency holds for every walk; lower error than orthogonal walks at equal walks on a game with
cross-modal interactions.
"""

from __future__ import annotations

import numpy as np
import pytest

from modalens.data.dataset import Modality, MultimodalDataset
from modalens.interactions.attribution import AttributionError, exact_feature_shapley, permutation_shapley
from modalens.models import CallablePredictor, Masker


def game(steps_a: int = 2, steps_b: int = 3, n: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    ds = MultimodalDataset(
        [
            Modality("a", "audio", rng.normal(size=(n, steps_a, 3))),
            Modality("b", "vision", rng.normal(size=(n, steps_b, 2))),
        ]
    )

    def f(v):
        x, y = v["a"].sum((1, 2)), v["b"].sum((1, 2))
        return np.tanh(x * y) + np.maximum(v["a"][:, 0, 0], v["b"][:, -1, 1]) * v["a"][:, -1, 2]

    return ds, CallablePredictor(f, ["a", "b"], masker=Masker("zeros"))


def flat(fa) -> np.ndarray:
    return np.concatenate([fa.values["a"], fa.values["b"]], axis=1)


def test_exact_for_additive_games() -> None:
    ds, _ = game()
    weights = {"a": np.array([0.5, -1.0, 2.0]), "b": np.array([1.5, -0.5])}
    pred = CallablePredictor(lambda v: sum((v[m] * w).sum((1, 2)) for m, w in weights.items()), ["a", "b"])
    fa = permutation_shapley(pred, ds, n_permutations=2, orders="grid", progress=False)
    np.testing.assert_allclose(fa.values["a"], (ds["a"].values * weights["a"]).sum(2), atol=1e-9)
    np.testing.assert_allclose(fa.values["b"], (ds["b"].values * weights["b"]).sum(2), atol=1e-9)


def test_exact_for_one_player_against_two() -> None:
    ds, pred = game(1, 2)
    exact = exact_feature_shapley(pred, ds, progress=False)
    fa = permutation_shapley(pred, ds, n_permutations=2, orders="grid", progress=False)
    np.testing.assert_allclose(flat(fa), flat(exact), atol=1e-9)
    assert fa.n_evaluations == len(ds) * (2 + 2 * 2 * 3)  # per walk the 2 x 3 grid of prefixes


def test_unbiased_efficient_and_better_than_orthogonal_walks() -> None:
    ds, pred = game(3, 4)
    exact = flat(exact_feature_shapley(pred, ds, progress=False))
    runs = [permutation_shapley(pred, ds, n_permutations=2, orders="grid", seed=s, progress=False) for s in range(300)]
    mean = np.mean([flat(r) for r in runs], axis=0)
    spread = np.std([flat(r) for r in runs], axis=0) / np.sqrt(len(runs))
    assert (np.abs(mean - exact) <= 4 * spread + 1e-9).mean() > 0.95
    for r in runs[:20]:
        np.testing.assert_allclose(r.total(), r.prediction - r.base_value, atol=1e-9)

    def error(orders: str) -> float:
        return np.mean(
            [
                np.linalg.norm(
                    flat(permutation_shapley(pred, ds, n_permutations=8, orders=orders, seed=s, progress=False)) - exact
                )
                for s in range(8)
            ]
        )

    assert error("grid") < 0.8 * error("orthogonal")


def test_standard_errors_batching_and_limits() -> None:
    ds, pred = game(3, 4)
    fa = permutation_shapley(pred, ds, n_permutations=8, orders="grid", progress=False)
    assert fa.std_error is not None and np.isfinite(fa.std_error["a"]).all()
    assert fa.info["orders"] == "grid"
    small = permutation_shapley(pred, ds, n_permutations=8, orders="grid", progress=False, batch_size=7)
    np.testing.assert_allclose(flat(small), flat(fa), atol=1e-12)
    wide, wide_pred = game(300, 300, n=1)
    with pytest.raises(AttributionError, match="use orders='orthogonal'"):
        permutation_shapley(wide_pred, wide, n_permutations=2, orders="grid", progress=False)

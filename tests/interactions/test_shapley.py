"""Exact modality Shapley values: the axioms as properties, and agreement with shapiq."""

from itertools import combinations
from math import factorial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from tests.requirements import require_module

from modalens.interactions.coalitions import coalition_matrix
from modalens.interactions.shapley import interaction_indices, moebius_transform, shapley_values


def games(max_players: int = 6):
    """Random games: coalition values [1, 2**M, 1] for M players."""
    return st.integers(1, max_players).flatmap(
        lambda m: arrays(np.float64, (1, 2**m, 1), elements=st.floats(-100, 100, allow_nan=False))
    )


def brute_force_shapley(v: np.ndarray) -> np.ndarray:
    """Textbook definition, player by player and subset by subset (independent of the matrix form)."""
    m = int(np.log2(len(v)))
    phi = np.zeros(m)
    for i in range(m):
        others = [p for p in range(m) if p != i]
        for size in range(m):
            for subset in combinations(others, size):
                code = sum(1 << p for p in subset)
                weight = factorial(size) * factorial(m - size - 1) / factorial(m)
                phi[i] += weight * (v[code | (1 << i)] - v[code])
    return phi


@settings(max_examples=60, deadline=None)
@given(games())
def test_efficiency(v):
    phi = shapley_values(v)
    assert np.isclose(phi.sum(), v[0, -1, 0] - v[0, 0, 0], atol=1e-8)


@settings(max_examples=60, deadline=None)
@given(games())
def test_matches_textbook_definition(v):
    assert np.allclose(shapley_values(v)[0, :, 0], brute_force_shapley(v[0, :, 0]), atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.data())
def test_dummy_player_gets_zero(m, data):
    # Player 0 is a dummy: adding it never changes the value.
    base = data.draw(arrays(np.float64, 2 ** (m - 1), elements=st.floats(-50, 50)))
    v = np.array([base[c >> 1] for c in range(2**m)])[None, :, None]
    phi = shapley_values(v)[0, :, 0]
    assert abs(phi[0]) < 1e-9
    # and every interaction index involving it vanishes
    assert np.allclose(interaction_indices(v)[0, 0, :, 0], 0, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.data())
def test_symmetric_players_get_equal_values(m, data):
    # Value depends only on coalition size -> all players symmetric.
    by_size = data.draw(arrays(np.float64, m + 1, elements=st.floats(-50, 50)))
    sizes = coalition_matrix(m).sum(1)
    v = by_size[sizes][None, :, None]
    phi = shapley_values(v)[0, :, 0]
    assert np.allclose(phi, phi[0], atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(games(5), st.data())
def test_additivity(v, data):
    w = data.draw(arrays(np.float64, v.shape, elements=st.floats(-50, 50)))
    assert np.allclose(shapley_values(v + w), shapley_values(v) + shapley_values(w), atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(games(6))
def test_moebius_inverts_and_yields_shapley(v):
    m = int(np.log2(v.shape[1]))
    dividends = moebius_transform(v)[0, :, 0]
    present = coalition_matrix(m)
    # v(S) = sum of dividends of the subsets of S
    for code in range(2**m):
        subsets = [t for t in range(2**m) if t & code == t]
        assert np.isclose(v[0, code, 0], dividends[subsets].sum(), atol=1e-7)
    # phi_i = sum over S containing i of m(S) / |S|
    sizes = np.maximum(present.sum(1), 1)
    phi = (present * (dividends / sizes)[:, None]).sum(0)
    assert np.allclose(phi, shapley_values(v)[0, :, 0], atol=1e-7)


def test_interaction_index_of_a_pure_product_is_the_product():
    # v(S) = a*b when both players present, else 0  ->  I_01 = a*b, phi_0 = phi_1 = a*b/2
    v = np.array([0.0, 0.0, 0.0, 6.0])[None, :, None]
    assert np.isclose(interaction_indices(v)[0, 0, 1, 0], 6.0)
    assert np.allclose(shapley_values(v)[0, :, 0], [3.0, 3.0])


@pytest.mark.parametrize("m", [2, 3, 4, 5, 8])
def test_agrees_with_shapiq(m):
    shapiq = require_module("shapiq")
    rng = np.random.default_rng(m)
    v = rng.normal(size=2**m)

    def game(coalitions):
        codes = (np.asarray(coalitions, bool) * (1 << np.arange(m))).sum(1)
        return v[codes]

    computer = shapiq.ExactComputer(game, n_players=m)
    sv = computer("SV", 1)
    sii = computer("SII", 2)
    ours_phi = shapley_values(v[None, :, None])[0, :, 0]
    ours_ii = interaction_indices(v[None, :, None])[0, :, :, 0]
    for i in range(m):
        assert np.isclose(ours_phi[i], sv[(i,)], atol=1e-9)
    for i, j in combinations(range(m), 2):
        assert np.isclose(ours_ii[i, j], sii[(i, j)], atol=1e-9)
        assert np.isclose(ours_ii[j, i], ours_ii[i, j])


def test_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="power of two"):
        shapley_values(np.zeros((1, 6, 1)))
    with pytest.raises(ValueError, match=r"\[N, 2\*\*M, K\]"):
        shapley_values(np.zeros((6, 1)))
    with pytest.raises(ValueError, match="1 to 8 modalities"):
        coalition_matrix(9)

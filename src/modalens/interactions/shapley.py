"""Exact game-theoretic values over modalities, from the values of all coalitions.

With M modalities as players and v(S) the model output when only the modalities in S are present (the rest at
their baseline), every quantity here is a fixed linear map of the 2**M coalition values, so each is one matrix
product over all instances at once:

- Shapley value: phi_i = sum_{S not containing i} |S|! (M-|S|-1)! / M! * [v(S + i) - v(S)].
- Shapley interaction index (Grabisch 1997) for a pair i != j:
  I_ij = sum_{S in M minus {i, j}} |S|! (M-|S|-2)! / (M-1)! * [v(S+ij) - v(S+i) - v(S+j) + v(S)].
- Moebius (Harsanyi) dividend: m(S) = sum_{T subset of S} (-1)^{|S|-|T|} v(T); v(S) = sum of m(T) over T in S, and
  phi_i = sum over S containing i of m(S) / |S|.
"""

from __future__ import annotations

from functools import lru_cache
from math import factorial

import numpy as np

from modalens.interactions.coalitions import coalition_matrix


@lru_cache(maxsize=16)
def shapley_weights(n_modalities: int) -> np.ndarray:
    """``[2**M, M]`` matrix W with phi = v @ W (v: coalition values indexed by coalition code)."""
    present = coalition_matrix(n_modalities)
    sizes = present.sum(1)
    m = n_modalities
    w = np.zeros((2**m, m))
    for c in range(2**m):
        for i in range(m):
            if present[c, i]:  # c = S + i: enters with + weight of |S| = size - 1
                s = sizes[c] - 1
                w[c, i] = factorial(s) * factorial(m - s - 1) / factorial(m)
            else:  # c = S without i: enters with - weight of |S| = size
                s = sizes[c]
                w[c, i] = -factorial(s) * factorial(m - s - 1) / factorial(m)
    w.setflags(write=False)
    return w


@lru_cache(maxsize=16)
def interaction_weights(n_modalities: int) -> np.ndarray:
    """``[2**M, M, M]`` tensor with I = einsum('c,cij->ij', v, T); zero on the diagonal."""
    present = coalition_matrix(n_modalities)
    m = n_modalities
    t = np.zeros((2**m, m, m))
    if m < 2:
        return t
    for c in range(2**m):
        for i in range(m):
            for j in range(m):
                if i == j:
                    continue
                inside = int(present[c, i]) + int(present[c, j])
                s = present[c].sum() - inside  # |S| with S = c minus {i, j}
                weight = factorial(s) * factorial(m - s - 2) / factorial(m - 1)
                t[c, i, j] = weight if inside != 1 else -weight
    t.setflags(write=False)
    return t


def shapley_values(coalition_values: np.ndarray) -> np.ndarray:
    """Exact Shapley values ``[N, M, K]`` from coalition values ``[N, 2**M, K]``."""
    m = _n_players(coalition_values)
    return np.einsum("nck,cm->nmk", coalition_values, shapley_weights(m))


def interaction_indices(coalition_values: np.ndarray) -> np.ndarray:
    """Pairwise Shapley interaction indices ``[N, M, M, K]`` (symmetric, zero diagonal)."""
    m = _n_players(coalition_values)
    return np.einsum("nck,cij->nijk", coalition_values, interaction_weights(m))


def moebius_transform(coalition_values: np.ndarray) -> np.ndarray:
    """Moebius (Harsanyi) dividends ``[N, 2**M, K]``, indexed by coalition code like the input."""
    m = _n_players(coalition_values)
    out = np.array(coalition_values, dtype=np.float64, copy=True)
    for i in range(m):  # fast subset-difference transform, one bit at a time
        bit = 1 << i
        codes = np.arange(2**m)
        with_bit = codes[(codes & bit) != 0]
        out[:, with_bit] -= out[:, with_bit ^ bit]
    return out


def _n_players(coalition_values: np.ndarray) -> int:
    if coalition_values.ndim != 3:
        raise ValueError(f"coalition values must be [N, 2**M, K], got shape {coalition_values.shape}")
    n_coal = coalition_values.shape[1]
    m = int(np.log2(n_coal))
    if 2**m != n_coal:
        raise ValueError(f"coalition values hold {n_coal} coalitions, not a power of two")
    return m

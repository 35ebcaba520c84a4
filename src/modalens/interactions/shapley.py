"""Exact game-theoretic values over modalities, from the values of all coalitions.

With M modalities as players and v(S) the model output when only the modalities in S are present (the rest at
their baseline), every quantity here is a fixed linear map of the 2**M coalition values, so each is one matrix
product over all instances at once:

- Shapley value: phi_i = sum_{S not containing i} |S|! (M-|S|-1)! / M! * [v(S + i) - v(S)].
- Shapley interaction index (Grabisch 1997) for a pair i != j:
  I_ij = sum_{S in M minus {i, j}} |S|! (M-|S|-2)! / (M-1)! * [v(S+ij) - v(S+i) - v(S+j) + v(S)].
- Moebius (Harsanyi) dividend: m(S) = sum_{T subset of S} (-1)^{|S|-|T|} v(T); v(S) = sum of m(T) over T in S, and
  phi_i = sum over S containing i of m(S) / |S|.

The exact Shapley weights (:func:`shapley_weights`) serve every exact Shapley computation of the engine: the
modality level here and the exact feature-level enumeration (:func:`~modalens.interactions.attribution.
exact_feature_shapley`). The modality-level method is registered as ``"shapley"`` (:func:`modality_shapley`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import factorial
from typing import ClassVar

import numpy as np

from modalens.data.dataset import MultimodalDataset
from modalens.interactions.coalitions import (
    MAX_SUBSET_PLAYERS,
    coalition_matrix,
    evaluate_coalitions,
    subset_membership,
)
from modalens.interactions.methods import (
    AttributionError,
    MethodResult,
    check_target,
    pick_target,
    register_method,
    resolve_index,
    rows_of,
)
from modalens.models.predictor import Predictor


@lru_cache(maxsize=MAX_SUBSET_PLAYERS + 1)
def shapley_weights(n_players: int) -> np.ndarray:
    """``[2**P, P]`` matrix W with phi = v @ W (v: coalition values indexed by coalition code).

    Coalition ``c`` holding player ``j`` is some ``S + j`` and enters player ``j``'s value with
    ``+ |S|! (P - |S| - 1)! / P!`` (``|S| = |c| - 1``); a coalition without ``j`` is an ``S`` and enters with
    ``- |S|! (P - |S| - 1)! / P!`` (``|S| = |c|``).
    """
    member = subset_membership(n_players)
    p = n_players
    size = member.sum(1)
    # weight of a set S of each size 0 .. p-1; the padding entry (size p) is only read where it is not selected
    w_size = np.array([factorial(s) * factorial(p - s - 1) / factorial(p) for s in range(p)] + [0.0])
    w = np.where(member, w_size[np.maximum(size - 1, 0)][:, None], -w_size[np.minimum(size, p)][:, None])
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
        raise AttributionError(f"coalition values must be [N, 2**M, K], got shape {coalition_values.shape}")
    n_coal = coalition_values.shape[1]
    m = int(np.log2(n_coal))
    if 2**m != n_coal:
        raise AttributionError(f"coalition values hold {n_coal} coalitions, not a power of two")
    return m


# -- the modality-level method -------------------------------------------------------------------------------------


@dataclass
class ModalityAttribution(MethodResult):
    """Every coalition of modalities evaluated for each instance, and the exact game values of one explained output.

    Attributes
    ----------
    modalities
        The players, in the predictor's order; coalition ``c`` holds modality ``j`` when bit ``j`` of ``c`` is set.
    coalition_values
        ``[N, 2**M, K]`` model outputs (all K columns) under every coalition; row ``r`` is dataset row
        ``instances[r]``.
    target
        ``[N]`` output column explained for each instance.
    instances
        ``[N]`` dataset row numbers explained.
    method, n_evaluations, seconds
        As for every :class:`~modalens.interactions.methods.MethodResult`.
    """

    level: ClassVar[str] = "modality"
    modalities: tuple[str, ...]
    coalition_values: np.ndarray
    target: np.ndarray
    instances: np.ndarray
    method: str = "shapley"
    n_evaluations: int = 0
    seconds: float = 0.0

    @property
    def outputs(self) -> np.ndarray:
        """``[N, K]`` outputs on the full input (every modality present)."""
        return self.coalition_values[:, -1, :]

    @property
    def values(self) -> np.ndarray:
        """``[N, 2**M]`` coalition values of the explained output (``target``)."""
        return self.coalition_values[np.arange(len(self.target)), :, self.target]

    @property
    def prediction(self) -> np.ndarray:
        """``[N]`` the explained output on the full input, ``f(x)``."""
        return self.values[:, -1]

    @property
    def base_value(self) -> np.ndarray:
        """``[N]`` the explained output with every modality at its baseline."""
        return self.values[:, 0]

    @property
    def shapley(self) -> np.ndarray:
        """``[N, M]`` exact Shapley values; each row sums to ``prediction - base_value``."""
        return shapley_values(self.values[:, :, None])[..., 0]

    @property
    def interactions(self) -> np.ndarray:
        """``[N, M, M]`` pairwise Shapley interaction indices (symmetric, zero diagonal)."""
        return interaction_indices(self.values[:, :, None])[..., 0]

    @property
    def moebius(self) -> np.ndarray:
        """``[N, 2**M]`` Moebius dividends, indexed by coalition code."""
        return moebius_transform(self.values[:, :, None])[..., 0]


@register_method(
    "shapley",
    "modality",
    description="Exact Shapley values, interaction indices and Moebius dividends over all 2^M modality coalitions",
    batches_across_instances=True,
    exact=True,
    aliases=("modality_shapley",),
)
def modality_shapley(
    predictor: Predictor,
    dataset: MultimodalDataset,
    *,
    target: int | np.ndarray | None = None,
    index: np.ndarray | None = None,
    batch_size: int = 4096,
    progress: bool = True,
) -> ModalityAttribution:
    """Evaluate every coalition of the predictor's modalities on each instance (:func:`evaluate_coalitions`).

    Parameters
    ----------
    predictor
        A :class:`~modalens.models.predictor.Predictor` over 1 to 8 modalities.
    dataset
        The instances.
    target
        The output explained: None takes the predicted class of each instance for classification and column 0
        for regression; an int takes that column; an int array gives one column per dataset row (or per explained
        instance).
    index
        Dataset rows to explain (ints or a boolean mask); all by default.
    batch_size
        Model rows per forward pass (the coalitions of a chunk of instances are stacked).
    progress
        Show a progress bar.
    """
    if batch_size < 1:
        raise AttributionError(f"batch_size must be at least 1, got {batch_size}")
    rows = resolve_index(dataset, index)
    tgt = check_target(target, len(dataset), rows)
    values = evaluate_coalitions(predictor, rows_of(dataset, rows), batch_size=batch_size, progress=progress)
    chosen = pick_target(predictor.output_kind, tgt, values[:, -1, :], slice(None))
    return ModalityAttribution(
        modalities=tuple(predictor.modalities),
        coalition_values=values,
        target=np.asarray(chosen, dtype=np.int64),
        instances=rows,
        n_evaluations=int(values.shape[0] * values.shape[1]),
    )

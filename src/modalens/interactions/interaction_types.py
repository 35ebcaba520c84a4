"""Interaction types per instance: dominance, complement, conflict (after M2Lens), defined on modality Shapley values.

M2Lens does not publish its thresholds; these are ours, explicit and configurable. For one instance with modality
Shapley values phi_m (for the explained output) and shares s_m = |phi_m| / sum_k |phi_k|:

1. ``none``: the modalities move the output by almost nothing, sum_k |phi_k| <= ``min_total``.
2. ``dominance`` (by modality d): s_d >= ``dominance_share`` -- one modality outweighs all the others together
   (with the default 0.6, its push is at least 1.5 times the rest combined).
3. ``conflict``: otherwise, if two *relevant* modalities (s_m >= ``relevance_share``) push in opposite directions.
4. ``complement``: otherwise -- the relevant modalities push the same way and no one of them dominates.

Each modality's part in an instance is its ``role``: ``dominant``; ``supporting`` (relevant, same sign as the total
push sum_k phi_k; when that push is exactly 0, the positive side); ``opposing`` (relevant, opposite sign); ``minor``
(s_m < ``relevance_share``, or phi_m = 0).

Non-additive behaviour is reported next to the type, not folded into it: ``interaction_strength`` is
sum_{i<j} |I_ij| / (sum_m |phi_m| + sum_{i<j} |I_ij|), 0 for a model additive in its modalities.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from modalens._core.errors import ConfigurationError
from modalens.interactions.methods import AttributionError

TYPES = ("dominance", "complement", "conflict", "none")
ROLES = ("dominant", "supporting", "opposing", "minor")


@dataclass(frozen=True)
class TypingConfig:
    """Thresholds of the interaction types (see the module docstring)."""

    dominance_share: float = 0.6
    relevance_share: float = 0.15
    min_total: float = 1e-6

    def __post_init__(self) -> None:
        if not 0.5 <= self.dominance_share <= 1.0:
            # below 0.5 two modalities could both "dominate" the same instance
            raise ConfigurationError(f"dominance_share must lie in [0.5, 1], got {self.dominance_share}")
        if not 0.0 <= self.relevance_share < self.dominance_share:
            raise ConfigurationError(f"relevance_share must lie in [0, dominance_share), got {self.relevance_share}")
        if self.min_total < 0:
            raise ConfigurationError(f"min_total must be >= 0, got {self.min_total}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class InteractionTypes:
    """Types and roles for N instances over M modalities."""

    types: np.ndarray  # [N] str, one of TYPES
    dominant: np.ndarray  # [N] int modality index, -1 where no modality dominates
    shares: np.ndarray  # [N, M]
    roles: np.ndarray  # [N, M] str, one of ROLES
    strength: np.ndarray  # [N] interaction strength in [0, 1]


def classify(
    phi: np.ndarray, pair_interactions: np.ndarray | None = None, config: TypingConfig | None = None
) -> InteractionTypes:
    """Type each instance from its modality Shapley values.

    Parameters
    ----------
    phi
        ``[N, M]`` Shapley values for the explained output.
    pair_interactions
        ``[N, M, M]`` Shapley interaction indices (symmetric), for ``strength``; zeros when None.
    config
        Thresholds; defaults to :class:`TypingConfig`.
    """
    config = config or TypingConfig()
    phi = np.asarray(phi, dtype=np.float64)
    if phi.ndim != 2:
        raise AttributionError(f"phi must be [N, M], got shape {phi.shape}")
    if not np.isfinite(phi).all():
        bad = int((~np.isfinite(phi)).sum())
        raise AttributionError(f"phi has {bad} NaN/inf values; the model's outputs are not finite")
    n, m = phi.shape
    magnitude = np.abs(phi)
    total_abs = magnitude.sum(1)
    active = total_abs > config.min_total
    shares = np.divide(magnitude, total_abs[:, None], out=np.zeros_like(magnitude), where=active[:, None])

    top = shares.argmax(1)
    top_share = shares[np.arange(n), top]
    is_dominance = active & (top_share >= config.dominance_share)

    relevant = (shares >= config.relevance_share) & (phi != 0)
    positive = (phi > 0) & relevant
    negative = (phi < 0) & relevant
    is_conflict = active & ~is_dominance & positive.any(1) & negative.any(1)

    types = np.full(n, "complement", dtype=object)
    types[is_conflict] = "conflict"
    types[is_dominance] = "dominance"
    types[~active] = "none"
    dominant = np.where(is_dominance, top, -1)

    push = np.sign(phi.sum(1))[:, None]
    push[push == 0] = 1.0  # a perfectly balanced instance: the positive side counts as supporting
    roles = np.full((n, m), "minor", dtype=object)
    roles[relevant & (np.sign(phi) == push)] = "supporting"
    roles[relevant & (np.sign(phi) != push)] = "opposing"
    roles[np.arange(n)[is_dominance], top[is_dominance]] = "dominant"
    roles[~active] = "minor"

    if pair_interactions is None or m < 2:
        strength = np.zeros(n)
    else:
        iu = np.triu_indices(m, 1)
        pair_abs = np.abs(np.asarray(pair_interactions)[:, iu[0], iu[1]]).sum(1)
        denom = total_abs + pair_abs
        strength = np.divide(pair_abs, denom, out=np.zeros(n), where=denom > config.min_total)
    return InteractionTypes(types=types, dominant=dominant, shares=shares, roles=roles, strength=strength)

"""Modality Dominance Score (MDS), its generalisation to K modalities, categories and bootstrap stability.

For non-negative feature activations ``z`` on paired samples (one row per pair, one array per modality), the
dominance of modality ``k`` in feature ``j`` is

    D_jk = mean over active pairs n of  z_jk(n) / (sum_m z_jm(n) + eps)

where a pair is *active* for feature ``j`` if ``sum_m z_jm(n) > 0``. Pairs on which the feature is zero in every
modality carry no evidence about which modality drives it, so they are excluded (their count is reported as
``n_excluded``); a feature that is never active has ``D = NaN`` and category ``"inactive"``. With two modalities
(image, text) ``MDS_j = D_j,image`` and ``D_j,text = 1 - MDS_j``.

Categories (Yan et al., 2025): with ``mu_k``, ``sigma_k`` the mean and (population) standard deviation of
``D_.k`` over the non-inactive features, feature ``j`` is dominated by modality ``k`` if ``D_jk > mu_k + k sigma_k``;
if several modalities pass, the one with the largest ``(D_jk - mu_k) / sigma_k``. Otherwise it is cross-modal. For
two modalities this is exactly: vision if ``MDS > mu + k sigma``, language if ``MDS < mu - k sigma``.

Bootstrap: pairs are resampled with replacement (the same resample for every feature), ``D`` is recomputed, and
percentile intervals are reported. A category is *stable* when the whole interval lies inside the category's region
(thresholds fixed at their point estimates): dominated by ``k`` needs ``ci_low_k > mu_k + k sigma_k``; cross-modal
needs ``ci_high_m <= mu_m + k sigma_m`` for every modality ``m``. A feature active on fewer than ``min_active`` pairs
is never stable: with one or two active pairs every resample agrees, yet the category is an accident of sampling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from modalens.features.errors import FeatureError

CROSS_MODAL = "cross-modal"
INACTIVE = "inactive"
DEFAULT_CATEGORY_NAMES = {"image": "vision", "vision": "vision", "text": "language", "language": "language"}


def _checked(activations: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> tuple[list[str], list[np.ndarray]]:
    """Validate per-modality activations ``[N, F]`` (float32, same shape, finite, non-negative) without stacking."""
    if isinstance(activations, Mapping):
        names, arrays = list(activations), list(activations.values())
    else:
        arrays = list(activations)
        names = [f"modality_{i}" for i in range(len(arrays))]
    if len(arrays) < 2:
        raise FeatureError(f"dominance needs at least 2 modalities, got {len(arrays)}")
    checked: list[np.ndarray] = []
    for name, arr in zip(names, arrays, strict=True):
        a = np.asarray(arr, dtype=np.float32)
        if a.ndim != 2:
            raise FeatureError(f"activations[{name!r}] must be 2-D [N pairs, F features], got shape {a.shape}")
        if not np.isfinite(a).all():
            raise FeatureError(f"activations[{name!r}] contains NaN or infinite values")
        if (a < 0).any():
            raise FeatureError(
                f"activations[{name!r}] has negative values (min {a.min():.3g}); MDS needs non-negative activations "
                "(use ReLU/SAE/NCL codes, or clip raw dimensions at 0)"
            )
        if checked and a.shape != checked[0].shape:
            raise FeatureError(f"activations[{name!r}] has shape {a.shape}, expected {checked[0].shape} like the first")
        checked.append(a)
    return names, checked


def feature_chunks(n_features: int, rows: int, budget_bytes: int = 64 * 2**20) -> list[slice]:
    """Feature slices whose float64 working arrays of ``rows`` rows stay near ``budget_bytes``: memory is bounded by
    the chunk, not by N x F (100,000 pairs x 16,384 features would be 13 GB per modality in float64)."""
    width = max(1, budget_bytes // max(1, 8 * rows))
    return [slice(s, min(n_features, s + width)) for s in range(0, n_features, width)]


def _ratios(arrays: list[np.ndarray], features: slice, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """For a feature slice: per-pair shares ``z_k / (sum z + eps)`` ``[N, f, K]`` (zero where inactive) and the
    activity mask ``[N, f]``."""
    stack = np.stack([a[:, features] for a in arrays], axis=2).astype(np.float64)
    total = stack.sum(axis=2)
    active = total > 0
    np.divide(stack, total[..., None] + eps, out=stack, where=active[..., None])
    stack[~active] = 0.0
    return stack, active


def dominance_scores(
    activations: Mapping[str, np.ndarray] | Sequence[np.ndarray], eps: float = 1e-8
) -> tuple[np.ndarray, np.ndarray]:
    """Dominance ``D [F, K]`` and the number of active pairs per feature ``[F]`` (``NaN`` rows when never active)."""
    return _scores(_checked(activations)[1], eps)


def _scores(arrays: list[np.ndarray], eps: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`dominance_scores` of already checked arrays."""
    n, f = arrays[0].shape
    share_sums = np.zeros((f, len(arrays)))
    n_active = np.zeros(f, dtype=np.int64)
    for sl in feature_chunks(f, n * len(arrays)):
        shares, active = _ratios(arrays, sl, eps)
        share_sums[sl] = shares.sum(axis=0)
        n_active[sl] = active.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = share_sums / n_active[:, None]
    return scores, n_active


def modality_dominance_score(image_acts: np.ndarray, text_acts: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """MDS per feature for image/text pairs: ``mean_n z(v_n) / (z(v_n) + z(t_n) + eps)`` over active pairs."""
    return dominance_scores({"image": image_acts, "text": text_acts}, eps)[0][:, 0]


def bootstrap_dominance(
    activations: Mapping[str, np.ndarray] | Sequence[np.ndarray],
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    eps: float = 1e-8,
    seed: int = 0,
    chunk: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile bootstrap of the dominance over pairs.

    Returns
    -------
    ci_low, ci_high
        ``[F, K]`` interval bounds (``NaN`` for never-active features).
    replicates_std
        ``[F, K]`` bootstrap standard error.
    """
    _check_bootstrap_options(n_boot, ci, chunk)
    return _bootstrap(_checked(activations)[1], n_boot, ci, eps, seed, chunk)


def _check_bootstrap_options(n_boot: int, ci: float, chunk: int | None) -> None:
    if not 0 < ci < 1:
        raise FeatureError(f"ci must be in (0, 1), got {ci}")
    if n_boot < 10:
        raise FeatureError(f"n_boot must be >= 10 for a percentile interval, got {n_boot}")
    if chunk is not None and chunk < 1:
        raise FeatureError(f"chunk must be a positive number of features, got {chunk}")


def _bootstrap(
    arrays: list[np.ndarray],
    n_boot: int,
    ci: float,
    eps: float,
    seed: int,
    chunk: int | None,
    keep: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`bootstrap_dominance` of already checked arrays and options; ``keep`` (``[n_keep, F, K]`` float32), when
    given, receives the first ``n_keep`` replicates' dominance (for share intervals and the app)."""
    (n, f), k = arrays[0].shape, len(arrays)
    rng = np.random.default_rng(seed)
    # a resample is a count vector over pairs; D_b = (w @ shares) / (w @ active) for all features at once.
    # Counts are small integers, exact in float32, which halves the largest array (n_boot x N).
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float32)
    lo, hi, sd = (np.full((f, k), np.nan) for _ in range(3))
    alpha = (1 - ci) / 2
    # the per-chunk arrays are [N, f, K] shares and [n_boot, f, K] replicate sums: size chunks by the larger
    rows = max(n, n_boot) * k
    slices = feature_chunks(f, rows) if chunk is None else [slice(s, min(f, s + chunk)) for s in range(0, f, chunk)]
    for sl in slices:
        shares, active = _ratios(arrays, sl, eps)
        flat, act = shares.reshape(n, -1), active.astype(np.float64)
        num = np.empty((n_boot, flat.shape[1]))
        den = np.empty((n_boot, act.shape[1]))
        for b in range(0, n_boot, 64):  # float64 sums, but only 64 resamples' weights in float64 at a time
            w = weights[b : b + 64].astype(np.float64)
            num[b : b + 64], den[b : b + 64] = w @ flat, w @ act
        num = num.reshape(n_boot, -1, k)
        with np.errstate(invalid="ignore", divide="ignore"):
            reps = num / den[..., None]
        if keep is not None:
            keep[:, sl, :] = reps[: len(keep)]
        # a replicate that drew no active pair for a feature says nothing about it: drop it (NaN-aware quantiles)
        ok = np.isfinite(reps).any(axis=0).all(axis=1)
        if ok.any():
            lo[sl][ok] = np.nanquantile(reps[:, ok, :], alpha, axis=0)
            hi[sl][ok] = np.nanquantile(reps[:, ok, :], 1 - alpha, axis=0)
            sd[sl][ok] = np.nanstd(reps[:, ok, :], axis=0)
    return lo, hi, sd


def category_names_for(modalities: Sequence[str]) -> list[str]:
    """Category label of each modality's dominant features: image -> vision, text -> language, else the name."""
    return [DEFAULT_CATEGORY_NAMES.get(m, m) for m in modalities]


def categorize(
    scores: np.ndarray, k: float = 1.0, category_names: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Assign categories from dominance ``scores [F, K]``.

    Returns
    -------
    categories
        ``[F]`` strings: a category name per dominant modality, ``"cross-modal"`` or ``"inactive"``.
    mu, sigma
        ``[K]`` mean and population standard deviation of each column over the non-inactive features.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise FeatureError(f"scores must be [F, K >= 2], got shape {scores.shape}")
    if k < 0:
        raise FeatureError(f"k must be >= 0, got {k}")
    names = list(category_names) if category_names is not None else [f"modality_{i}" for i in range(scores.shape[1])]
    if len(names) != scores.shape[1]:
        raise FeatureError(f"{len(names)} category names for {scores.shape[1]} modalities")
    valid = np.isfinite(scores).all(axis=1)
    cats = np.full(len(scores), INACTIVE, dtype=object)
    if not valid.any():
        return cats, np.full(scores.shape[1], np.nan), np.full(scores.shape[1], np.nan)
    mu = scores[valid].mean(axis=0)
    sigma = scores[valid].std(axis=0)
    thr = mu + k * sigma
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = np.where(scores > thr, (scores - mu) / np.where(sigma > 0, sigma, 1.0), -np.inf)
    winner = excess.argmax(axis=1)
    dominated = np.isfinite(excess.max(axis=1))
    cats[valid] = CROSS_MODAL
    pick = valid & dominated
    cats[pick] = np.asarray(names, dtype=object)[winner[pick]]
    return cats, mu, sigma


def stability(
    categories: np.ndarray,
    ci_low: np.ndarray,
    ci_high: np.ndarray,
    thresholds: np.ndarray,
    category_names: Sequence[str],
) -> np.ndarray:
    """``[F]`` bool: the bootstrap interval lies wholly inside the assigned category's region (see module doc)."""
    stable = np.zeros(len(categories), dtype=bool)
    for j, cat in enumerate(categories):
        if cat == INACTIVE:
            continue
        if cat == CROSS_MODAL:
            stable[j] = bool(np.all(ci_high[j] <= thresholds))
        else:
            m = list(category_names).index(cat)
            stable[j] = bool(ci_low[j, m] > thresholds[m])
    return stable


def category_shares(scores: np.ndarray, k: float, category_names: Sequence[str]) -> dict[str, float]:
    """Share of non-inactive features per category when ``scores [F, K]`` are categorised with width ``k``."""
    cats = categorize(scores, k, category_names)[0]
    live = cats[cats != INACTIVE]
    order = [*category_names, CROSS_MODAL]
    return {c: float(np.mean(live == c)) if len(live) else 0.0 for c in order}


def shares_at_thresholds(
    scores: np.ndarray, thresholds: np.ndarray, mu: np.ndarray, sigma: np.ndarray, category_names: Sequence[str]
) -> dict[str, float]:
    """Category shares of ``scores [F, K]`` against *fixed* thresholds (those of another data set)."""
    scores = np.asarray(scores, dtype=np.float64)
    valid = np.isfinite(scores).all(axis=1)
    order = [*category_names, CROSS_MODAL]
    if not valid.any():
        return dict.fromkeys(order, 0.0)
    s = scores[valid]
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = np.where(s > thresholds, (s - mu) / np.where(sigma > 0, sigma, 1.0), -np.inf)
    dominated = np.isfinite(excess.max(axis=1))
    winner = excess.argmax(axis=1)
    cats = np.where(dominated, np.asarray(category_names, dtype=object)[winner], CROSS_MODAL)
    return {c: float(np.mean(cats == c)) for c in order}


def modality_swap_null(arrays: list[np.ndarray], n_null: int, eps: float, seed: int) -> np.ndarray:
    """Dominance ``[n_null, F, K]`` of the pairs with their modalities exchanged at random, pair by pair.

    In each replicate every pair's K activation vectors are put in a random order (for image/text: a fair coin per
    pair swaps the image's codes with the text's), the same order for every feature. A feature then cannot prefer a
    modality except by chance, so any single-modality category it gets is chance: the category shares of these
    replicates are what the categorisation gives when modality plays no part.
    """
    n, f = arrays[0].shape
    k = len(arrays)
    rng = np.random.default_rng(seed)
    out = np.empty((n_null, f, k), dtype=np.float32)
    stack = np.stack(arrays, axis=0)  # [K, N, F]
    rows = np.arange(n)
    for r in range(n_null):
        order = np.argsort(rng.random((n, k)), axis=1)  # a random permutation of the modalities per pair
        swapped = [stack[order[:, m], rows] for m in range(k)]
        out[r] = _scores(swapped, eps)[0]
    return out


def _interval(values: np.ndarray, ci: float) -> list[float]:
    alpha = (1 - ci) / 2
    return [float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))]


@dataclass
class DominanceResult:
    """Per-feature dominance over K modalities with categories and bootstrap intervals."""

    modalities: list[str]
    category_names: list[str]
    scores: np.ndarray  # [F, K]
    n_active: np.ndarray  # [F] pairs where the feature fires in some modality
    n_excluded: np.ndarray  # [F] pairs where it is zero in every modality (left out of the mean)
    categories: np.ndarray  # [F] str
    mu: np.ndarray  # [K]
    sigma: np.ndarray  # [K]
    k: float
    ci_low: np.ndarray | None = None  # [F, K]
    ci_high: np.ndarray | None = None
    stable: np.ndarray | None = None  # [F] bool
    config: dict = field(default_factory=dict)
    boot_scores: np.ndarray | None = None  # [B, F, K] float32: the first bootstrap replicates (share intervals)
    null_scores: np.ndarray | None = None  # [R, F, K] float32: modality-swap null replicates

    def share_intervals(self, ci: float | None = None) -> dict[str, list[float]]:
        """Percentile interval of each category's share over the kept bootstrap replicates (thresholds recomputed
        in each replicate, as the categorisation does)."""
        if self.boot_scores is None or not len(self.boot_scores):
            return {}
        ci = self.config.get("ci", 0.95) if ci is None else ci
        reps = [category_shares(b, self.k, self.category_names) for b in self.boot_scores]
        return {c: _interval(np.array([r[c] for r in reps]), ci) for c in reps[0]}

    def null_shares(self, ci: float | None = None) -> dict[str, dict[str, float]]:
        """Category shares under the modality-swap null: ``mean``, ``low``, ``high`` with the rule re-applied to the
        null data, and ``at_thresholds_mean|low|high`` against this run's own thresholds.

        The second is the chance level to read a share against: with no modality preference, how many features
        would fall beyond *these* thresholds. The first shows how many labels the relative rule hands out on data
        without any (on pure noise both equal the real shares; with a real split only the second drops to ~0).
        """
        if self.null_scores is None or not len(self.null_scores):
            return {}
        ci = self.config.get("ci", 0.95) if ci is None else ci
        same = [category_shares(b, self.k, self.category_names) for b in self.null_scores]
        fixed = [
            shares_at_thresholds(b, self.thresholds, self.mu, self.sigma, self.category_names) for b in self.null_scores
        ]
        out = {}
        for c in same[0]:
            a, b = np.array([r[c] for r in same]), np.array([r[c] for r in fixed])
            lo, hi = _interval(a, ci)
            flo, fhi = _interval(b, ci)
            out[c] = {
                "mean": float(a.mean()),
                "low": lo,
                "high": hi,
                "at_thresholds_mean": float(b.mean()),
                "at_thresholds_low": flo,
                "at_thresholds_high": fhi,
            }
        return out

    @property
    def n_features(self) -> int:
        return len(self.scores)

    @property
    def thresholds(self) -> np.ndarray:
        """``mu_k + k sigma_k``: above it a feature is dominated by modality ``k``."""
        return self.mu + self.k * self.sigma

    @property
    def mds(self) -> np.ndarray:
        """The first modality's dominance (the MDS when modalities are image, text)."""
        return self.scores[:, 0]

    def proportions(self) -> dict[str, float]:
        """Share of features per category (inactive features excluded from the denominator)."""
        cats = self.categories[self.categories != INACTIVE]
        order = [*self.category_names, CROSS_MODAL]
        if len(cats) == 0:
            return dict.fromkeys(order, 0.0)
        return {c: float(np.mean(cats == c)) for c in order}

    def to_frame(self) -> pd.DataFrame:
        """One row per feature: mds (first modality), ci_low/ci_high, per-modality ``dominance_<m>``, category,
        stable, n_active, n_excluded."""
        frame = pd.DataFrame({"feature": np.arange(self.n_features)})
        frame["mds"] = self.scores[:, 0]
        frame["ci_low"] = self.ci_low[:, 0] if self.ci_low is not None else np.nan
        frame["ci_high"] = self.ci_high[:, 0] if self.ci_high is not None else np.nan
        for i, m in enumerate(self.modalities):
            frame[f"dominance_{m}"] = self.scores[:, i]
            if self.ci_low is not None and len(self.modalities) > 2:
                frame[f"ci_low_{m}"] = self.ci_low[:, i]
                frame[f"ci_high_{m}"] = self.ci_high[:, i]
        frame["category"] = self.categories.astype(str)
        frame["stable"] = self.stable if self.stable is not None else False
        frame["n_active"] = self.n_active.astype(np.int64)
        frame["n_excluded"] = self.n_excluded.astype(np.int64)
        return frame

    def summary(self) -> dict:
        """JSON-ready: modalities, k, mu, sigma, thresholds, category proportions and counts, stable share."""
        out = {
            "modalities": self.modalities,
            "category_names": self.category_names,
            "k": self.k,
            "mu": self.mu.tolist(),
            "sigma": self.sigma.tolist(),
            "thresholds": self.thresholds.tolist(),
            "proportions": self.proportions(),
            "counts": {c: int(np.sum(self.categories == c)) for c in [*self.category_names, CROSS_MODAL, INACTIVE]},
            **self.config,
        }
        if len(self.modalities) == 2:
            out["mds_low_threshold"] = float(self.mu[0] - self.k * self.sigma[0])
            out["mds_high_threshold"] = float(self.thresholds[0])
        if self.stable is not None:
            live = self.categories != INACTIVE
            out["stable_share"] = float(self.stable[live].mean()) if live.any() else 0.0
            out["stable_counts"] = {
                c: int(np.sum(self.stable & (self.categories == c))) for c in [*self.category_names, CROSS_MODAL]
            }
        if self.boot_scores is not None and len(self.boot_scores):
            out["share_ci"] = self.share_intervals()
            out["share_boot"] = int(len(self.boot_scores))
        if self.null_scores is not None and len(self.null_scores):
            out["null_shares"] = self.null_shares()
            out["n_null"] = int(len(self.null_scores))
            out["null_method"] = "modality swap"
        return out


def analyze_dominance(
    activations: Mapping[str, np.ndarray],
    *,
    k: float = 1.0,
    eps: float = 1e-8,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    category_names: Sequence[str] | None = None,
    min_active: int = 10,
    n_null: int = 0,
    share_boot: int = 200,
) -> DominanceResult:
    """Dominance, categories and bootstrap stability for activations of paired samples in K modalities.

    Parameters
    ----------
    activations
        Modality name -> non-negative activations ``[N pairs, F features]``; row n of each array is the same pair.
        With ``{"image": ..., "text": ...}`` the first column is the MDS and categories are vision/language.
    k
        Threshold width in standard deviations (default 1).
    eps
        Added to the per-pair denominator.
    n_boot
        Bootstrap resamples (0 disables the bootstrap; ``stable`` is then all False).
    ci
        Interval coverage.
    seed
        Seeds the resampling.
    category_names
        Category label per modality (default: image -> vision, text -> language, others their own name).
    min_active
        Fewest active pairs for a feature's category to count as stable.
    n_null
        Replicates of the modality-swap null (:func:`modality_swap_null`; 0 = none): the category shares chance
        alone gives.
    share_boot
        Bootstrap replicates kept for the intervals of the category shares (the first ``min(n_boot, share_boot)``).
    """
    names, arrays = _checked(activations)  # validated once, used by every step below
    cat_names = list(category_names) if category_names is not None else category_names_for(names)
    if len(set(cat_names)) != len(cat_names) or CROSS_MODAL in cat_names or INACTIVE in cat_names:
        raise FeatureError(f"category names must be distinct and not {CROSS_MODAL!r}/{INACTIVE!r}: {cat_names}")
    if n_boot:
        _check_bootstrap_options(n_boot, ci, None)
    scores, n_active = _scores(arrays, eps)
    n_pairs = len(arrays[0])
    cats, mu, sigma = categorize(scores, k, cat_names)
    result = DominanceResult(
        modalities=names,
        category_names=cat_names,
        scores=scores,
        n_active=n_active,
        n_excluded=n_pairs - n_active,
        categories=cats,
        mu=mu,
        sigma=sigma,
        k=float(k),
        config={
            "eps": eps,
            "n_boot": n_boot,
            "ci": ci,
            "seed": seed,
            "n_pairs": int(n_pairs),
            "min_active": min_active,
        },
    )
    if n_boot:
        keep = np.full((min(n_boot, share_boot), *scores.shape), np.nan, dtype=np.float32)
        lo, hi, _ = _bootstrap(arrays, n_boot, ci, eps, seed, None, keep=keep)
        result.ci_low, result.ci_high = lo, hi
        result.boot_scores = keep
        result.stable = stability(cats, lo, hi, result.thresholds, cat_names) & (n_active >= min_active)
    if n_null:
        result.null_scores = modality_swap_null(arrays, n_null, eps, seed + 1)
    return result


def analyze_mds(
    image_acts: np.ndarray, text_acts: np.ndarray, *, k: float = 1.0, n_boot: int = 1000, seed: int = 0, **kw
) -> DominanceResult:
    """:func:`analyze_dominance` for image/text pairs (categories vision, language, cross-modal)."""
    return analyze_dominance({"image": image_acts, "text": text_acts}, k=k, n_boot=n_boot, seed=seed, **kw)

"""Interpretability metrics of features: top activating samples, EmbSim, monosemanticity and WinRate.

Definitions (each computed per feature on its top-k activating samples of one modality):

- **top-k**: the ``k`` samples with the largest activation, ties broken by the lower sample index; samples on which
  the feature is zero (or, for raw signed dimensions, not positive) are not counted, so a feature that fires on fewer
  than ``k`` samples has fewer top samples.
- **EmbSim**: mean pairwise cosine similarity of the top samples' embeddings under a *reference* encoder that is
  independent of the one being explained (given as an array ``[N, d_ref]``); ``NaN`` with fewer than 2 samples.
  A feature whose top samples are identical has EmbSim 1.
- **Monosemanticity**: the activation-weighted version, ``sum_{i<j} a_i a_j cos(e_i, e_j) / sum_{i<j} a_i a_j``,
  so strongly activating samples count more; equal to EmbSim when all top activations are equal.
- **WinRate(A, B)**: share of comparisons in which A's score is higher than B's. With the same features scored by
  both (``paired``), one comparison per feature; otherwise every feature of A against every feature of B (the
  probability that a random feature of A beats a random one of B). Ties (``|a - b| <= tol``) are counted apart:
  ``wins + ties + losses = 1``, and ``rate_half_ties = wins + ties / 2`` is reported too. NaN scores are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from modalens.features.errors import FeatureError
from modalens.features.mds import feature_chunks


def top_activating(activations: np.ndarray, k: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` samples per feature.

    Parameters
    ----------
    activations
        ``[N, F]`` activations of one modality's samples.
    k
        Samples per feature.

    Returns
    -------
    index, value
        ``[F, k]`` sample indices (``-1`` where the feature fired on fewer than ``k`` samples) and activations
        (``NaN`` there), best first.
    """
    acts = np.asarray(activations)
    if acts.ndim != 2:
        raise FeatureError(f"activations must be 2-D [N, F], got shape {acts.shape}")
    if k < 1:
        raise FeatureError(f"k must be >= 1, got {k}")
    n, f = acts.shape
    kk = min(k, n)
    order = np.empty((f, kk), dtype=np.int64)
    values = np.empty((f, kk))
    for sl in feature_chunks(f, n):  # memory bounded by the chunk, not by N x F
        chunk = acts[:, sl].astype(np.float64)
        # stable sort on -acts keeps the lower index first among equal activations
        top = np.argsort(-chunk, axis=0, kind="stable")[:kk].T  # [f_chunk, kk]
        order[sl] = top
        values[sl] = np.take_along_axis(chunk.T, top, axis=1)
    index = np.where(values > 0, order, -1)
    values = np.where(values > 0, values, np.nan)
    if kk < k:
        index = np.pad(index, ((0, 0), (0, k - kk)), constant_values=-1)
        values = np.pad(values, ((0, 0), (0, k - kk)), constant_values=np.nan)
    return index, values


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _check_reference(reference: np.ndarray, index: np.ndarray) -> np.ndarray:
    ref = np.asarray(reference, dtype=np.float64)
    if ref.ndim != 2:
        raise FeatureError(f"reference embeddings must be 2-D [N, d], got shape {ref.shape}")
    if index.size and index.max() >= len(ref):
        raise FeatureError(f"top sample index {int(index.max())} is outside the reference embeddings (N={len(ref)})")
    return _unit(ref)


def emb_sim(index: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """EmbSim per feature: mean pairwise cosine similarity of its top samples under ``reference`` ``[N, d]``."""
    index = np.asarray(index)
    ref = _check_reference(reference, index)
    out = np.full(len(index), np.nan)
    for j, row in enumerate(index):
        e = ref[row[row >= 0]]
        m = len(e)
        if m >= 2:
            sim = e @ e.T
            out[j] = (sim.sum() - np.trace(sim)) / (m * (m - 1))
    return out


def monosemanticity(index: np.ndarray, values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Activation-weighted mean pairwise cosine similarity of each feature's top samples (see module doc)."""
    index = np.asarray(index)
    ref = _check_reference(reference, index)
    out = np.full(len(index), np.nan)
    for j, (row, val) in enumerate(zip(index, np.asarray(values), strict=True)):
        keep = row >= 0
        e, a = ref[row[keep]], val[keep]
        if len(e) >= 2:
            w = np.outer(a, a)
            np.fill_diagonal(w, 0.0)
            total = w.sum()
            out[j] = float((w * (e @ e.T)).sum() / total) if total > 0 else np.nan
    return out


@dataclass(frozen=True)
class WinRate:
    """Outcome of comparing two methods' per-feature scores (see module doc)."""

    wins: float
    ties: float
    losses: float
    n_comparisons: int
    paired: bool
    rate_half_ties: float

    def to_dict(self) -> dict:
        return asdict(self)


def win_rate(a: np.ndarray, b: np.ndarray, *, paired: bool | None = None, tol: float = 1e-12) -> WinRate:
    """WinRate of method A over method B.

    Parameters
    ----------
    a, b
        Per-feature scores (higher is better, e.g. EmbSim).
    paired
        Compare feature i of A with feature i of B (needs equal lengths). Default: paired when lengths match.
    tol
        Absolute difference at or below which a comparison is a tie.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if paired is None:
        paired = len(a) == len(b)
    if paired:
        if len(a) != len(b):
            raise FeatureError(f"paired WinRate needs equal lengths, got {len(a)} and {len(b)}")
        ok = np.isfinite(a) & np.isfinite(b)
        diff = a[ok] - b[ok]
        n = int(ok.sum())
        wins, ties = int((diff > tol).sum()), int((np.abs(diff) <= tol).sum())
    else:
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        n = len(a) * len(b)
        # sort-based counting: for each a, how many b are below a - tol / within tol
        bs = np.sort(b)
        below = np.searchsorted(bs, a - tol, side="left")
        upto = np.searchsorted(bs, a + tol, side="right")
        wins, ties = int(below.sum()), int((upto - below).sum())
    if n == 0:
        return WinRate(np.nan, np.nan, np.nan, 0, bool(paired), np.nan)
    w, t = wins / n, ties / n
    return WinRate(w, t, 1.0 - w - t, n, bool(paired), w + t / 2)


def compare_methods(
    scores: Mapping[str, np.ndarray],
    categories: Mapping[str, np.ndarray] | None = None,
    *,
    metric: str = "embsim",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summaries and WinRates of several methods' per-feature scores, overall and per category.

    Parameters
    ----------
    scores
        Method name (e.g. ``raw``, ``relu``, ``ncl``) -> per-feature score.
    categories
        Method name -> per-feature category (same length as its scores); methods missing here get ``"all"`` only.
    metric
        Name of the score, written into the tables.

    Returns
    -------
    summary
        Columns ``metric, method, category, n_features, mean, median, std`` (category ``"all"`` = every feature).
    win_rates
        Columns ``metric, category, method_a, method_b, wins, ties, losses, n_comparisons, paired, rate_half_ties``
        for each ordered pair of methods, over all features and within each category both methods have.
    """
    rows, wr = [], []
    groups: dict[str, dict[str, np.ndarray]] = {}
    for method, s in scores.items():
        s = np.asarray(s, dtype=np.float64)
        groups.setdefault("all", {})[method] = s
        if categories is not None and method in categories:
            cats = np.asarray(categories[method]).astype(str)
            if len(cats) != len(s):
                raise FeatureError(f"categories[{method!r}] has {len(cats)} entries for {len(s)} scores")
            for c in np.unique(cats):
                groups.setdefault(c, {})[method] = s[cats == c]
    for cat, by_method in groups.items():
        for method, s in by_method.items():
            f = s[np.isfinite(s)]
            rows.append(
                {
                    "metric": metric,
                    "method": method,
                    "category": cat,
                    "n_features": int(len(f)),
                    "mean": float(f.mean()) if len(f) else np.nan,
                    "median": float(np.median(f)) if len(f) else np.nan,
                    "std": float(f.std()) if len(f) else np.nan,
                }
            )
        names = list(by_method)
        for ma in names:
            for mb in names:
                if ma != mb:
                    # distinct methods have distinct features: compare all pairs, never index-wise
                    res = win_rate(by_method[ma], by_method[mb], paired=False)
                    if res.n_comparisons == 0:  # no finite score on one side (e.g. inactive features): no rate
                        continue
                    wr.append({"metric": metric, "category": cat, "method_a": ma, "method_b": mb, **res.to_dict()})
    return pd.DataFrame(rows), pd.DataFrame(wr)


def top_samples_table(
    activations: Mapping[str, np.ndarray],
    k: int = 20,
    *,
    texts: Sequence[str] | None = None,
    labels: Sequence | None = None,
    features: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Long table of each feature's top-``k`` samples per modality.

    Columns: ``feature, rank, modality, sample, activation, label, text`` (``text`` is the pair's caption; the
    sample index addresses the pair, so the image of pair ``sample`` is the one to show for image rows).
    """
    parts = []
    for modality, acts in activations.items():
        idx, val = top_activating(acts, k)
        fsel = np.arange(len(idx)) if features is None else np.asarray(features)
        f_grid, r_grid = np.meshgrid(fsel, np.arange(k), indexing="ij")
        sub_idx, sub_val = idx[fsel], val[fsel]
        keep = sub_idx >= 0
        frame = pd.DataFrame(
            {
                "feature": f_grid[keep].astype(np.int64),
                "rank": r_grid[keep].astype(np.int64),
                "modality": modality,
                "sample": sub_idx[keep].astype(np.int64),
                "activation": sub_val[keep].astype(np.float64),
            }
        )
        parts.append(frame)
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    table["label"] = [str(labels[i]) for i in table["sample"]] if labels is not None else None
    table["text"] = [str(texts[i]) for i in table["sample"]] if texts is not None else None
    return table.sort_values(["feature", "modality", "rank"], kind="stable").reset_index(drop=True)

"""Feature runs compared: MDS distributions and category shares side by side, and features matched across runs.

Two ways to match a feature of run A with one of run B:

- **activation** (any two runs over the same pairs, e.g. two models embedding the same images and captions): the
  Pearson correlation of the two features' activations over every sample of both modalities (image rows then text
  rows, from each run's ``codes`` table). A feature's match is the feature of the other run with the highest
  correlation. Needs the runs' samples to be the same pairs in the same order (checked on the ``samples`` table:
  captions and labels must agree; without one, equal pair counts are taken as aligned and the result says so).
- **decoder** (runs in the same embedding space, e.g. an SAE and NCL, or two seeds, on one model): cosine
  similarity of the decoder rows. Refused across embedding models, whose spaces are unrelated.

Each feature of A gets its best match in B, with the score, both categories and MDS; the summary gives the share of
A's live features matched above 0.5 and the agreement of categories among those.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modalens.features.errors import FeatureError
from modalens.features.mds import CROSS_MODAL, INACTIVE

MATCHES = ("auto", "activation", "decoder")
GOOD_MATCH = 0.5


@dataclass
class RunFeatures:
    """What the comparison needs of one feature run."""

    name: str
    model: str | None
    features: pd.DataFrame  # feature, mds, category, stable, ...
    dominance: dict[str, Any]
    metrics: dict[str, Any]
    extractor: str
    codes: pd.DataFrame | None = None  # sample, modality, feature, activation
    samples: pd.DataFrame | None = None
    n_pairs: int = 0
    d_in: int | None = None
    w_dec: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return len(self.features)


def load_run_features(run_dir: str | os.PathLike, name: str | None = None) -> RunFeatures:
    """Read a feature run (through :func:`modalens.runs.read_run`) for :func:`compare_runs`.

    Raises a :class:`~modalens.runs.RunError` naming the directory when it is not a feature run.
    """
    from modalens.features.sae import load_extractor
    from modalens.runs import RunError, read_run

    run = read_run(run_dir)
    if run.kind != "features":
        raise RunError(
            f"{run.path} is an {run.kind!r} run, not a feature run; compare reads runs written by modalens features "
            "demo or modalens features study"
        )
    man = run.manifest
    w_dec = None
    if (run.path / "extractor" / "cfg.json").is_file():
        w_dec = load_extractor(run.path / "extractor").W_dec.detach().cpu().numpy()
    return RunFeatures(
        name=name or run.path.name,
        model=man.model.name,
        features=run.table("features").sort_values("feature").reset_index(drop=True),
        dominance=man.dominance.model_dump(mode="json", exclude_none=True),
        metrics=dict(man.extractor.metrics),
        extractor=man.extractor.name,
        codes=run.table("codes") if run.has_table("codes") else None,
        samples=run.optional_table("samples"),
        n_pairs=int(man.dominance.n_pairs),
        d_in=man.model.dim,
        w_dec=w_dec,
    )


# ------------------------------------------------------------------------------------------------ matching
def dense_codes(codes: pd.DataFrame, n_pairs: int, n_features: int, modalities: Sequence[str] = ("image", "text")):
    """A ``codes`` table as a sparse matrix ``[K * n_pairs, F]`` (modality blocks in ``modalities`` order)."""
    from scipy import sparse

    offset = {m: i * n_pairs for i, m in enumerate(modalities)}
    rows = codes["sample"].to_numpy() + codes["modality"].map(offset).to_numpy()
    return sparse.csr_matrix(
        (codes["activation"].to_numpy(np.float64), (rows, codes["feature"].to_numpy())),
        shape=(len(modalities) * n_pairs, n_features),
    )


def activation_similarity(a, b, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """For every column of ``a`` (sparse or dense ``[M, Fa]``), the column of ``b`` ``[M, Fb]`` with the highest
    Pearson correlation over the M rows, and that correlation (NaN for a column that never varies)."""
    from scipy import sparse

    a = sparse.csc_matrix(a)
    b = sparse.csc_matrix(b)
    if a.shape[0] != b.shape[0]:
        raise FeatureError(f"activation matching needs the same samples: {a.shape[0]} rows vs {b.shape[0]}")
    m = a.shape[0]

    def moments(x):  # noqa: ANN001, ANN202
        mean = np.asarray(x.mean(axis=0)).ravel()
        sq = np.asarray(x.multiply(x).mean(axis=0)).ravel()
        return mean, np.sqrt(np.maximum(sq - mean**2, 0.0))

    ma, sa = moments(a)
    mb, sb = moments(b)
    best = np.full(a.shape[1], -1, dtype=np.int64)
    score = np.full(a.shape[1], np.nan)
    bt = b.T.tocsr()
    for start in range(0, a.shape[1], chunk):
        stop = min(a.shape[1], start + chunk)
        cross = np.asarray((bt @ a[:, start:stop]).todense()).T / m  # [chunk, Fb]
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = (cross - np.outer(ma[start:stop], mb)) / np.outer(sa[start:stop], sb)
        corr[:, ~(sb > 0)] = -np.inf
        idx = np.argmax(corr, axis=1)
        val = corr[np.arange(stop - start), idx]
        ok = (sa[start:stop] > 0) & np.isfinite(val)
        best[start:stop] = np.where(ok, idx, -1)
        score[start:stop] = np.where(ok, val, np.nan)
    return best, score


def decoder_similarity(w_a: np.ndarray, w_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every decoder row of ``w_a``, the row of ``w_b`` with the highest cosine similarity, and that cosine."""
    a = np.asarray(w_a, dtype=np.float64)
    b = np.asarray(w_b, dtype=np.float64)
    if a.shape[1] != b.shape[1]:
        raise FeatureError(f"decoder matching needs one embedding width: {a.shape[1]} vs {b.shape[1]}")
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    best = np.empty(len(a), dtype=np.int64)
    score = np.empty(len(a))
    for start in range(0, len(a), 2048):
        sim = a[start : start + 2048] @ b.T
        best[start : start + 2048] = sim.argmax(axis=1)
        score[start : start + 2048] = sim.max(axis=1)
    return best, score


def samples_aligned(a: RunFeatures, b: RunFeatures) -> tuple[bool, str]:
    """Whether two runs describe the same pairs in the same order, and how that was judged."""
    if a.n_pairs != b.n_pairs:
        return False, f"{a.name} has {a.n_pairs} pairs and {b.name} {b.n_pairs}"
    if a.samples is None or b.samples is None:
        return True, "same number of pairs; no samples table to check them against (assumed aligned by row)"
    for col in ("text", "label"):
        if col in a.samples and col in b.samples:
            x, y = a.samples[col].astype(str).to_numpy(), b.samples[col].astype(str).to_numpy()
            if a.samples[col].notna().any() and b.samples[col].notna().any() and not np.array_equal(x, y):
                first = int(np.flatnonzero(x != y)[0])
                return False, f"pair {first} differs: {col} {x[first]!r} in {a.name}, {y[first]!r} in {b.name}"
    return True, "same pairs (captions and labels agree row by row)"


def match_features(a: RunFeatures, b: RunFeatures, by: str = "auto") -> tuple[pd.DataFrame, dict[str, Any]]:
    """Each live feature of ``a`` with its best match in ``b``.

    Returns the matches (``feature_a, feature_b, score, category_a, category_b, mds_a, mds_b, stable_a, stable_b,
    label_a, label_b``)
    and a summary (method, how alignment was judged, share matched above :data:`GOOD_MATCH`, category agreement
    among good matches, the agreement matrix).
    """
    if by not in MATCHES:
        raise FeatureError(f"match must be one of {', '.join(MATCHES)}, got {by!r}")
    same_space = a.model is not None and a.model == b.model and a.d_in == b.d_in
    if by == "auto":
        by = "decoder" if same_space and a.w_dec is not None and b.w_dec is not None else "activation"
    note = ""
    if by == "decoder":
        if not same_space:
            raise FeatureError(
                f"decoder matching needs one embedding model; {a.name} is {a.model or 'of an unnamed model'} "
                f"({a.d_in}-d) and {b.name} {b.model or 'of an unnamed model'} ({b.d_in}-d): use --match activation "
                "on runs over the same pairs"
            )
        if a.w_dec is None or b.w_dec is None:
            raise FeatureError("decoder matching needs both runs' extractor weights (extractor/ is missing)")
        best, score = decoder_similarity(a.w_dec, b.w_dec)
        note = "cosine of decoder rows (one embedding space)"
    else:
        ok, why = samples_aligned(a, b)
        if not ok:
            raise FeatureError(f"activation matching needs the same pairs: {why}")
        if a.codes is None or b.codes is None:
            missing = a.name if a.codes is None else b.name
            raise FeatureError(f"{missing} stores no codes table (run the study with store_codes=True)")
        best, score = activation_similarity(
            dense_codes(a.codes, a.n_pairs, a.n_features), dense_codes(b.codes, b.n_pairs, b.n_features)
        )
        note = f"Pearson correlation of activations over both modalities; {why}"
    fa, fb = a.features, b.features
    live = (fa["category"] != INACTIVE).to_numpy() & (best >= 0)
    idx = np.flatnonzero(live)
    j = best[idx]
    matches = pd.DataFrame(
        {
            "feature_a": fa["feature"].to_numpy()[idx].astype(np.int64),
            "feature_b": fb["feature"].to_numpy()[j].astype(np.int64),
            "score": score[idx],
            "category_a": fa["category"].to_numpy()[idx].astype(str),
            "category_b": fb["category"].to_numpy()[j].astype(str),
            "mds_a": fa["mds"].to_numpy()[idx].astype(np.float64),
            "mds_b": fb["mds"].to_numpy()[j].astype(np.float64),
            "stable_a": fa["stable"].to_numpy()[idx].astype(bool),
            "stable_b": fb["stable"].to_numpy()[j].astype(bool),
            "label_a": _labels(fa)[idx],
            "label_b": _labels(fb)[j],
        }
    ).sort_values("score", ascending=False, kind="stable", ignore_index=True)
    good = matches[matches["score"] >= GOOD_MATCH]
    cats = [*a.dominance.get("category_names", ["vision", "language"]), CROSS_MODAL]
    agreement = {ca: {cb: int(((good.category_a == ca) & (good.category_b == cb)).sum()) for cb in cats} for ca in cats}
    summary = {
        "a": a.name,
        "b": b.name,
        "method": by,
        "how": note,
        "n_live_a": int((fa["category"] != INACTIVE).sum()),
        "n_matched": int(len(matches)),
        "median_score": float(matches["score"].median()) if len(matches) else float("nan"),
        "good_threshold": GOOD_MATCH,
        "share_good": float(len(good) / max(1, len(matches))),
        "category_agreement": float((good.category_a == good.category_b).mean()) if len(good) else float("nan"),
        "mds_correlation": float(np.corrcoef(good.mds_a, good.mds_b)[0, 1]) if len(good) > 2 else float("nan"),
        "agreement_matrix": agreement,
        "distinct_b": int(good["feature_b"].nunique()),
    }
    return matches, summary


def _labels(features: pd.DataFrame) -> np.ndarray:
    """Each feature's automatic label (None without one)."""
    if "label" not in features:
        return np.full(len(features), None, dtype=object)
    return np.array([v if isinstance(v, str) else None for v in features["label"]], dtype=object)


# ------------------------------------------------------------------------------------------------ run summaries
def run_summary(r: RunFeatures) -> dict[str, Any]:
    """One run's row of the comparison: model, extractor, sparsity, MDS distribution, shares with intervals, the
    modality-swap null, stability."""
    live = r.features[r.features["category"] != INACTIVE]
    mds = live["mds"].to_numpy(np.float64)
    dom = r.dominance
    return {
        "run": r.name,
        "model": r.model,
        "extractor": r.extractor,
        "n_features": r.n_features,
        "n_live": int(len(live)),
        "l0": r.metrics.get("l0"),
        "explained_variance": r.metrics.get("explained_variance"),
        "mds_mean": float(mds.mean()) if len(mds) else float("nan"),
        "mds_median": float(np.median(mds)) if len(mds) else float("nan"),
        "mds_quartiles": [float(q) for q in np.quantile(mds, [0.25, 0.75])] if len(mds) else [],
        "k": dom.get("k"),
        "thresholds": [dom.get("mds_low_threshold"), dom.get("mds_high_threshold")],
        "shares": dom.get("proportions", {}),
        "share_ci": dom.get("share_ci", {}),
        # chance: the modality-swapped data against this run's thresholds (see mds.DominanceResult.null_shares)
        "null_shares": {c: v.get("at_thresholds_mean") for c, v in dom.get("null_shares", {}).items()},
        "null_shares_same_rule": {c: v.get("mean") for c, v in dom.get("null_shares", {}).items()},
        "stable_share": dom.get("stable_share"),
        "stable_counts": dom.get("stable_counts", {}),
    }


def compare_runs(runs: Sequence[RunFeatures], match: str = "auto") -> dict[str, Any]:
    """Every run's summary and, for each ordered pair of runs (first against each other), the matched features."""
    if len(runs) < 2:
        raise FeatureError("compare needs at least two feature runs")
    pairs = []
    for other in runs[1:]:
        for a, b in ((runs[0], other), (other, runs[0])):
            matches, summary = match_features(a, b, match)
            pairs.append({"summary": summary, "matches": matches})
    return {"runs": [run_summary(r) for r in runs], "pairs": pairs}


def load_runs(run_dirs: Sequence[str | os.PathLike]) -> list[RunFeatures]:
    """:func:`load_run_features` of each directory, named by folder (``name-2`` when names repeat)."""
    seen: dict[str, int] = {}
    out = []
    for d in run_dirs:
        base = Path(d).name
        seen[base] = seen.get(base, 0) + 1
        out.append(load_run_features(d, base if seen[base] == 1 else f"{base}-{seen[base]}"))
    return out

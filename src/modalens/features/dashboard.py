"""What a feature card shows beyond the top samples: activation histograms, examples at several activation levels
(duplicates collapsed), nearest features by decoder cosine, the zero-shot classes a feature pushes, and an automatic
label from the captions of the pairs it fires on, with its score.

Every function takes plain arrays and returns a long table (documented in docs/features.md and declared in
:mod:`modalens.runs.schema`), so the study stores them in the run and the app only reads them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from modalens.features.errors import FeatureError
from modalens.features.mds import feature_chunks

LEVELS = ("top", "middle", "low")
# Examples of a level are drawn from a band of the feature's non-zero activations: quantiles (lower, upper).
LEVEL_BANDS = {"middle": (0.4, 0.6), "low": (0.0, 0.2)}


# ------------------------------------------------------------------------------------------------ histograms
def activation_histograms(activations: Mapping[str, np.ndarray], bins: int = 20) -> pd.DataFrame:
    """Per feature and modality, the histogram of the feature's non-zero activations.

    Both modalities of a feature share one set of edges, ``0 .. max activation of the feature`` in ``bins`` equal
    bins, so their histograms can be drawn on one axis. Columns: ``feature, modality, edges`` (``bins + 1``
    floats), ``counts`` (``bins`` ints), ``n_zero`` (samples where the feature is 0), ``n`` (samples).
    Features that never fire are left out.
    """
    if bins < 1:
        raise FeatureError(f"bins must be >= 1, got {bins}")
    names = list(activations)
    arrays = [np.asarray(activations[m]) for m in names]
    n_features = arrays[0].shape[1]
    rows: list[dict] = []
    for sl in feature_chunks(n_features, sum(len(a) for a in arrays)):
        chunk = [a[:, sl].astype(np.float64) for a in arrays]
        top = np.max([c.max(axis=0) if len(c) else np.zeros(c.shape[1]) for c in chunk], axis=0)
        for local, j in enumerate(range(sl.start, sl.stop)):
            if not top[local] > 0:
                continue
            edges = np.linspace(0.0, float(top[local]), bins + 1)
            for m, c in zip(names, chunk, strict=True):
                col = c[:, local]
                pos = col[col > 0]
                counts = np.histogram(pos, bins=edges)[0] if len(pos) else np.zeros(bins, dtype=np.int64)
                rows.append(
                    {
                        "feature": j,
                        "modality": m,
                        "edges": edges.tolist(),
                        "counts": counts.astype(np.int64).tolist(),
                        "n_zero": int(len(col) - len(pos)),
                        "n": int(len(col)),
                    }
                )
    return pd.DataFrame(rows, columns=["feature", "modality", "edges", "counts", "n_zero", "n"])


# ------------------------------------------------------------------------------------------------ examples
def duplicate_groups(rows: np.ndarray | Sequence[str]) -> np.ndarray:
    """Group id per sample: samples with identical content (equal strings, or equal embedding rows) share one."""
    if isinstance(rows, np.ndarray) and rows.ndim == 2:
        _, inverse = np.unique(np.ascontiguousarray(rows), axis=0, return_inverse=True)
        return inverse.reshape(-1).astype(np.int64)
    _, inverse = np.unique(np.asarray([str(r) for r in rows], dtype=object), return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def feature_examples(
    activations: Mapping[str, np.ndarray],
    groups: Mapping[str, np.ndarray],
    *,
    top: int = 10,
    per_level: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """Examples of each feature at three activation levels, per modality, duplicates collapsed.

    Samples with the same content (``groups[modality]``, e.g. :func:`duplicate_groups` of the captions) are one
    example: it is shown once, by its most strongly activated sample, with ``count`` = how many of its samples the
    feature fires on. Levels: ``top`` = the ``top`` strongest distinct examples; ``middle`` and ``low`` =
    ``per_level`` distinct examples drawn at random (seeded) among the samples whose activation lies in the
    40-60 % and 0-20 % quantile bands of the feature's non-zero activations (:data:`LEVEL_BANDS`), leaving out
    examples already shown above.

    Columns: ``feature, modality, level, rank, sample, activation, count, band_low, band_high`` (the band's
    activation bounds; for ``top`` the lowest and highest activation shown).
    """
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {k: [] for k in ("feature", "modality", "level", "rank", "sample", "activation", "count")}
    out["band_low"], out["band_high"] = [], []

    def add(j, m, level, rank, s, a, c, lo, hi):  # noqa: ANN001, ANN202
        for key, v in zip(out, (j, m, level, rank, s, a, c, lo, hi), strict=True):
            out[key].append(v)

    for m, acts in activations.items():
        acts = np.asarray(acts)
        gid = np.asarray(groups[m])
        if len(gid) != len(acts):
            raise FeatureError(f"groups[{m!r}] has {len(gid)} entries for {len(acts)} samples")
        for sl in feature_chunks(acts.shape[1], len(acts)):
            chunk = acts[:, sl].astype(np.float64)
            for local, j in enumerate(range(sl.start, sl.stop)):
                col = chunk[:, local]
                idx = np.flatnonzero(col > 0)
                if not len(idx):
                    continue
                val = col[idx]
                order = np.lexsort((idx, -val))  # strongest first, lower sample index first on ties
                idx, val = idx[order], val[order]
                g = gid[idx]
                # one example per content group: its first (strongest) sample; count = active samples of the group
                first = np.unique(g, return_index=True)[1]
                first.sort()
                counts = np.bincount(g)[g[first]]
                shown = set()
                top_n = min(top, len(first))
                for r in range(top_n):
                    i = first[r]
                    add(
                        j,
                        m,
                        "top",
                        r,
                        int(idx[i]),
                        float(val[i]),
                        int(counts[r]),
                        float(val[first[top_n - 1]]),
                        float(val[first[0]]),
                    )
                    shown.add(int(g[i]))
                for level, (qlo, qhi) in LEVEL_BANDS.items():
                    lo, hi = np.quantile(val, [qlo, qhi])
                    cand = [(r, i) for r, i in enumerate(first) if lo <= val[i] <= hi and int(g[i]) not in shown]
                    if not cand:
                        continue
                    pick = sorted(rng.choice(len(cand), size=min(per_level, len(cand)), replace=False))
                    for rank, c in enumerate(pick):
                        r, i = cand[c]
                        add(j, m, level, rank, int(idx[i]), float(val[i]), int(counts[r]), float(lo), float(hi))
                        shown.add(int(g[i]))
    frame = pd.DataFrame(out)
    for c in ("feature", "rank", "sample", "count"):
        frame[c] = frame[c].astype(np.int64)
    return frame


# ------------------------------------------------------------------------------------------------ neighbours
def decoder_neighbours(w_dec: np.ndarray, n: int = 5, live: np.ndarray | None = None) -> pd.DataFrame:
    """Each live feature's ``n`` nearest live features by cosine similarity of their decoder rows.

    Columns ``feature, rank, neighbour, cosine`` (rank 0 = nearest; a feature is never its own neighbour).
    """
    w = np.asarray(w_dec, dtype=np.float64)
    f = len(w)
    live = np.ones(f, bool) if live is None else np.asarray(live, bool)
    unit = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
    cand = np.flatnonzero(live)
    rows: dict[str, list] = {"feature": [], "rank": [], "neighbour": [], "cosine": []}
    if len(cand) < 2:
        return pd.DataFrame(rows)
    k = min(n, len(cand) - 1)
    basis = unit[cand]
    for start in range(0, len(cand), 1024):
        block = cand[start : start + 1024]
        sim = unit[block] @ basis.T
        sim[np.arange(len(block)), np.arange(start, start + len(block))] = -np.inf  # not itself
        part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        for b, j in enumerate(block):
            best = part[b][np.argsort(-sim[b, part[b]], kind="stable")]
            for r, c in enumerate(best):
                rows["feature"].append(int(j))
                rows["rank"].append(r)
                rows["neighbour"].append(int(cand[c]))
                rows["cosine"].append(float(sim[b, c]))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ class effects
def class_effects(
    direction: np.ndarray, class_dirs: np.ndarray, class_names: Sequence[str], *, n: int = 3, live=None
) -> pd.DataFrame:
    """The zero-shot classes each feature pushes towards and away from.

    ``effect[j, c] = direction[j] . class_dirs[c]`` minus its mean over classes: the change of image-to-class-prompt
    similarity per unit of the feature's activation (softmax over classes ignores a shift common to all, hence the
    centring). For a sparse autoencoder ``direction`` is the feature's decoder row and ``class_dirs`` the unit class
    prompt embeddings; for NCL (codes are the representation) ``direction`` is the identity and ``class_dirs`` the
    prompts' unit-norm codes. Columns ``feature, class, effect, rank``: the ``n`` largest (rank 0, 1 ...) and the
    ``n`` smallest (rank -1, -2 ...) effects per live feature.
    """
    d = np.asarray(direction, dtype=np.float64)
    c = np.asarray(class_dirs, dtype=np.float64)
    if d.shape[1] != c.shape[1]:
        raise FeatureError(f"feature directions have width {d.shape[1]}, class directions {c.shape[1]}")
    if len(class_names) != len(c):
        raise FeatureError(f"{len(class_names)} class names for {len(c)} class directions")
    eff = d @ c.T
    eff -= eff.mean(axis=1, keepdims=True)
    live = np.ones(len(d), bool) if live is None else np.asarray(live, bool)
    k = min(n, len(c))
    rows: dict[str, list] = {"feature": [], "class": [], "effect": [], "rank": []}
    order = np.argsort(-eff, axis=1, kind="stable")
    for j in np.flatnonzero(live):
        picks = [(r, order[j, r]) for r in range(k)] + [(-(r + 1), order[j, -(r + 1)]) for r in range(k)]
        for rank, ci in picks:
            if rank < 0 and len(c) <= k:  # few classes: every class is already among the top ones
                break
            rows["feature"].append(int(j))
            rows["class"].append(str(class_names[ci]))
            rows["effect"].append(float(eff[j, ci]))
            rows["rank"].append(int(rank))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ labels
_STOP = "a an the of and or in on at to for with by from as is are be this that these those it its"
STOP_WORDS = frozenset(_STOP.split(" ") + ["photo", "picture", "image"])


def feature_labels(
    pair_activation: np.ndarray, texts: Sequence[str], *, max_terms: int = 3, min_count: int = 3, candidates: int = 12
) -> pd.DataFrame:
    """An automatic label per feature from the distinctive words of the captions of the pairs it fires on.

    ``pair_activation [N, F]`` is the feature's activation per pair (the study uses image + text). For each word
    ``t`` (lower-case, in at least ``min_count`` captions, not a stop word), ``r_t`` = Pearson correlation between
    "the caption holds ``t``" and the activation, over all pairs. The label starts from the word with the largest
    ``r_t`` and greedily adds (as alternatives: "coat / jacket") the candidate word that most raises the correlation
    of "the caption holds any label word" with the activation, up to ``max_terms`` words.

    Columns ``feature, label, label_score, label_coverage, label_precision`` where ``label_score`` is that final
    correlation (1 = the label's words predict exactly where the feature fires; ~0 = unrelated),
    ``label_coverage`` the share of the feature's activation mass on pairs whose caption holds a label word, and
    ``label_precision`` the share of those pairs on which the feature fires. Features that never fire, or whose best
    word does not correlate positively, get no label (null).
    """
    import re

    acts = np.asarray(pair_activation, dtype=np.float64)
    n, f = acts.shape
    if len(texts) != n:
        raise FeatureError(f"texts has {len(texts)} entries for {n} pairs")
    token = re.compile(r"[a-z][a-z'-]+")
    docs = [set(token.findall(str(t).lower())) - STOP_WORDS for t in texts]
    vocab_count: dict[str, int] = {}
    for d in docs:
        for w in d:
            vocab_count[w] = vocab_count.get(w, 0) + 1
    vocab = sorted(w for w, c in vocab_count.items() if min_count <= c < n)
    out = {
        "feature": np.arange(f, dtype=np.int64),
        "label": [None] * f,
        "label_score": np.full(f, np.nan),
        "label_coverage": np.full(f, np.nan),
        "label_precision": np.full(f, np.nan),
    }
    if not vocab:
        frame = pd.DataFrame(out)
        frame["label"] = pd.Series(out["label"], dtype="str")
        return frame
    col = {w: i for i, w in enumerate(vocab)}
    x = np.zeros((n, len(vocab)), dtype=np.float64)
    for r, d in enumerate(docs):
        for w in d:
            if w in col:
                x[r, col[w]] = 1.0
    xm, xs = x.mean(axis=0), x.std(axis=0)
    for sl in feature_chunks(f, n):
        a = acts[:, sl]
        am, asd = a.mean(axis=0), a.std(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = ((x.T @ a) / n - np.outer(xm, am)) / np.outer(xs, asd)  # [V, f]
        for local, j in enumerate(range(sl.start, sl.stop)):
            if not asd[local] > 0:
                continue
            r = corr[:, local]
            order = np.argsort(-np.nan_to_num(r, nan=-np.inf), kind="stable")[:candidates]
            if not r[order[0]] > 0:
                continue
            chosen = [order[0]]
            holds = x[:, order[0]] > 0
            score = float(r[order[0]])
            y = a[:, local]
            while len(chosen) < max_terms:
                best, best_score = None, score
                for c in order:
                    if c in chosen:
                        continue
                    s = _corr(holds | (x[:, c] > 0), y)
                    if s > best_score + 1e-9:
                        best, best_score = c, s
                if best is None:
                    break
                chosen.append(best)
                holds = holds | (x[:, best] > 0)
                score = best_score
            out["label"][j] = " / ".join(vocab[c] for c in chosen)
            out["label_score"][j] = score
            out["label_coverage"][j] = float(y[holds].sum() / y.sum())
            out["label_precision"][j] = float((y[holds] > 0).mean())
    frame = pd.DataFrame(out)
    frame["label"] = pd.Series(out["label"], dtype="str")
    return frame


def _corr(indicator: np.ndarray, y: np.ndarray) -> float:
    x = indicator.astype(np.float64)
    sx, sy = x.std(), y.std()
    if not (sx > 0 and sy > 0):
        return -np.inf
    return float(((x - x.mean()) * (y - y.mean())).mean() / (sx * sy))


# ------------------------------------------------------------------------------------------------ codes
def sparse_codes(activations: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Every non-zero activation: ``sample, modality, feature, activation`` (what the app's query and the
    comparison of runs read)."""
    parts = []
    for m, a in activations.items():
        a = np.asarray(a)
        s, j = np.nonzero(a > 0)
        parts.append(
            pd.DataFrame(
                {
                    "sample": s.astype(np.int64),
                    "modality": m,
                    "feature": j.astype(np.int64),
                    "activation": a[s, j].astype(np.float64),
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

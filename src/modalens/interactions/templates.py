"""Templates: frequent and influential multimodal feature sets (after M2Lens).

Two steps, each one function:

1. :func:`discretise` turns every instance into a set of *items*: an influential word (``"text:great"``), or a
   named feature of a non-text modality at a level (``"vision:Joy high"``, ``"audio:F0 low"``). With an attribution
   only influential items are kept, so a frequent itemset means "frequent AND influential".
2. :func:`mine_templates` mines frequent itemsets with mlxtend's FP-growth separately for each prediction side
   (positive / negative for regression, each predicted class for classification), keeps the multimodal ones, and
   ranks them by support, mean attribution and mean prediction.

:func:`item_attributions` gives each instance's attribution per item, which :func:`mine_templates` sums over a
template's items (see there for the exact definition of ``mean_attribution``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from modalens._core.errors import ModalensError
from modalens.data.dataset import Modality, MultimodalDataset
from modalens.interactions.attribution import FeatureAttribution

LEVELS: dict[int, tuple[str, ...]] = {
    2: ("low", "high"),
    3: ("low", "mid", "high"),
    4: ("very-low", "low", "high", "very-high"),
    5: ("very-low", "low", "mid", "high", "very-high"),
}
TEMPLATE_COLUMNS = [
    "template_id",
    "items",
    "modalities",
    "polarity",
    "support",
    "count",
    "mean_prediction",
    "mean_attribution",
    "rank",
]
RANKINGS = ("support", "attribution", "prediction")


class TemplateError(ModalensError, ValueError):
    """Bad input to template mining; the message names the argument and what was expected."""


# -- items -------------------------------------------------------------------------------------------------------


def _normalise_word(word: str) -> str:
    return word.strip().lower()


def _as_list(attribution: FeatureAttribution | Sequence[FeatureAttribution] | None) -> list[FeatureAttribution]:
    if attribution is None:
        return []
    if isinstance(attribution, FeatureAttribution):
        return [attribution]
    attrs = list(attribution)
    if not all(isinstance(a, FeatureAttribution) for a in attrs):
        raise TemplateError("attribution: expected a FeatureAttribution, a sequence of them, or None")
    return attrs


def _aligned(attrs: list[FeatureAttribution], granularity: str, dataset: MultimodalDataset) -> dict[str, np.ndarray]:
    """Per-modality values of the attribution of that granularity, re-ordered to dataset rows 0..N-1."""
    found = [a for a in attrs if a.granularity == granularity]
    if not found:
        return {}
    attr = found[0]
    n = len(dataset)
    rows = attr.rows()
    if len(rows) != n or not np.array_equal(np.sort(rows), np.arange(n)):
        raise TemplateError(
            f"attribution ({granularity}) covers {len(rows)} instances; it must cover every row of dataset "
            f"{dataset.name!r} (N = {n}) -- explain the same dataset you discretise"
        )
    order = np.empty(n, dtype=np.int64)
    order[rows] = np.arange(n)
    return {m: v[order] for m, v in attr.values.items()}


def _levels(means: np.ndarray, has: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin per-instance feature means ``[N, D]`` by the feature's quantiles over instances with data; -1 = none."""
    out = np.full(means.shape, -1, dtype=np.int64)
    if not has.any():
        return out
    qs = np.linspace(0, 1, n_bins + 1)[1:-1]
    for d in range(means.shape[1]):
        col = means[has, d]
        if np.ptp(col) == 0:  # a constant feature carries no level
            continue
        edges = np.quantile(col, qs)
        out[has, d] = np.searchsorted(edges, col, side="right")
    return out


def discretise(
    dataset: MultimodalDataset,
    attribution: FeatureAttribution | Sequence[FeatureAttribution] | None = None,
    *,
    n_bins: int = 3,
    top_words: int | None = 3,
    top_features: int | None = 3,
    min_abs_attribution: float = 0.0,
    modalities: Sequence[str] | None = None,
) -> list[list[str]]:
    """Per instance, its items: influential words and named features at a level.

    Parameters
    ----------
    dataset
        The instances.
    attribution
        None, or one or two :class:`~modalens.interactions.attribution.FeatureAttribution` s over every instance of
        ``dataset``: a ``"steps"`` attribution ranks words, a ``"features"`` attribution ranks named features.
    n_bins
        Levels per feature, 2 to 5: ``low / high``, ``low / mid / high``, then ``very-low`` / ``very-high`` added.
        Level edges are the feature's quantiles over the dataset's per-instance means, so each level holds about
        ``1 / n_bins`` of the instances.
    top_words
        Modalities with words (text): per instance, the words of the ``top_words`` steps with the largest
        ``|attribution|`` (None: all that pass ``min_abs_attribution``). Without a steps attribution every
        distinct word is an item.
    top_features
        Modalities without words: per instance and modality, the ``top_features`` features with the largest
        ``|attribution|`` (features attribution), or, without one, the features furthest from their dataset mean
        (largest ``|z|`` of the per-instance mean), whose middle level is then left out as uninformative.
    min_abs_attribution
        Items need ``|attribution| > min_abs_attribution`` (so exact zeros never count as influential).
    modalities
        Restrict to these modalities (default: all of the dataset's).

    Returns
    -------
    list[list[str]]
        ``"<modality>:<word>"`` (lower-cased) and ``"<modality>:<feature> <level>"`` items, sorted, per instance.
        A feature's value for an instance is its mean over the instance's real steps.
    """
    if n_bins not in LEVELS:
        raise TemplateError(f"n_bins must be one of {sorted(LEVELS)}, got {n_bins}")
    for name, k in (("top_words", top_words), ("top_features", top_features)):
        if k is not None and k < 1:
            raise TemplateError(f"{name} must be a positive integer or None, got {k}")
    names = list(dataset.modality_names if modalities is None else modalities)
    for m in names:
        dataset[m]  # raises KeyError naming the modality when unknown
        if ":" in m:
            raise TemplateError(f"modality {m!r}: names containing ':' cannot be told apart from items")
    attrs = _as_list(attribution)
    step_attr = _aligned(attrs, "steps", dataset)
    feat_attr = _aligned(attrs, "features", dataset)
    items: list[set[str]] = [set() for _ in range(len(dataset))]
    for m in names:
        modality = dataset[m]
        if modality.patches is not None:
            continue  # image pixels make no items
        if modality.tokens is not None:
            if modality.word_texts is not None:
                words, mask, attr = _token_words(modality, step_attr.get(m))
                _word_items(items, m, words, mask, attr, top_words, min_abs_attribution)
        elif modality.words is not None:
            _word_items(
                items, m, modality.words, modality.step_mask(), step_attr.get(m), top_words, min_abs_attribution
            )
        else:
            _feature_items(
                items,
                m,
                modality.values,
                modality.step_mask(),
                modality.feature_names,
                feat_attr.get(m),
                n_bins,
                top_features,
                min_abs_attribution,
            )
    return [sorted(s) for s in items]


def _word_items(
    items: list[set[str]],
    name: str,
    words: list[list[str]],
    mask: np.ndarray,
    attr: np.ndarray | None,
    top: int | None,
    min_abs: float,
) -> None:
    for i, tokens in enumerate(words):
        steps = [t for t in np.flatnonzero(mask[i]) if _normalise_word(tokens[t])]
        if attr is not None:
            steps = [t for t in steps if abs(attr[i, t]) > min_abs]
            steps.sort(key=lambda t, i=i: -abs(attr[i, t]))
            steps = steps if top is None else steps[:top]
        items[i].update(f"{name}:{_normalise_word(tokens[t])}" for t in steps)


def _token_words(modality: Modality, attr: np.ndarray | None) -> tuple[list[list[str]], np.ndarray, np.ndarray | None]:
    """A token modality's whole words per instance (padded), their mask, and the summed piece attribution of each."""
    counts = modality.word_counts()
    width = int(counts.max(initial=0))
    words = [list(w) + [""] * (width - len(w)) for w in modality.word_texts]
    mask = np.arange(width)[None, :] < counts[:, None]
    if attr is None:
        return words, mask, None
    per_word = np.zeros((len(counts), width))
    r, s = np.nonzero(modality.word_index >= 0)
    np.add.at(per_word, (r, modality.word_index[r, s]), attr[r, s])
    return words, mask, per_word


def _feature_items(
    items: list[set[str]],
    name: str,
    values: np.ndarray,
    mask: np.ndarray,
    features: list[str],
    attr: np.ndarray | None,
    n_bins: int,
    top: int | None,
    min_abs: float,
) -> None:
    weight = mask.astype(np.float64)[:, :, None]
    count = weight.sum(1)
    has = count[:, 0] > 0
    means = (values * weight).sum(1) / np.maximum(count, 1.0)
    level = _levels(means, has, n_bins)
    labels = LEVELS[n_bins]
    mid = n_bins // 2 if n_bins % 2 else -1
    if attr is not None:
        score = np.abs(attr)
        eligible = (score > min_abs) & (level >= 0)
    else:
        mu, sd = means[has].mean(0) if has.any() else 0.0, means[has].std(0) if has.any() else 1.0
        score = np.abs(means - mu) / np.where(sd > 0, sd, 1.0)
        eligible = (level >= 0) & (level != mid)
    for i in np.flatnonzero(has):
        cand = np.flatnonzero(eligible[i])
        cand = cand[np.argsort(-score[i, cand], kind="stable")]
        if top is not None:
            cand = cand[:top]
        items[i].update(f"{name}:{features[d]} {labels[level[i, d]]}" for d in cand)


def item_modality(item: str) -> str:
    """The modality an item belongs to (the part before the first ``:``)."""
    return item.split(":", 1)[0]


def item_attributions(
    dataset: MultimodalDataset,
    attribution: FeatureAttribution | Sequence[FeatureAttribution],
    items: Sequence[Sequence[str]],
) -> list[dict[str, float]]:
    """Each instance's attribution per item, for :func:`mine_templates`.

    A word item gets the summed steps attribution of the instance's steps holding that word; a feature item gets
    the feature's features attribution. Items whose granularity was not computed are left out (they count as
    unknown, not as zero).
    """
    if len(items) != len(dataset):
        raise TemplateError(f"items holds {len(items)} instances; dataset {dataset.name!r} has {len(dataset)}")
    attrs = _as_list(attribution)
    step_attr = _aligned(attrs, "steps", dataset)
    feat_attr = _aligned(attrs, "features", dataset)
    out: list[dict[str, float]] = []
    token_words = {
        m: _token_words(dataset[m], step_attr.get(m))
        for m in dataset.modality_names
        if dataset[m].tokens is not None and dataset[m].word_texts is not None and m in step_attr
    }
    for i, inst_items in enumerate(items):
        values: dict[str, float] = {}
        for item in inst_items:
            m, rest = item.split(":", 1)
            modality = dataset[m]
            if modality.tokens is not None:
                if m in token_words:
                    words, mask, per_word = token_words[m]
                    hits = [w for w, text in enumerate(words[i]) if mask[i, w] and _normalise_word(text) == rest]
                    values[item] = float(per_word[i, hits].sum())
            elif modality.words is not None:
                if m in step_attr:
                    real = modality.step_mask()[i]
                    hits = [t for t, w in enumerate(modality.words[i]) if real[t] and _normalise_word(w) == rest]
                    values[item] = float(step_attr[m][i, hits].sum())
            elif m in feat_attr:
                feature = rest.rsplit(" ", 1)[0]
                values[item] = float(feat_attr[m][i, modality.feature_names.index(feature)])
        out.append(values)
    return out


# -- mining ------------------------------------------------------------------------------------------------------


def _check_items(items: Sequence[Sequence[str]]) -> list[list[str]]:
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise TemplateError("items: expected one list of item strings per instance")
    checked = []
    for i, inst in enumerate(items):
        if isinstance(inst, str) or not all(isinstance(x, str) and ":" in x for x in inst):
            raise TemplateError(f"items[{i}]: expected a list of '<modality>:<item>' strings, got {inst!r}")
        checked.append(sorted(set(inst)))
    return checked


def _polarities(
    predictions: np.ndarray, output_kind: str | None, threshold: float, class_names: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per instance its side (an index into the returned names) and the prediction averaged for that side."""
    pred = np.asarray(predictions, dtype=np.float64)
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if pred.ndim not in (1, 2):
        raise TemplateError(f"predictions: expected [N] or [N, K], got shape {pred.shape}")
    if not np.isfinite(pred).all():
        raise TemplateError("predictions: must be finite")
    kind = output_kind or ("classification" if pred.ndim == 2 else "regression")
    if kind == "regression":
        if pred.ndim != 1:
            raise TemplateError(f"predictions: regression needs [N] values, got shape {pred.shape}")
        return (pred < threshold).astype(np.int64), pred, ["positive", "negative"]
    if kind != "classification":
        raise TemplateError(f"output_kind must be 'regression', 'classification' or None, got {output_kind!r}")
    if pred.ndim == 2:
        side = pred.argmax(1)
        value = pred[np.arange(len(pred)), side]
        k = pred.shape[1]
    else:  # predicted class ids: no probability to average
        if (pred != np.round(pred)).any() or (pred < 0).any():
            raise TemplateError("predictions: 1-D classification predictions must be class ids 0..K-1")
        side = pred.astype(np.int64)
        value = np.full(len(pred), np.nan)
        k = int(side.max()) + 1 if len(side) else 0
    names = list(class_names) if class_names is not None else [str(c) for c in range(k)]
    if len(names) < k:
        raise TemplateError(f"class_names: {len(names)} names for {k} classes")
    return side, value, names


def _instance_scores(
    attributions: np.ndarray | Sequence[Mapping[str, float]] | None, n: int
) -> np.ndarray | list[Mapping[str, float]] | None:
    if attributions is None:
        return None
    if isinstance(attributions, np.ndarray):
        arr = attributions.astype(np.float64)
        if arr.shape != (n,):
            raise TemplateError(f"attributions: an array must be [N] = ({n},), got {arr.shape}")
        return arr
    maps = list(attributions)
    if len(maps) != n or not all(isinstance(x, Mapping) for x in maps):
        raise TemplateError(f"attributions: expected {n} per-instance item -> value mappings (see item_attributions)")
    return maps


def _template_attribution(
    scores: np.ndarray | list[Mapping[str, float]] | None, members: np.ndarray, itemset: list[str]
) -> float:
    """Mean over member instances of the summed attribution of the template's items (NaN where unknown)."""
    if scores is None or len(members) == 0:
        return float("nan")
    if isinstance(scores, np.ndarray):
        return float(np.nanmean(scores[members])) if np.isfinite(scores[members]).any() else float("nan")
    per = []
    for i in members:
        known = [scores[i][it] for it in itemset if it in scores[i]]
        if known:
            per.append(float(np.sum(known)))
    return float(np.mean(per)) if per else float("nan")


def mine_templates(
    items: Sequence[Sequence[str]],
    predictions: np.ndarray,
    attributions: np.ndarray | Sequence[Mapping[str, float]] | None = None,
    *,
    min_support: float = 0.02,
    max_len: int = 3,
    multimodal_only: bool = True,
    top_k: int = 50,
    threshold: float = 0.0,
    output_kind: str | None = None,
    class_names: Sequence[str] | None = None,
    rank_by: str = "support",
    closed: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Frequent multimodal itemsets per prediction side, with support, mean prediction and mean attribution.

    Parameters
    ----------
    items
        Per instance its items (from :func:`discretise`).
    predictions
        ``[N]`` regression outputs, or ``[N, K]`` class probabilities (or ``[N]`` predicted class ids with
        ``output_kind="classification"``).
    attributions
        None; per instance an ``item -> attribution`` mapping (from :func:`item_attributions`); or an ``[N]`` array
        of one score per instance.
    min_support
        Minimum share of a side's instances that hold the itemset (FP-growth threshold).
    max_len
        Largest itemset size.
    multimodal_only
        Keep only itemsets whose items come from at least two modalities.
    top_k
        Templates kept per side, after ranking.
    threshold
        Regression: predictions ``>= threshold`` are the ``"positive"`` side, the rest ``"negative"``.
    output_kind
        ``"regression"`` or ``"classification"``; inferred from the shape of ``predictions`` when None.
    class_names
        Classification: the side names (default ``"0" .. "K-1"``); the side of an instance is its predicted class.
    rank_by
        ``"support"`` (then ``|mean_attribution|``, then count), ``"attribution"`` (``|mean_attribution|`` first)
        or ``"prediction"`` (distance of ``mean_prediction`` from ``threshold`` for regression, the mean class
        probability for classification).
    closed
        Keep only closed itemsets: drop an itemset when a larger frequent itemset (up to ``max_len``) is held by
        exactly the same instances, since it says nothing the larger one does not.

    Returns
    -------
    templates, template_members
        ``templates``: template_id, items (sorted), modalities, polarity (the side), support (share of the side's
        instances), count, mean_prediction (mean over members of the prediction, for classification the
        probability of the side's class), mean_attribution (over members, the sum of the member's attributions of
        the template's items, averaged; items with unknown attribution are skipped; NaN without attributions), rank
        (within the side, from 0). Sides come in order (positive, negative / class 0, 1, ...), ranked within.
        ``template_members``: template_id, instance (row number) for every instance holding all its items.
    """
    checked = _check_items(items)
    n = len(checked)
    pred = np.asarray(predictions)
    if pred.shape[:1] != (n,):
        raise TemplateError(f"predictions hold {pred.shape[0] if pred.ndim else 0} instances; items hold {n}")
    if not 0 < min_support <= 1:
        raise TemplateError(f"min_support must lie in (0, 1], got {min_support}")
    if max_len < 1 or top_k < 1:
        raise TemplateError(f"max_len and top_k must be positive, got max_len={max_len}, top_k={top_k}")
    if rank_by not in RANKINGS:
        raise TemplateError(f"rank_by must be one of {RANKINGS}, got {rank_by!r}")
    side, value, side_names = _polarities(pred, output_kind, threshold, class_names)
    scores = _instance_scores(attributions, n)
    is_regression = side_names == ["positive", "negative"] and (output_kind or "regression") == "regression"
    rows, members_rows = [], []
    for s, side_name in enumerate(side_names):
        group = np.flatnonzero(side == s)
        found = _mine_side([checked[i] for i in group], min_support, max_len, multimodal_only, closed)
        ranked = []
        for itemset, local in found:
            members = group[local]
            mods = sorted({item_modality(x) for x in itemset})
            ranked.append(
                {
                    "items": itemset,
                    "modalities": mods,
                    "polarity": side_name,
                    "support": len(members) / len(group),
                    "count": len(members),
                    "mean_prediction": float(np.mean(value[members])) if len(members) else float("nan"),
                    "mean_attribution": _template_attribution(scores, members, itemset),
                    "_members": members,
                }
            )
        ranked.sort(key=lambda r: _rank_key(r, rank_by, threshold, is_regression))
        for rank, r in enumerate(ranked[:top_k]):
            r["rank"] = rank
            r["template_id"] = len(rows)
            members_rows.append(pd.DataFrame({"template_id": r["template_id"], "instance": r.pop("_members")}))
            rows.append(r)
    templates = pd.DataFrame(rows, columns=TEMPLATE_COLUMNS)
    templates = templates.astype(
        {
            "template_id": np.int64,
            "support": np.float64,
            "count": np.int64,
            "mean_prediction": np.float64,
            "mean_attribution": np.float64,
            "rank": np.int64,
        }
    )
    members = (
        pd.concat(members_rows, ignore_index=True)
        if members_rows
        else pd.DataFrame({"template_id": np.array([], np.int64), "instance": np.array([], np.int64)})
    )
    return templates, members.astype({"template_id": np.int64, "instance": np.int64})


def _rank_key(r: dict, rank_by: str, threshold: float, is_regression: bool) -> tuple:
    attr = -abs(r["mean_attribution"]) if np.isfinite(r["mean_attribution"]) else np.inf
    pred = r["mean_prediction"]
    strength = abs(pred - threshold) if is_regression else pred  # how strongly members lean to their side
    pred_key = -strength if np.isfinite(pred) else np.inf
    tie = (tuple(r["items"]),)  # deterministic order among equals
    if rank_by == "support":
        return (-r["support"], attr, -r["count"], *tie)
    if rank_by == "attribution":
        return (attr, -r["support"], *tie)
    return (pred_key, -r["support"], *tie)


def _mine_side(
    transactions: list[list[str]], min_support: float, max_len: int, multimodal_only: bool, closed: bool
) -> list[tuple[list[str], np.ndarray]]:
    """FP-growth on one side's transactions: (sorted itemset, member positions) for each kept itemset."""
    from mlxtend.frequent_patterns import fpgrowth
    from mlxtend.preprocessing import TransactionEncoder

    if not transactions or not any(transactions):
        return []
    encoder = TransactionEncoder().fit(transactions)
    onehot = encoder.transform(transactions, sparse=True).tocsc()
    frame = pd.DataFrame.sparse.from_spmatrix(onehot, columns=encoder.columns_)
    frequent = fpgrowth(frame, min_support=min_support, use_colnames=True, max_len=max_len)
    column = {c: j for j, c in enumerate(encoder.columns_)}
    found = []
    for itemset in frequent["itemsets"]:
        local = None
        for x in itemset:  # members: intersection of the items' row sets
            j = column[x]
            hits = onehot.indices[onehot.indptr[j] : onehot.indptr[j + 1]]
            local = hits if local is None else np.intersect1d(local, hits, assume_unique=True)
        found.append((frozenset(itemset), np.sort(local)))
    if closed:
        found = _closed(found)
    out = []
    for itemset, local in found:
        if multimodal_only and len({item_modality(x) for x in itemset}) < 2:
            continue
        out.append((sorted(itemset), local))
    return out


def _closed(found: list[tuple[frozenset, np.ndarray]]) -> list[tuple[frozenset, np.ndarray]]:
    """Keep closed itemsets: those with no frequent strict superset held by exactly the same instances."""
    by_members: dict[bytes, list[frozenset]] = {}
    for itemset, local in found:
        by_members.setdefault(local.tobytes(), []).append(itemset)
    kept = []
    for itemset, local in found:
        same = by_members[local.tobytes()]
        if not any(itemset < other for other in same):
            kept.append((itemset, local))
    return kept

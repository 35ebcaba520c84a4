"""Global performance metrics, computed the way the multimodal sentiment field computes them.

Sentiment regression follows the MMSA toolkit's ``MetricsTop`` (Yu et al.), which the field's papers report. On the
CMU-MOSI / CMU-MOSEI scale ([-3, 3], :func:`sentiment_metrics`):

- ``mae``: mean absolute error.
- ``corr``: Pearson correlation of predictions and labels.
- ``acc2_nonneg`` / ``f1_nonneg`` ("Has0" in MMSA): negative (< 0) vs non-negative (>= 0), on all instances.
- ``acc2_nonzero`` / ``f1_nonzero`` ("Non0" in MMSA): negative vs positive on the instances whose *label* is not
  zero; a prediction counts as positive when > 0.
- ``acc7``: labels and predictions clipped to [-3, 3] and rounded to the nearest integer (numpy's round half to
  even, as MMSA does), then exact-match accuracy over the 7 classes -3 .. 3.
- ``acc5``: the same with clipping to [-2, 2] (5 classes).

CH-SIMS labels lie in [-1, 1] and MMSA scores them differently (:func:`sims_metrics`, its ``__eval_sims_regression``):
predictions and labels are clipped to [-1, 1], then

- ``mae``, ``corr``: on the clipped values;
- ``acc2`` / ``f1``: classes [-1, 0] and (0, 1] (a <= 0 / > 0 split), accuracy and weighted F1;
- ``acc3``: classes [-1, -0.1], (-0.1, 0.1], (0.1, 1];
- ``acc5``: classes [-1, -0.7], (-0.7, -0.1], (-0.1, 0.1], (0.1, 0.7], (0.7, 1].

F1 scores are scikit-learn's ``average="weighted"`` (per-class F1 weighted by the true class counts). Degenerate
inputs never raise: a metric that is undefined (Pearson r of a constant vector, Acc-2 "non-zero" when every label is
zero) is NaN and ``notes`` says why.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from modalens._core.errors import ModalensError

SENTIMENT_RANGE = 3.0
SIMS_RANGE = 1.0
# MMSA's CH-SIMS classes: class i holds the (clipped) values in (edges[i - 1], edges[i]], the first from -1 on
SIMS_EDGES = {2: (0.0,), 3: (-0.1, 0.1), 5: (-0.7, -0.1, 0.1, 0.7)}
SCALES = ("mosi", "sims")


class MetricsError(ModalensError, ValueError):
    """Labels and predictions do not fit together (shapes, NaNs, class indices)."""


def _as_vector(name: str, values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise MetricsError(f"{name} must be a vector [N] (or [N, 1]), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise MetricsError(f"{name} has {int((~np.isfinite(arr)).sum())} NaN/inf entries")
    return arr


def _paired_vectors(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions as finite float vectors of the same, non-zero length."""
    truth = _as_vector("y_true", y_true)
    pred = _as_vector("y_pred", y_pred)
    if truth.shape != pred.shape:
        raise MetricsError(f"y_true has {truth.shape[0]} entries, y_pred {pred.shape[0]}")
    if truth.size == 0:
        raise MetricsError("no instances to score")
    return truth, pred


def _pearson(a: np.ndarray, b: np.ndarray, notes: list[str]) -> float:
    if len(a) < 2:
        notes.append("corr: fewer than 2 instances")
        return float("nan")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        which = "predictions" if np.ptp(a) == 0 else "labels"
        notes.append(f"corr: {which} are constant, Pearson r is undefined")
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _f1_weighted(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    with warnings.catch_warnings():
        # A class present in the labels but never predicted has F1 = 0, which is the right value here.
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return float(f1_score(y_true, y_pred, average="weighted", zero_division=0))


def _rounded_accuracy(y_true: np.ndarray, y_pred: np.ndarray, bound: float) -> float:
    truth = np.round(np.clip(y_true, -bound, bound))
    pred = np.round(np.clip(y_pred, -bound, bound))
    return float(np.mean(truth == pred))


def sentiment_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """MMSA-convention sentiment metrics for predictions on the [-3, 3] scale.

    Parameters
    ----------
    y_true
        ``[N]`` sentiment labels.
    y_pred
        ``[N]`` (or ``[N, 1]``) predicted sentiment.

    Returns
    -------
    dict
        ``mae, corr, acc2_nonneg, f1_nonneg, acc2_nonzero, f1_nonzero, acc7, acc5`` (floats, NaN where undefined),
        ``n`` (instances), ``n_nonzero`` (instances with a non-zero label) and ``notes`` (list of strings saying
        why a value is NaN).
    """
    truth, pred = _paired_vectors(y_true, y_pred)
    notes: list[str] = []
    out: dict = {"n": int(truth.size)}
    out["mae"] = float(np.mean(np.abs(pred - truth)))
    out["corr"] = _pearson(pred, truth, notes)
    nonneg_true, nonneg_pred = truth >= 0, pred >= 0
    out["acc2_nonneg"] = float(accuracy_score(nonneg_true, nonneg_pred))
    out["f1_nonneg"] = _f1_weighted(nonneg_true, nonneg_pred)
    nonzero = truth != 0
    out["n_nonzero"] = int(nonzero.sum())
    if nonzero.any():
        pos_true, pos_pred = truth[nonzero] > 0, pred[nonzero] > 0
        out["acc2_nonzero"] = float(accuracy_score(pos_true, pos_pred))
        out["f1_nonzero"] = _f1_weighted(pos_true, pos_pred)
    else:
        notes.append("acc2_nonzero/f1_nonzero: every label is zero")
        out["acc2_nonzero"] = out["f1_nonzero"] = float("nan")
    out["acc7"] = _rounded_accuracy(truth, pred, 3.0)
    out["acc5"] = _rounded_accuracy(truth, pred, 2.0)
    out["notes"] = notes
    return out


def _sims_classes(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Class index per value: i for values in (edges[i - 1], edges[i]], i.e. the upper edge belongs to the class.

    Compared in float32, as MMSA does (its labels and predictions are float32 tensors, and numpy compares a float32
    array with a Python float in float32): a float32 label of 0.1 sits on the edge 0.1, not just above it.
    """
    return np.searchsorted(np.asarray(edges, np.float32), values.astype(np.float32), side="left")


def sims_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """MMSA's CH-SIMS sentiment metrics, for labels on the [-1, 1] scale.

    Parameters
    ----------
    y_true
        ``[N]`` sentiment labels (CH-SIMS: in [-1, 1]).
    y_pred
        ``[N]`` (or ``[N, 1]``) predicted sentiment.

    Returns
    -------
    dict
        With ``y`` and ``ŷ`` clipped to [-1, 1]: ``mae`` (mean |ŷ - y|), ``corr`` (Pearson r), ``acc2`` and ``f1``
        (accuracy and weighted F1 of ``<= 0`` / ``> 0``), ``acc3`` (classes split at -0.1 and 0.1), ``acc5`` (split
        at -0.7, -0.1, 0.1 and 0.7), each class closed at its upper edge; ``n`` and ``notes``. These are MMSA's
        ``MAE``, ``Corr``, ``Mult_acc_2``, ``F1_score``, ``Mult_acc_3`` and ``Mult_acc_5`` for SIMS.
    """
    truth, pred = _paired_vectors(y_true, y_pred)
    truth, pred = np.clip(truth, -SIMS_RANGE, SIMS_RANGE), np.clip(pred, -SIMS_RANGE, SIMS_RANGE)
    notes: list[str] = []
    out: dict = {"n": int(truth.size)}
    out["mae"] = float(np.mean(np.abs(pred - truth)))
    out["corr"] = _pearson(pred, truth, notes)
    for k in (2, 3, 5):
        true_k, pred_k = _sims_classes(truth, SIMS_EDGES[k]), _sims_classes(pred, SIMS_EDGES[k])
        out[f"acc{k}"] = float(np.mean(true_k == pred_k))
        if k == 2:
            out["f1"] = _f1_weighted(true_k, pred_k)
    out["notes"] = notes
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Scale-free regression metrics for targets that are not on the sentiment scale.

    Returns ``mae``, ``rmse``, ``corr`` (Pearson r), ``r2`` (coefficient of determination, NaN for constant
    labels), ``n`` and ``notes``.
    """
    truth, pred = _paired_vectors(y_true, y_pred)
    notes: list[str] = []
    resid = pred - truth
    total = float(np.sum((truth - truth.mean()) ** 2))
    if total == 0:
        notes.append("r2: labels are constant")
    return {
        "n": int(truth.size),
        "mae": float(np.mean(np.abs(resid))),
        "rmse": float(np.sqrt(np.mean(resid**2))),
        "corr": _pearson(pred, truth, notes),
        "r2": float(1 - np.sum(resid**2) / total) if total > 0 else float("nan"),
        "notes": notes,
    }


def classification_metrics(y_true: np.ndarray, proba_or_pred: np.ndarray) -> dict:
    """Accuracy, macro and weighted F1, and ROC AUC for binary scores.

    Parameters
    ----------
    y_true
        ``[N]`` integer class indices ``0 .. K-1``.
    proba_or_pred
        ``[N, K]`` class scores (probabilities, logits, or any scores whose argmax is the prediction), or ``[N]``
        predicted class indices. With ``K = 2`` scores, ``auc`` is the ROC AUC of column 1 (the positive class).

    Returns
    -------
    dict
        ``accuracy, f1_macro, f1_weighted, auc`` (``auc`` NaN unless binary scores with both classes present),
        ``n`` and ``notes``.
    """
    truth = np.asarray(y_true)
    if truth.ndim != 1:
        raise MetricsError(f"y_true must be a vector [N] of class indices, got shape {truth.shape}")
    if truth.size == 0:
        raise MetricsError("no instances to score")
    if np.issubdtype(truth.dtype, np.floating) and (truth != np.round(truth)).any():
        raise MetricsError("y_true must hold whole-number class indices")
    truth = truth.astype(np.int64)
    scores = np.asarray(proba_or_pred, dtype=np.float64)
    if scores.shape[0] != truth.shape[0]:
        raise MetricsError(f"y_true has {truth.shape[0]} entries, predictions {scores.shape[0]}")
    if not np.isfinite(scores).all():
        raise MetricsError(f"predictions have {int((~np.isfinite(scores)).sum())} NaN/inf entries")
    notes: list[str] = []
    auc = float("nan")
    if scores.ndim == 2 and scores.shape[1] > 1:
        k = scores.shape[1]
        if truth.min() < 0 or truth.max() >= k:
            raise MetricsError(f"y_true holds class indices outside 0..{k - 1} for {k} score columns")
        pred = scores.argmax(1)
        if k == 2:
            if len(np.unique(truth)) == 2:
                auc = float(roc_auc_score(truth, scores[:, 1]))
            else:
                notes.append("auc: only one class present in y_true")
    elif scores.ndim == 1 or (scores.ndim == 2 and scores.shape[1] == 1):
        pred = scores.reshape(-1)
        if (pred != np.round(pred)).any():
            raise MetricsError("1-D predictions must be class indices; pass [N, K] scores for probabilities")
        pred = pred.astype(np.int64)
    else:
        raise MetricsError(f"predictions must be [N] class indices or [N, K] scores, got shape {scores.shape}")
    return {
        "n": int(truth.size),
        "accuracy": float(accuracy_score(truth, pred)),
        "f1_macro": float(f1_score(truth, pred, average="macro", zero_division=0)),
        "f1_weighted": _f1_weighted(truth, pred),
        "auc": auc,
        "notes": notes,
    }


def is_sentiment_scale(y_true: np.ndarray) -> bool:
    """True when every label lies in [-3, 3], the scale of MOSI/MOSEI (and CH-SIMS's [-1, 1])."""
    arr = np.asarray(y_true, dtype=np.float64)
    return bool(arr.size) and bool(np.all(np.abs(arr) <= SENTIMENT_RANGE))


def is_sims_scale(y_true: np.ndarray) -> bool:
    """True when every label lies in [-1, 1], the scale of CH-SIMS (as MMSA's pickles hold it)."""
    arr = np.asarray(y_true, dtype=np.float64)
    return bool(arr.size) and bool(np.all(np.abs(arr) <= SIMS_RANGE))


def performance(
    label_kind: str,
    y_true: np.ndarray,
    predictions: np.ndarray,
    *,
    sentiment: bool | None = None,
    scale: str | None = None,
) -> dict:
    """Global performance of model outputs against labels.

    Parameters
    ----------
    label_kind
        ``"regression"`` or ``"classification"`` (a dataset's ``label_kind``).
    y_true
        ``[N]`` labels.
    predictions
        ``[N, K]`` model outputs as a :class:`~modalens.models.predictor.Predictor` returns them (``K = 1`` for
        regression; class scores for classification).
    sentiment
        For regression: use sentiment metrics (True) or :func:`regression_metrics` (False). None picks sentiment
        metrics when every label lies in [-3, 3] (or a ``scale`` is given).
    scale
        Which sentiment scale, and so which of MMSA's definitions: ``"mosi"`` (CMU-MOSI / MOSEI, [-3, 3],
        :func:`sentiment_metrics`) or ``"sims"`` (CH-SIMS, [-1, 1], :func:`sims_metrics`). None picks ``"sims"``
        when every label lies in [-1, 1] (and says so in ``notes``), else ``"mosi"``.

    Returns
    -------
    dict
        The chosen metric dict, with ``"kind"`` set to ``"sentiment"``, ``"regression"`` or ``"classification"``;
        sentiment dicts also carry ``"scale"`` (``"mosi"`` or ``"sims"``).
    """
    preds = np.asarray(predictions, dtype=np.float64)
    if scale is not None and scale not in SCALES:
        raise MetricsError(f"scale must be one of {list(SCALES)} or None, got {scale!r}")
    if label_kind == "regression":
        if preds.ndim == 2 and preds.shape[1] != 1:
            raise MetricsError(f"regression predictions must be [N] or [N, 1], got shape {preds.shape}")
        if sentiment is False and scale is not None:
            raise MetricsError(f"scale={scale!r} asks for sentiment metrics, but sentiment=False")
        use_sentiment = sentiment if sentiment is not None else scale is not None or is_sentiment_scale(y_true)
        if not use_sentiment:
            return {"kind": "regression", **regression_metrics(y_true, preds)}
        if scale is None and is_sims_scale(y_true):
            out = {"kind": "sentiment", "scale": "sims", **sims_metrics(y_true, preds)}
            out["notes"].append(
                "scale: every label lies in [-1, 1], so CH-SIMS metrics (MMSA's SIMS definitions); "
                "pass scale='mosi' for the MOSI/MOSEI ones"
            )
            return out
        if scale == "sims":
            return {"kind": "sentiment", "scale": "sims", **sims_metrics(y_true, preds)}
        return {"kind": "sentiment", "scale": "mosi", **sentiment_metrics(y_true, preds)}
    if label_kind == "classification":
        return {"kind": "classification", **classification_metrics(y_true, preds)}
    raise MetricsError(f"label_kind must be 'regression' or 'classification', got {label_kind!r}")


# Which way is better, per metric: +1 when higher is better, -1 when lower is better.
METRIC_DIRECTION: dict[str, int] = {
    "mae": -1,
    "rmse": -1,
    "corr": 1,
    "r2": 1,
    "acc2_nonneg": 1,
    "f1_nonneg": 1,
    "acc2_nonzero": 1,
    "f1_nonzero": 1,
    "acc7": 1,
    "acc5": 1,
    "acc3": 1,
    "acc2": 1,
    "f1": 1,
    "accuracy": 1,
    "f1_macro": 1,
    "f1_weighted": 1,
    "auc": 1,
}


def performance_gap(better: dict, worse: dict) -> dict[str, float]:
    """How much ``better`` outperforms ``worse`` on every shared metric, signed so that > 0 means it does.

    For lower-is-better metrics (MAE, RMSE) the gap is ``worse - better``; for the others ``better - worse``.
    """
    return {
        name: float(direction * (better[name] - worse[name]))
        for name, direction in METRIC_DIRECTION.items()
        if name in better and name in worse
    }

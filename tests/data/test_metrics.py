"""Performance metrics against hand-computed values and the MMSA conventions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr

from modalens.data.metrics import (
    MetricsError,
    classification_metrics,
    performance,
    performance_gap,
    regression_metrics,
    sentiment_metrics,
    sims_metrics,
)

# Worked by hand in the comments of test_sentiment_metrics_hand_computed.
Y_TRUE = np.array([-3.0, -1.4, 0.0, 0.0, 0.6, 2.2])
Y_PRED = np.array([-2.4, 0.2, -0.3, 0.4, 1.6, 3.7])


def test_sentiment_metrics_hand_computed():
    m = sentiment_metrics(Y_TRUE, Y_PRED)
    # |errors| = 0.6, 1.6, 0.3, 0.4, 1.0, 1.5 -> 5.4 / 6
    assert m["mae"] == pytest.approx(0.9)
    assert m["corr"] == pytest.approx(pearsonr(Y_PRED, Y_TRUE).statistic)
    # >= 0: truth F F T T T T, pred F T F T T T -> 4 of 6 agree
    assert m["acc2_nonneg"] == pytest.approx(4 / 6)
    # class F (support 2): P = R = 1/2 -> F1 0.5; class T (support 4): P = R = 3/4 -> 0.75; weighted -> 4/6
    assert m["f1_nonneg"] == pytest.approx((2 * 0.5 + 4 * 0.75) / 6)
    # non-zero labels at 0, 1, 4, 5: truth > 0 F F T T, pred > 0 F T T T -> 3 of 4
    assert m["n_nonzero"] == 4
    assert m["acc2_nonzero"] == pytest.approx(3 / 4)
    # class F: P 1, R 1/2 -> 2/3; class T: P 2/3, R 1 -> 0.8; equal supports
    assert m["f1_nonzero"] == pytest.approx((2 / 3 + 0.8) / 2)
    # clip to [-3, 3] and round: truth -3 -1 0 0 1 2, pred -2 0 -0 0 2 3 -> 2 of 6
    assert m["acc7"] == pytest.approx(2 / 6)
    # clip to [-2, 2] and round: truth -2 -1 0 0 1 2, pred -2 0 -0 0 2 2 -> 4 of 6
    assert m["acc5"] == pytest.approx(4 / 6)
    assert m["n"] == 6 and m["notes"] == []


def test_acc7_rounds_half_to_even_like_mmsa():
    # numpy rounds 2.5 -> 2 and -0.5 -> -0, so these are exact matches under MMSA's convention.
    m = sentiment_metrics(np.array([2.5, -0.5, 3.0]), np.array([2.0, 0.0, 9.0]))
    assert m["acc7"] == 1.0


def test_constant_predictions_give_nan_corr_with_note():
    m = sentiment_metrics(Y_TRUE, np.zeros(6))
    assert np.isnan(m["corr"])
    assert any("constant" in note for note in m["notes"])
    assert m["acc2_nonneg"] == pytest.approx(4 / 6)  # everything predicted non-negative


def test_all_zero_labels_give_nan_nonzero_metrics():
    m = sentiment_metrics(np.zeros(4), np.array([0.1, -0.2, 0.3, 0.0]))
    assert np.isnan(m["acc2_nonzero"]) and np.isnan(m["f1_nonzero"])
    assert m["n_nonzero"] == 0
    assert any("zero" in note for note in m["notes"])


def test_sentiment_metrics_rejects_bad_input():
    with pytest.raises(MetricsError, match="entries"):
        sentiment_metrics(np.zeros(3), np.zeros(4))
    with pytest.raises(MetricsError, match="NaN"):
        sentiment_metrics(np.zeros(2), np.array([0.0, np.nan]))
    with pytest.raises(MetricsError, match="vector"):
        sentiment_metrics(np.zeros((2, 2)), np.zeros((2, 2)))


def test_classification_metrics_hand_computed():
    y = np.array([0, 1, 1, 0, 2])
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.4, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    m = classification_metrics(y, proba)  # argmax 0 1 0 0 2
    assert m["accuracy"] == pytest.approx(4 / 5)
    # F1 per class: 0 -> P 2/3 R 1 = 0.8; 1 -> P 1 R 1/2 = 2/3; 2 -> 1
    assert m["f1_macro"] == pytest.approx((0.8 + 2 / 3 + 1) / 3)
    assert m["f1_weighted"] == pytest.approx((2 * 0.8 + 2 * 2 / 3 + 1) / 5)
    assert np.isnan(m["auc"])  # not binary
    assert classification_metrics(y, np.array([0, 1, 0, 0, 2]))["accuracy"] == pytest.approx(4 / 5)


def test_binary_auc():
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.4, 0.35, 0.8])
    m = classification_metrics(y, np.stack([1 - p1, p1], 1))
    assert m["auc"] == pytest.approx(0.75)  # 3 of the 4 positive-negative pairs are ordered right


def test_classification_metrics_rejects_bad_classes():
    with pytest.raises(MetricsError, match="outside"):
        classification_metrics(np.array([0, 3]), np.full((2, 2), 0.5))
    with pytest.raises(MetricsError, match="class indices"):
        classification_metrics(np.array([0, 1]), np.array([0.2, 0.7]))


def test_regression_metrics_hand_computed():
    m = regression_metrics(np.array([10.0, 20.0, 30.0]), np.array([12.0, 18.0, 30.0]))
    assert m["mae"] == pytest.approx(4 / 3)
    assert m["rmse"] == pytest.approx(np.sqrt(8 / 3))
    assert m["r2"] == pytest.approx(1 - 8 / 200)


def test_performance_dispatch():
    assert performance("regression", Y_TRUE, Y_PRED[:, None])["kind"] == "sentiment"
    assert performance("regression", Y_TRUE * 10, Y_PRED[:, None])["kind"] == "regression"
    assert performance("regression", Y_TRUE * 10, Y_PRED, sentiment=True)["kind"] == "sentiment"
    assert performance("classification", np.array([0, 1]), np.eye(2))["accuracy"] == 1.0
    with pytest.raises(MetricsError, match="label_kind"):
        performance("ranking", Y_TRUE, Y_PRED)
    with pytest.raises(MetricsError, match=r"\[N, 1\]"):
        performance("regression", Y_TRUE, np.zeros((6, 2)))


def test_performance_gap_sign_means_better():
    better = {"mae": 0.5, "acc7": 0.4, "notes": []}
    worse = {"mae": 0.8, "acc7": 0.3, "notes": []}
    gap = performance_gap(better, worse)
    assert gap == {"mae": pytest.approx(0.3), "acc7": pytest.approx(0.1)}


# CH-SIMS, scored as MMSA's MetricsTop.__eval_sims_regression does (thuiar/MMSA, src/MMSA/utils/metricsTop.py):
# labels and predictions clipped to [-1, 1]; each class closed at its upper edge. Boundary values on purpose.
SIMS_TRUE = [-1.0, -0.7, -0.1, 0.0, 0.1, 0.7, 1.0, 0.4]
SIMS_PRED = [-1.6, -0.7, 0.0, -0.1, 0.1, 0.75, 2.0, -0.4]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sims_metrics_hand_computed(dtype):
    m = sims_metrics(np.array(SIMS_TRUE, dtype), np.array(SIMS_PRED, dtype)[:, None])
    # clipped: truth -1 -0.7 -0.1 0 0.1 0.7 1 0.4; pred -1 -0.7 0 -0.1 0.1 0.75 1 -0.4
    # |errors| = 0 0 0.1 0.1 0 0.05 0 0.8 -> 1.05 / 8 (unclipped it would be 0.33125)
    assert m["mae"] == pytest.approx(0.13125)
    # sum tp = 2.865, sum t = 0.4, sum p = -0.35, sum t^2 = 3.16, sum p^2 = 3.2325 (n = 8):
    # Sxy = 2.8825, Sxx = 3.14, Syy = 3.2171875 -> r = 2.8825 / sqrt(3.14 * 3.2171875)
    assert m["corr"] == pytest.approx(2.8825 / np.sqrt(3.14 * 3.2171875)) == pytest.approx(0.906914, abs=1e-6)
    # Acc-2, <= 0 | > 0: truth 0 0 0 0 1 1 1 1, pred 0 0 0 0 1 1 1 0 -> 7 of 8
    assert m["acc2"] == pytest.approx(7 / 8)
    # class 0: support 4, predicted 5 times, 4 right -> P 4/5, R 1, F1 8/9; class 1: P 1, R 3/4, F1 6/7
    assert m["f1"] == pytest.approx((4 * 8 / 9 + 4 * 6 / 7) / 8)
    # Acc-3, [-1, -0.1] | (-0.1, 0.1] | (0.1, 1]: truth 0 0 0 1 1 2 2 2, pred 0 0 1 0 1 2 2 0 -> 5 of 8
    assert m["acc3"] == pytest.approx(5 / 8)
    # Acc-5, [-1, -0.7] | (-0.7, -0.1] | (-0.1, 0.1] | (0.1, 0.7] | (0.7, 1]:
    # truth 0 0 1 2 2 3 4 3, pred 0 0 2 1 2 4 4 1 -> 4 of 8
    assert m["acc5"] == pytest.approx(4 / 8)
    assert m["n"] == 8 and m["notes"] == []


def test_sims_class_edges_belong_to_the_lower_class():
    # each boundary value scored against itself and against values just across its edge
    edges = np.array([-0.7, -0.1, 0.0, 0.1, 0.7], np.float32)  # float32, as labels of a dataset are stored
    m = sims_metrics(edges, edges)
    assert (m["acc2"], m["acc3"], m["acc5"]) == (1.0, 1.0, 1.0)
    above = sims_metrics(edges, edges + np.float32(1e-3))  # -0.699 -0.099 0.001 0.101 0.701
    assert above["acc2"] == pytest.approx(4 / 5)  # only 0 -> 0.001 crosses the <= 0 / > 0 edge
    assert above["acc3"] == pytest.approx(3 / 5)  # -0.1 and 0.1 cross
    assert above["acc5"] == pytest.approx(1 / 5)  # all but 0 cross
    below = sims_metrics(edges, edges - np.float32(1e-3))
    assert (below["acc2"], below["acc3"], below["acc5"]) == (1.0, 1.0, 1.0)  # nothing leaves its class
    # MMSA compares float32 tensors: a float32 label 0.1 (0.10000000149 in float64) is on the edge, like a float64
    # prediction 0.1, so both are class (-0.1, 0.1]; compared in float64 they would fall on either side
    mixed = sims_metrics(edges, edges.astype(np.float64).round(6))
    assert (mixed["acc2"], mixed["acc3"], mixed["acc5"]) == (1.0, 1.0, 1.0)


def test_performance_scores_sims_scale_labels_as_mmsa():
    truth, pred = np.array(SIMS_TRUE, np.float32), np.array(SIMS_PRED, np.float32)[:, None]
    auto = performance("regression", truth, pred)
    assert auto["kind"] == "sentiment" and auto["scale"] == "sims"
    assert auto["acc5"] == pytest.approx(4 / 8) and auto["acc3"] == pytest.approx(5 / 8)
    assert any("[-1, 1]" in note for note in auto["notes"])
    assert "acc7" not in auto  # the MOSI metrics are not mixed in
    forced = performance("regression", truth, pred, scale="sims")
    assert forced["notes"] == [] and forced["mae"] == auto["mae"]
    # MOSI scale on the same numbers: Acc-5 rounds these labels to -1, 0 and 1 only (3 classes); 6 of 8 here
    mosi = performance("regression", truth, pred, scale="mosi")
    assert mosi["scale"] == "mosi" and mosi["acc5"] == pytest.approx(6 / 8)
    assert performance("regression", Y_TRUE, Y_PRED)["scale"] == "mosi"  # labels beyond [-1, 1]
    with pytest.raises(MetricsError, match="scale must be"):
        performance("regression", truth, pred, scale="mosei")
    with pytest.raises(MetricsError, match="sentiment=False"):
        performance("regression", truth, pred, scale="sims", sentiment=False)

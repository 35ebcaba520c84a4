"""PID on distributions of known decomposition, against brute force, and estimated from continuous samples."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modalens.data.dataset import Modality, MultimodalDataset
from modalens.interactions.pid import (
    PIDError,
    discretise_target,
    joint_histogram,
    modality_pid,
    pid_discrete,
    pid_estimate,
)
from modalens.models.predictor import CallablePredictor

TOL = 1e-5


def gate(fn) -> np.ndarray:
    """p[x1, x2, y] of Y = fn(X1, X2) with independent uniform bits."""
    p = np.zeros((2, 2, 2))
    for a in range(2):
        for b in range(2):
            p[a, b, fn(a, b)] = 0.25
    return p


def atoms(r) -> tuple[float, float, float, float]:
    return r.redundancy, r.unique1, r.unique2, r.synergy


def test_xor_is_pure_synergy():
    r = pid_discrete(gate(lambda a, b: a ^ b))
    assert atoms(r) == pytest.approx((0.0, 0.0, 0.0, 1.0), abs=TOL)
    assert r.total == pytest.approx(1.0) and r.unit == "bits"


def test_copy_is_pure_redundancy():
    p = np.zeros((2, 2, 2))
    p[0, 0, 0] = p[1, 1, 1] = 0.5
    assert atoms(pid_discrete(p)) == pytest.approx((1.0, 0.0, 0.0, 0.0), abs=TOL)


def test_unique_source():
    # Y = X1 and X2 an independent fair coin: one bit unique to X1.
    assert atoms(pid_discrete(gate(lambda a, b: a))) == pytest.approx((0.0, 1.0, 0.0, 0.0), abs=TOL)
    assert atoms(pid_discrete(gate(lambda a, b: b))) == pytest.approx((0.0, 0.0, 1.0, 0.0), abs=TOL)


def test_and_gate_matches_literature():
    # Bertschinger et al. (2014) / Griffith & Koch: AND has R = 3/4 log2(4/3) ~ 0.311, S = 1/2, U1 = U2 = 0.
    r = pid_discrete(gate(lambda a, b: a & b))
    assert r.redundancy == pytest.approx(0.75 * np.log2(4 / 3), abs=TOL)
    assert r.synergy == pytest.approx(0.5, abs=TOL)
    assert r.unique1 == pytest.approx(0.0, abs=TOL) and r.unique2 == pytest.approx(0.0, abs=TOL)
    assert r.total == pytest.approx(2 - 0.75 * np.log2(3), abs=1e-9)  # I(X1, X2; Y) = H(Y) = h(1/4)


def test_nats_are_bits_times_ln2():
    p = gate(lambda a, b: a & b)
    bits, nats = pid_discrete(p), pid_discrete(p, unit="nats")
    assert np.allclose(np.array(atoms(nats)), np.array(atoms(bits)) * np.log(2), atol=TOL)
    assert nats.unit == "nats"


def _brute_force_min_joint_mi(p: np.ndarray, grid: int = 801) -> float:
    """min over Delta_p of I_q(X1, X2; Y) for binary X1, X2, Y by a grid over the two free cells q(0, 0, y)."""
    a, b = p.sum(1), p.sum(0)  # p(x1, y), p(x2, y)
    lo = np.maximum(0, b[0] - a[1])
    hi = np.minimum(a[0], b[0])
    t0 = np.linspace(lo[0], hi[0], grid)[:, None]
    t1 = np.linspace(lo[1], hi[1], grid)[None, :]

    def cells(t, y):
        return [t, a[0, y] - t, b[0, y] - t, a[1, y] - b[0, y] + t]  # q(00y), q(01y), q(10y), q(11y)

    q0 = [np.broadcast_to(c, (grid, grid)) for c in cells(t0, 0)]
    q1 = [np.broadcast_to(c, (grid, grid)) for c in cells(t1, 1)]

    def plogp(x):
        x = np.clip(x, 0, None)
        return np.where(x > 0, x * np.log2(np.where(x > 0, x, 1)), 0.0)

    h_joint = -sum(plogp(c) for c in q0 + q1)
    h_x12 = -sum(plogp(c0 + c1) for c0, c1 in zip(q0, q1, strict=True))
    py = p.sum((0, 1))
    h_y = -np.sum(py[py > 0] * np.log2(py[py > 0]))
    return float((h_x12 + h_y - h_joint).min())


def test_solver_matches_brute_force_on_random_binary_distribution():
    rng = np.random.default_rng(3)
    for _ in range(3):
        p = rng.dirichlet(np.ones(8)).reshape(2, 2, 2)
        r = pid_discrete(p)
        assert r.synergy == pytest.approx(r.total - _brute_force_min_joint_mi(p), abs=2e-4)


@settings(max_examples=20, deadline=None)
@given(
    st.tuples(st.integers(2, 3), st.integers(2, 3), st.integers(2, 3)),
    st.integers(0, 2**31 - 1),
)
def test_pid_axioms_on_random_distributions(shape, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(int(np.prod(shape)), 0.7)).reshape(shape)
    r = pid_discrete(p)
    assert min(atoms(r)) >= -1e-5
    assert sum(atoms(r)) == pytest.approx(r.total, abs=1e-9)
    assert r.redundancy + r.unique1 == pytest.approx(r.mi1, abs=1e-5)
    assert r.redundancy + r.unique2 == pytest.approx(r.mi2, abs=1e-5)
    swapped = pid_discrete(p.transpose(1, 0, 2))
    assert (swapped.unique1, swapped.unique2) == pytest.approx((r.unique2, r.unique1), abs=1e-4)
    assert swapped.synergy == pytest.approx(r.synergy, abs=1e-4)


def test_pid_discrete_rejects_bad_distributions():
    with pytest.raises(PIDError, match="3-D"):
        pid_discrete(np.full((2, 2), 0.25))
    with pytest.raises(PIDError, match="sum to 1"):
        pid_discrete(np.ones((2, 2, 2)))
    with pytest.raises(PIDError, match="non-negative"):
        pid_discrete(np.array([[[-0.5, 0.5], [0.5, 0.5]], [[0, 0], [0, 0]]]))
    with pytest.raises(PIDError, match="unit"):
        pid_discrete(gate(lambda a, b: a), unit="dits")


# -- estimates from continuous samples ---------------------------------------------------------------------------
def blobs(bits: np.ndarray, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Continuous features: each bit value is a Gaussian blob in ``dim`` dimensions."""
    centres = rng.normal(size=(2, dim)) * 4
    return centres[bits] + rng.normal(scale=0.5, size=(len(bits), dim))


@pytest.mark.parametrize(
    ("case", "expected"),
    [("xor", (0, 0, 0, 1)), ("copy", (1, 0, 0, 0)), ("unique", (0, 1, 0, 0)), ("and", (0.311, 0, 0, 0.5))],
)
def test_pid_estimate_recovers_known_cases(case, expected):
    rng = np.random.default_rng(0)
    n = 4000
    b1 = rng.integers(0, 2, n)
    b2 = b1.copy() if case == "copy" else rng.integers(0, 2, n)
    y = {"xor": b1 ^ b2, "copy": b1, "unique": b1, "and": b1 & b2}[case]
    r = pid_estimate(blobs(b1, 3, rng), blobs(b2, 5, rng), y, n_clusters=4, seed=0)
    # Over-clustering (4 clusters for 2 blobs) and plug-in estimation bias the atoms by a few hundredths of a bit.
    assert atoms(r) == pytest.approx(expected, abs=0.05)
    assert r.n_samples == n and r.sizes[2] == 2


def test_discretise_target_bins_and_classes():
    assert discretise_target(np.array([3, 1, 3, 7])).tolist() == [1, 0, 1, 2]
    codes = discretise_target(np.linspace(-3, 3, 100), n_bins=4)
    assert np.bincount(codes).tolist() == [25, 25, 25, 25]


def test_joint_histogram_counts():
    p = joint_histogram(np.array([0, 0, 1, 1]), np.array([5, 5, 5, 9]), np.array([1, 1, 0, 0]))
    assert p.shape == (2, 2, 2)
    assert p[0, 0, 1] == 0.5 and p[1, 0, 0] == 0.25 and p[1, 1, 0] == 0.25


def xor_dataset(n: int = 2000, seed: int = 0) -> MultimodalDataset:
    """Two modalities whose real steps carry one bit each; padding steps hold large junk the mask must hide."""
    rng = np.random.default_rng(seed)
    b1, b2 = rng.integers(0, 2, n), rng.integers(0, 2, n)
    steps = 6
    lengths = rng.integers(2, steps + 1, n)
    mask = np.arange(steps)[None, :] < lengths[:, None]

    def modality(name, kind, bits, dim):
        # Bit 0 sits at -2 on every feature and bit 1 at +2, so the sign of the pooled sum reads the bit.
        centres = np.array([-2.0, 2.0])[:, None] * np.ones(dim)
        x = centres[bits][:, None, :] + rng.normal(scale=0.3, size=(n, steps, dim))
        x[~mask] = rng.normal(scale=50, size=(int((~mask).sum()), dim))  # padding junk
        return Modality(name, kind, x, mask=mask)

    return MultimodalDataset(
        [modality("text", "text", b1, 4), modality("audio", "audio", b2, 3)], labels=(b1 ^ b2).astype(np.int64)
    )


def test_modality_pid_on_labels_uses_masks():
    ds = xor_dataset()
    r = modality_pid(None, ds, ("text", "audio"), n_clusters=2)
    assert r.synergy == pytest.approx(1.0, abs=0.05)
    assert r.redundancy + r.unique1 + r.unique2 == pytest.approx(0.0, abs=0.05)
    assert r.names == ("text", "audio") and r.extra["target"] == "label"
    assert set(r.atoms()) == {"redundancy", "unique_text", "unique_audio", "synergy"}
    record = json.loads(json.dumps(r.to_dict()))
    assert record["unit"] == "bits" and record["names"] == ["text", "audio"] and record["n_samples"] == len(ds)


def test_modality_pid_on_predictions():
    ds = xor_dataset()

    def text_only(values, masks):
        # A classifier reading only the text bit: the sign of the masked mean's feature sum.
        w = masks["text"][..., None]
        pooled = (values["text"] * w).sum(1) / w.sum(1)
        bit = (pooled.sum(1) > 0).astype(int)
        return np.eye(2)[bit]

    predictor = CallablePredictor(text_only, ["text", "audio"], output_kind="classification")
    r = modality_pid(predictor, ds, ("text", "audio"), target="prediction", n_clusters=2)
    # The prediction is a function of the text alone: about 1 bit, all of it unique to text.
    assert r.unique1 == pytest.approx(1.0, abs=0.05)
    assert r.synergy + r.redundancy + r.unique2 == pytest.approx(0.0, abs=0.05)


def test_modality_pid_errors():
    ds = xor_dataset(50)
    with pytest.raises(PIDError, match="predictor"):
        modality_pid(None, ds, ("text", "audio"), target="prediction")
    with pytest.raises(PIDError, match="no modality"):
        modality_pid(None, ds, ("text", "video"))
    with pytest.raises(PIDError, match="exactly two"):
        modality_pid(None, ds, ("text",))
    with pytest.raises(PIDError, match="rows"):
        pid_estimate(np.zeros((3, 2)), np.zeros((4, 2)), np.zeros(4))


def test_bias_diagnostics_flag_small_samples():
    """With no information at all, a small sample and many cells, the estimate is bias: the notes say so and the
    shuffle baseline measures the same amount."""
    rng = np.random.default_rng(1)
    n = 300
    x1, x2, y = rng.normal(size=(n, 3)), rng.normal(size=(n, 3)), rng.normal(size=n)
    r = pid_estimate(x1, x2, y, n_clusters=8, n_shuffles=2)
    assert r.total > 0.5  # pure plug-in bias: the true value is 0
    assert r.extra["bias_estimate"] == pytest.approx((64 - 1) * (8 - 1) / (2 * n * np.log(2)))
    assert any("bias" in note for note in r.notes)
    assert r.extra["shuffle_baseline"]["total"] == pytest.approx(r.total, rel=0.25)
    # The same data with 2 clusters and 2 bins: 8 cells instead of 512, so little bias.
    small = pid_estimate(x1, x2, y, n_clusters=2)
    assert small.total < 0.05 and small.extra["bias_estimate"] < 0.01


def test_auto_clusters_keeps_bias_small():
    from modalens.interactions.pid import auto_clusters

    assert auto_clusters(100_000, 2) == 8  # plenty of data: the cap
    assert auto_clusters(686, 2) == 6  # MOSI test split, binary target: (36 - 1) / (2 * 686 ln 2) <= 0.05 bits
    assert auto_clusters(686, None) == 4  # continuous target binned like the sources: 15 * 3 / (2 * 686 ln 2)
    assert auto_clusters(20, 7) == 2
    rng = np.random.default_rng(2)
    n = 686
    r = pid_estimate(rng.normal(size=(n, 3)), rng.normal(size=(n, 3)), rng.normal(size=n), n_clusters="auto")
    assert r.extra["n_clusters"] == 4 and r.extra["bias_estimate"] <= 0.05 + 1e-12
    assert r.total < 0.1  # no information, little bias
    with pytest.raises(PIDError, match="n_clusters"):
        pid_estimate(rng.normal(size=(n, 3)), rng.normal(size=(n, 3)), rng.normal(size=n), n_clusters="many")

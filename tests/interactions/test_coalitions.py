"""Batched coalition evaluation: same answer at any batch size, baselines respected, interruption keeps results."""

import numpy as np
import pytest

from modalens import CallablePredictor, Masker, Modality, MultimodalDataset
from modalens.interactions import InterruptedExplanation, evaluate_coalitions


def dataset(n=23):
    rng = np.random.default_rng(1)
    return MultimodalDataset(
        [Modality("a", "audio", rng.normal(size=(n, 3, 2))), Modality("b", "vision", rng.normal(size=(n, 4, 2)))],
        rng.normal(size=n),
    )


def model(v):
    return v["a"].sum((1, 2)) * 2 + v["b"].sum((1, 2)) ** 2


def test_coalitions_replace_absent_modalities_by_their_baseline():
    ds = dataset()
    masker = Masker({"a": "mean", "b": 1.5}).fit(ds)
    p = CallablePredictor(model, ["a", "b"], masker=masker)
    v = evaluate_coalitions(p, ds, progress=False)[..., 0]
    a_mean = ds["a"].values.reshape(-1, 2).mean(0)
    a_sum, b_sum = ds["a"].values.sum((1, 2)), ds["b"].values.sum((1, 2))
    base_a, base_b = 2 * 3 * a_mean.sum(), (1.5 * 8) ** 2
    assert np.allclose(v[:, 0], base_a + base_b, atol=1e-4)  # empty coalition
    assert np.allclose(v[:, 1], 2 * a_sum + base_b, atol=1e-4)  # only a
    assert np.allclose(v[:, 2], base_a + b_sum**2, atol=1e-4)  # only b
    assert np.allclose(v[:, 3], 2 * a_sum + b_sum**2, atol=1e-4)


@pytest.mark.parametrize("batch_size", [1, 4, 7, 1000])
def test_batch_size_does_not_change_the_answer(batch_size):
    ds = dataset()
    p = CallablePredictor(model, ["a", "b"])
    ref = evaluate_coalitions(p, ds, batch_size=10_000, progress=False)
    assert np.allclose(evaluate_coalitions(p, ds, batch_size=batch_size, progress=False), ref)


def test_interrupt_keeps_finished_instances():
    ds = dataset()
    calls = {"n": 0}

    def flaky(v):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return model(v)

    p = CallablePredictor(flaky, ["a", "b"])
    with pytest.raises(InterruptedExplanation) as info:
        evaluate_coalitions(p, ds, batch_size=16, progress=False)  # 4 instances per batch
    assert len(info.value.finished) == 8
    ref = evaluate_coalitions(CallablePredictor(model, ["a", "b"]), ds, progress=False)
    assert np.allclose(info.value.partial, ref[:8])


def test_missing_modality_is_named():
    ds = dataset()
    p = CallablePredictor(model, ["a", "c"])
    with pytest.raises(ValueError, match=r"\['c'\]"):
        evaluate_coalitions(p, ds, progress=False)

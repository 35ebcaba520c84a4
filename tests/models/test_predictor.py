"""Adapters and baselines: torch modules, sklearn estimators and callables behave the same way."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression

from modalens import CallablePredictor, Masker, Modality, MultimodalDataset, SklearnPredictor, TorchPredictor, wrap
from modalens.models import MaskerError, PredictorError


@pytest.fixture
def ds():
    rng = np.random.default_rng(0)
    mask = np.ones((30, 4), bool)
    mask[:, 3] = False  # last step is padding
    return MultimodalDataset(
        [
            Modality("text", "text", rng.normal(size=(30, 4, 3)), mask=mask),
            Modality("audio", "audio", rng.normal(size=(30, 2))),
        ],
        rng.normal(size=30),
    )


class TwoInput(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.t = torch.nn.Linear(3, 1)
        self.a = torch.nn.Linear(2, 1)

    def forward(self, text, audio, masks=None):
        w = masks["text"].float().unsqueeze(-1) if masks is not None else 1.0
        return (self.t(text) * w).sum((1, 2)) + self.a(audio).sum((1, 2))


def test_torch_predictor_matches_module_and_applies_baseline(ds):
    torch.manual_seed(0)
    module = TwoInput()
    p = TorchPredictor(module, ["text", "audio"], pass_masks=True, masker=Masker({"audio": 0.5}))
    values, masks = ds.arrays(), ds.masks()
    out = p.predict(values, masks)
    with torch.no_grad():
        ref = module(
            torch.tensor(values["text"]), torch.tensor(values["audio"]), masks={"text": torch.tensor(masks["text"])}
        )
    assert out.shape == (30, 1)
    assert np.allclose(out[:, 0], ref.numpy(), atol=1e-5)
    absent = p.predict(values, masks, absent=["audio"])
    with torch.no_grad():
        base = module.a(torch.full((1, 1, 2), 0.5)).sum().item()
    assert np.allclose(
        absent[:, 0] - out[:, 0], base - module.a(torch.tensor(values["audio"])).sum((1, 2)).detach().numpy(), atol=1e-5
    )


def test_torch_classifier_returns_probabilities(ds):
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    p = TorchPredictor(module, ["text"], output_kind="classification")
    out = p.predict(ds.arrays(), ds.masks())
    assert out.shape == (30, 3) and np.allclose(out.sum(1), 1, atol=1e-5)
    logits = TorchPredictor(module, ["text"], output_kind="classification", outputs="logits").predict(
        ds.arrays(), ds.masks()
    )
    assert not np.allclose(logits.sum(1), 1)


def test_sklearn_predictor_pools_real_steps(ds):
    p0 = SklearnPredictor(LinearRegression(), ["text", "audio"])
    design = p0.features(ds.arrays(), ds.masks())
    assert design.shape == (30, 5)
    assert np.allclose(design[:, :3], ds["text"].values[:, :3].mean(1), atol=1e-6)  # padding step excluded
    est = LinearRegression().fit(design, ds.labels)
    p = SklearnPredictor(est, ["text", "audio"])
    assert np.allclose(p.predict(ds.arrays(), ds.masks())[:, 0], est.predict(design))
    clf = LogisticRegression().fit(design, ds.labels > 0)
    pc = wrap(clf, ["text", "audio"])
    assert pc.output_kind == "classification" and pc.output_names == ["False", "True"]
    assert pc.predict(ds.arrays(), ds.masks()).shape == (30, 2)


def test_callable_can_receive_masks(ds):
    seen = {}

    def f(values, masks):
        seen["mask"] = masks["text"]
        return values["audio"].sum((1, 2))

    CallablePredictor(f, ["text", "audio"]).predict(ds.arrays(), ds.masks())
    assert seen["mask"].shape == (30, 4)


def test_baselines(ds):
    m = Masker({"text": "mean", "audio": np.array([1.0, 2.0])}).fit(ds)
    real = ds["text"].values[:, :3].reshape(-1, 3)
    assert np.allclose(m.baseline("text", 4, 3), real.mean(0), atol=1e-6)
    assert np.allclose(m.baseline("audio", 1, 2), [[1.0, 2.0]])
    assert np.allclose(Masker().baseline("x", 2, 2), 0)
    with pytest.raises(MaskerError, match="not fitted"):
        Masker("mean").baseline("text", 4, 3)
    with pytest.raises(MaskerError, match="not broadcastable"):
        Masker({"audio": np.ones(3)}).baseline("audio", 1, 2)
    with pytest.raises(MaskerError, match="expected 'zeros', 'mean'"):
        Masker("median")


def test_bad_model_output_and_inputs_are_named(ds):
    p = CallablePredictor(lambda v: np.zeros((5, 1)), ["text"])
    with pytest.raises(PredictorError, match=r"shape \(5, 1\) for a batch of 30"):
        p.predict(ds.arrays(), ds.masks())
    with pytest.raises(PredictorError, match=r"lacks modalities \['vision'\]"):
        CallablePredictor(lambda v: 0, ["vision"]).predict(ds.arrays(), ds.masks())
    with pytest.raises(PredictorError, match="unknown modalities"):
        CallablePredictor(lambda v: v["text"].sum((1, 2)), ["text"]).predict(ds.arrays(), ds.masks(), absent=["x"])
    with pytest.raises(PredictorError, match="cannot wrap"):
        wrap(42, ["text"])


def test_predictors_declare_the_protocol_and_their_gradient_capability(ds):
    from modalens.models.predictor import GradientPredictor, Predictor

    torch.manual_seed(0)
    torch_p = TorchPredictor(TwoInput(), ["text", "audio"], pass_masks=True)
    callable_p = CallablePredictor(lambda v: v["text"].sum((1, 2)), ["text", "audio"])
    sklearn_p = SklearnPredictor(LinearRegression().fit(np.zeros((3, 5)), np.zeros(3)), ["text", "audio"])
    for p in (torch_p, callable_p, sklearn_p):
        assert isinstance(p, Predictor)
        assert set(p.describe()) >= {"adapter", "modalities", "output_kind", "output_names", "masker"}
    assert torch_p.supports_gradients and isinstance(torch_p, GradientPredictor)
    assert not callable_p.supports_gradients and not sklearn_p.supports_gradients
    assert not isinstance(callable_p, GradientPredictor)
    assert wrap(torch_p, ["ignored"]) is torch_p  # a predictor is used as it is; only bare models are wrapped

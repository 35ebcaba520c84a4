"""Reference architectures: masking, resampling, configs and the TorchPredictor calling convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modalens.models import Masker, TorchPredictor
from modalens.models.reference import (
    ARCHITECTURES,
    ConfigError,
    EarlyFusionConfig,
    EarlyFusionLSTM,
    build_model,
    config_from_dict,
    make_config,
    resample_weights,
)

DIMS = {"text": 5, "audio": 3, "vision": 2}


def _inputs(seed: int, b: int = 6, t: int = 8, front_padding: bool = False):
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(b, t, d, generator=g) for d in DIMS.values()]
    masks = {}
    for name in DIMS:
        lengths = torch.randint(1, t + 1, (b,), generator=g)
        steps = torch.arange(t)[None, :]
        masks[name] = steps >= (t - lengths[:, None]) if front_padding else steps < lengths[:, None]
    masks["audio"][0] = False  # an instance with no real audio step at all
    return xs, masks


def _model(arch: str, seed: int = 0, **options):
    torch.manual_seed(seed)
    return build_model(make_config(arch, DIMS, **options)).eval()


VARIANTS = [
    ("early_lstm", {}),
    ("early_lstm", {"pool": "mean", "bidirectional": False, "layers": 2}),
    ("late_lstm", {}),
    ("late_lstm", {"pool": "mean"}),
    ("mult", {}),
    ("mult", {"pool": "last", "kernel_size": 3, "cross_layers": 2}),
]


@pytest.mark.parametrize(("arch", "options"), VARIANTS)
@pytest.mark.parametrize("front_padding", [False, True])
def test_padded_steps_do_not_change_the_output(arch, options, front_padding):
    model = _model(arch, **options)
    xs, masks = _inputs(1, front_padding=front_padding)
    with torch.no_grad():
        before = model(*xs, masks=masks)
        noisy = []
        for x, name in zip(xs, DIMS, strict=True):
            x = x.clone()
            pad = ~masks[name]
            x[pad] = 100 * torch.randn_like(x[pad])
            noisy.append(x)
        after = model(*noisy, masks=masks)
        # The check can fail: changing a real step does move the output.
        changed = [x.clone() for x in xs]
        changed[0][masks["text"]] += 1.0
        moved = model(*changed, masks=masks)
    assert before.shape == (6,)
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)
    assert (moved - before).abs().max() > 1e-3


@pytest.mark.parametrize("arch", ["early_lstm", "late_lstm"])
def test_real_steps_keep_their_order_wherever_the_padding_is(arch):
    """The same real sequence, back-padded or front-padded, gives the same LSTM output.

    (MulT's sine positions are absolute, so it is not position-free.)
    """
    model = _model(arch)
    b, t = 4, 8
    g = torch.Generator().manual_seed(3)
    xs = [torch.randn(b, t, d, generator=g) for d in DIMS.values()]
    back = {n: torch.arange(t)[None, :] < 5 for n in DIMS}
    back = {n: m.expand(b, t) for n, m in back.items()}
    shifted = [torch.roll(x, shifts=3, dims=1) for x in xs]
    front = {n: torch.roll(m, shifts=3, dims=1) for n, m in back.items()}
    with torch.no_grad():
        a, c = model(*xs, masks=back), model(*shifted, masks=front)
    torch.testing.assert_close(a, c, rtol=0, atol=1e-5)


def test_no_masks_means_every_step_is_real():
    model = _model("late_lstm")
    xs, _ = _inputs(2)
    full = {n: torch.ones(6, 8, dtype=torch.bool) for n in DIMS}
    with torch.no_grad():
        torch.testing.assert_close(model(*xs), model(*xs, masks=full))


def test_resample_weights_average_overlapping_steps():
    # 4 real source steps onto 2 real target steps: each target averages two sources.
    src = torch.tensor([[True, True, True, True, False]])
    tgt = torch.tensor([[False, True, True]])
    w = resample_weights(src, tgt)[0]
    expected = torch.tensor([[0, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0], [0, 0, 0.5, 0.5, 0]], dtype=torch.float32)
    torch.testing.assert_close(w, expected)
    # 2 sources onto 3 targets: the middle target straddles both sources in equal parts.
    w = resample_weights(torch.tensor([[True, True]]), torch.tensor([[True, True, True]]))[0]
    torch.testing.assert_close(w, torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]))


def test_early_fusion_resampling_of_a_twice_as_fast_modality_equals_the_aligned_input():
    """Audio at two frames per word, each frame repeating the word-level value, equals word-aligned audio."""
    torch.manual_seed(0)
    config = EarlyFusionConfig(modalities={"text": 4, "audio": 3})
    model = EarlyFusionLSTM(config).eval()
    g = torch.Generator().manual_seed(5)
    b, t = 5, 6
    text, audio = torch.randn(b, t, 4, generator=g), torch.randn(b, t, 3, generator=g)
    lengths = torch.tensor([6, 4, 1, 3, 5])
    text_mask = torch.arange(t)[None, :] < lengths[:, None]
    fast = torch.cat([audio.repeat_interleave(2, dim=1), torch.randn(b, 3, 3, generator=g)], dim=1)  # T = 15
    fast_mask = torch.arange(2 * t + 3)[None, :] < 2 * lengths[:, None]
    with torch.no_grad():
        aligned = model(text, audio, masks={"text": text_mask, "audio": text_mask})
        resampled = model(text, fast, masks={"text": text_mask, "audio": fast_mask})
    torch.testing.assert_close(resampled, aligned, rtol=0, atol=1e-5)


def test_early_fusion_require_refuses_unaligned_inputs():
    model = _model("early_lstm", align="require")
    xs, _ = _inputs(0)
    xs[1] = torch.randn(6, 11, 3)
    with pytest.raises(ValueError, match="word-aligned"):
        model(*xs)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_torch_predictor_with_absent_modalities(arch):
    model = _model(arch)
    xs, masks = _inputs(4)
    values = {n: x.numpy() for n, x in zip(DIMS, xs, strict=True)}
    np_masks = {n: m.numpy() for n, m in masks.items()}
    predictor = TorchPredictor(model, list(DIMS), pass_masks=True, masker=Masker("zeros"))
    out = predictor.predict(values, np_masks, absent=["audio", "vision"])
    with torch.no_grad():
        direct = model(xs[0], torch.zeros_like(xs[1]), torch.zeros_like(xs[2]), masks=masks).numpy()
    assert out.shape == (6, 1)
    np.testing.assert_allclose(out[:, 0], direct, rtol=0, atol=1e-6)
    full = predictor.predict(values, np_masks)
    assert np.abs(full - out).max() > 1e-4  # absence changes the prediction
    # to_predictor sets the masks convention and names the output.
    again = model.to_predictor().predict(values, np_masks, absent=["audio", "vision"])
    np.testing.assert_allclose(again, out, rtol=0, atol=1e-6)


def test_classification_outputs_logits():
    model = _model("mult", task="classification", n_classes=3)
    xs, masks = _inputs(0)
    with torch.no_grad():
        out = model(*xs, masks=masks)
    assert out.shape == (6, 3)
    predictor = model.to_predictor()
    probs = predictor.predict(
        {n: x.numpy() for n, x in zip(DIMS, xs, strict=True)}, {n: m.numpy() for n, m in masks.items()}
    )
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)


def test_regression_output_is_bounded_by_output_range():
    model = _model("late_lstm", output_range=3.0)
    with torch.no_grad():
        model.head[-1].bias.fill_(1e4)
        xs, masks = _inputs(0)
        out = model(*xs, masks=masks)
    assert out.abs().max() <= 3.0
    assert out.min() > 2.9


def test_single_modality_and_single_step_inputs_work():
    for arch in ARCHITECTURES:
        torch.manual_seed(0)
        model = build_model(make_config(arch, {"tabular": 4})).eval()
        with torch.no_grad():
            assert model(torch.randn(3, 4)).shape == (3,)  # [B, D] read as T = 1


def test_input_errors_name_the_problem():
    model = _model("late_lstm")
    xs, _ = _inputs(0)
    with pytest.raises(ValueError, match="reads 3 tensors"):
        model(*xs[:2])
    with pytest.raises(ValueError, match="modality 'audio': expected \\[B, T, 3\\]"):
        model(xs[0], torch.randn(6, 8, 4), xs[2])
    with pytest.raises(ValueError, match="mask of 'text'"):
        model(*xs, masks={"text": torch.ones(6, 3, dtype=torch.bool)})
    out = model({n: x for n, x in zip(DIMS, xs, strict=True)})  # the dict calling convention
    assert out.shape == (6,)


def test_configs_validate_and_round_trip():
    config = make_config("mult", DIMS, d_model=16, heads=2)
    again = config_from_dict(config.to_dict())
    assert again == config and again.modalities == DIMS
    with pytest.raises(ConfigError, match="heads"):
        make_config("mult", DIMS, d_model=16, heads=3)
    with pytest.raises(ConfigError, match="unknown option"):
        make_config("late_lstm", DIMS, d_model=16)
    with pytest.raises(ConfigError, match="architecture"):
        make_config("gru", DIMS)
    with pytest.raises(ConfigError, match="modalities\\['audio'\\]"):
        make_config("early_lstm", {"text": 3, "audio": 0})
    with pytest.raises(ConfigError, match="n_classes"):
        make_config("early_lstm", DIMS, task="classification")
    with pytest.raises(ConfigError, match="reference"):
        make_config("early_lstm", DIMS, reference="image")


def test_architectures_live_in_the_shared_registry():
    from modalens._core.errors import ConfigurationError
    from modalens._core.registry import Registry
    from modalens.models.reference import EarlyFusionLSTM, list_architectures, register_architecture

    assert isinstance(ARCHITECTURES, Registry)
    assert list_architectures() == list(ARCHITECTURES) == ["early_lstm", "late_lstm", "mult"]
    assert "mult" in ARCHITECTURES and "gru" not in ARCHITECTURES
    for arch in ARCHITECTURES:
        cls = ARCHITECTURES.get(arch)
        assert cls.config_class.architecture == arch
        assert isinstance(build_model(make_config(arch, DIMS)), cls)
    with pytest.raises(ConfigurationError, match="already registered"):
        register_architecture(EarlyFusionLSTM)

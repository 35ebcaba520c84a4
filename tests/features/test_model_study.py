"""The feature study on a predictor's hidden layer: activation capture, K-modality dominance, attributions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from modalens.data.dataset import Modality, MultimodalDataset
from modalens.features.mds import analyze_dominance, analyze_mds
from modalens.features.model_study import feature_attributions, run_model_feature_study
from modalens.features.sae import make_config, train_extractor
from modalens.models.activations import LayerError, layer_activations, layer_head, layer_names
from modalens.models.masker import Masker

MODS = ("text", "audio", "vision")
CONCEPTS = 4
D_IN = CONCEPTS + 1
BLOCK = CONCEPTS


class BlockModel(nn.Module):
    """Hidden layer = [ReLU(concept one-hot of text), ... of audio, ... of vision, ReLU(u_text + u_audio + u_vision)]:
    a block per modality (its features belong to that modality alone) and one shared unit that every modality feeds
    equally (cross-modal); a linear head over it."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.modalities = MODS
        self.hidden = nn.Identity()
        self.out = nn.Linear(3 * BLOCK + 1, 1)

    def forward(self, *xs: torch.Tensor, masks: dict | None = None) -> torch.Tensor:
        pooled = [x.mean(dim=1) for x in xs]
        blocks = [torch.relu(p[:, :CONCEPTS]) for p in pooled]
        shared = torch.relu(sum(p[:, CONCEPTS:] for p in pooled))
        h = self.hidden(torch.cat([*blocks, shared], dim=1))
        return self.out(h)[:, 0]


def _dataset(n: int = 600, seed: int = 0) -> MultimodalDataset:
    rng = np.random.default_rng(seed)
    mods = []
    for m in MODS:
        x = np.zeros((n, 1, D_IN), np.float32)
        x[np.arange(n), 0, rng.integers(0, CONCEPTS, n)] = rng.uniform(1.0, 2.0, n)
        x[:, 0, CONCEPTS] = rng.uniform(0.5, 1.5, n)
        mods.append(Modality(m, m, x))
    return MultimodalDataset(mods, rng.normal(size=n).astype(np.float32), name="blocks")


def test_layer_activations_capture_the_hook_and_the_baseline() -> None:
    model, data = BlockModel(), _dataset(50)
    full, out = layer_activations(model, "hidden", data)
    assert full.shape == (50, 3 * BLOCK + 1) and out.shape == (50,)
    masker = Masker("zeros").fit(data)
    only_audio, _ = layer_activations(model, "hidden", data, present={"audio"}, masker=masker)
    # the blocks of absent modalities are ReLU(0) = 0; audio's block equals the full input's
    assert np.allclose(only_audio[:, :BLOCK], 0) and np.allclose(only_audio[:, 2 * BLOCK : 3 * BLOCK], 0)
    assert np.allclose(only_audio[:, BLOCK : 2 * BLOCK], full[:, BLOCK : 2 * BLOCK], atol=1e-6)
    # ':input' reads the input of a layer: the head's input is the hidden layer
    head_in, _ = layer_activations(model, "out:input", data)
    assert np.allclose(head_in, full)


def test_a_wrong_layer_name_lists_the_layers() -> None:
    model, data = BlockModel(), _dataset(10)
    with pytest.raises(LayerError, match="its layers are: hidden, out") as info:
        layer_activations(model, "fused", data)
    assert "'fused'" in str(info.value)
    assert "hidden" in layer_names(model)
    with pytest.raises(LayerError, match="'input' or 'output'"):
        layer_activations(model, "hidden:grad", data)


def test_k2_reduces_to_the_image_text_mds() -> None:
    rng = np.random.default_rng(3)
    za = np.maximum(rng.normal(size=(300, 40)), 0).astype(np.float32)
    zb = np.maximum(rng.normal(size=(300, 40)) + np.linspace(-1, 1, 40), 0).astype(np.float32)
    two = analyze_mds(za, zb, n_boot=0)
    named = analyze_dominance({"audio": za, "text": zb}, n_boot=0)
    assert np.allclose(two.mds, named.scores[:, 0], equal_nan=True)
    mapping = {"vision": "audio", "language": "language", "cross-modal": "cross-modal", "inactive": "inactive"}
    assert [mapping[c] for c in two.categories] == list(named.categories)


def _identity_sae(d: int):
    """A ReLU SAE whose features are the layer's units (codes = ReLU(activation)): the known answer."""
    ext = train_extractor(make_config("relu", d, d, epochs=1), np.eye(d, dtype=np.float32), np.eye(d, dtype=np.float32))
    with torch.no_grad():
        for name in ("W_enc", "W_dec"):
            getattr(ext.extractor, name).copy_(torch.eye(d))
        ext.extractor.b_enc.zero_()
        ext.extractor.b_dec.zero_()
    return ext.extractor


def _block_inputs(n: int, baseline: str = "zeros"):
    model, data = BlockModel(), _dataset(n)
    masker = Masker(baseline).fit(data)
    full, _ = layer_activations(model, "hidden", data)
    present = {m: layer_activations(model, "hidden", data, present={m}, masker=masker)[0] for m in MODS}
    return model, data, full, present


def test_block_model_features_are_dominated_by_their_block() -> None:
    model, data, full, present = _block_inputs(600)
    head = layer_head(model, "hidden", data, np.arange(len(data)))
    study = run_model_feature_study(
        full, present, head=head, extractor=_identity_sae(full.shape[1]), n_boot=50, n_null=5
    )
    feats = study.features.set_index("feature")
    expected = ["language"] * BLOCK + ["audio"] * BLOCK + ["vision"] * BLOCK + ["cross-modal"]
    assert feats["category"].tolist() == expected
    for b, m in enumerate(MODS):
        assert np.allclose(feats[f"dominance_{m}"].iloc[b * BLOCK : (b + 1) * BLOCK], 1.0, atol=1e-6)
    shared = feats.iloc[-1]
    assert all(0.25 < shared[f"dominance_{m}"] < 0.42 for m in MODS)  # u_m / (u_t + u_a + u_v), E ~ 1/3
    assert study.proportions == pytest.approx(
        {"language": 4 / 13, "audio": 4 / 13, "vision": 4 / 13, "cross-modal": 1 / 13}
    )
    # instances: the features of largest |attribution| are the units that fire, attribution = unit x head weight
    inst = study.instance_features
    assert set(inst["instance"]) == set(range(len(data)))
    w = model.out.weight.detach().numpy()[0]
    row = inst[inst["instance"] == 0]
    assert len(row) == 4 and set(row["category"]) == {"language", "audio", "vision", "cross-modal"}
    assert np.allclose(row["attribution"], row["code"] * w[row["feature"]], atol=1e-5)
    assert np.allclose(row["total"].iloc[0], full[0] @ w, atol=1e-4)


def test_a_trained_sae_finds_the_blocks() -> None:
    model, data, full, present = _block_inputs(600)
    study = run_model_feature_study(
        full, present, d_sae=26, extractor_options={"k": 4, "epochs": 60}, n_boot=0, n_null=0
    )
    feats = study.features
    w_dec = study.extractor.W_dec.detach().numpy()
    # a feature whose decoder row lies mostly in one modality's block is dominated by that modality
    checked = 0
    for j, row in feats.iterrows():
        if row["category"] == "inactive" or row["n_active"] < 20:
            continue
        mass = np.array([np.square(w_dec[j, b * BLOCK : (b + 1) * BLOCK]).sum() for b in range(3)])
        b = int(np.argmax(mass))
        if mass[b] > 0.8 * np.square(w_dec[j]).sum():
            assert row[f"dominance_{MODS[b]}"] > 0.6, (j, row.to_dict())
            checked += 1
    assert checked >= 3


def test_attribution_is_exact_for_a_linear_head() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 12)).astype(np.float32)
    ext = train_extractor(make_config("topk", 12, 48, k=4, epochs=5), x, x).extractor
    w = torch.from_numpy(rng.normal(size=12).astype(np.float32))
    z, attr, out = feature_attributions(ext, x, lambda h: h @ w + 0.5)
    expected = z * (ext.W_dec.detach().numpy() @ w.numpy())[None, :]
    assert np.allclose(attr, expected, atol=1e-5)
    assert np.allclose(out, x @ w.numpy() + 0.5, atol=1e-5)
    # ablating feature j from the activation moves the output by exactly its attribution
    j = int(np.argmax(np.abs(attr[0])))
    x_ablated = x[0] - z[0, j] * ext.W_dec.detach().numpy()[j]
    assert np.isclose(float(x[0] @ w.numpy() - x_ablated @ w.numpy()), attr[0, j], atol=1e-4)


def test_the_run_stores_instance_features(tmp_path) -> None:
    from modalens.features.study import load_feature_study

    model, data, full, present = _block_inputs(120, "mean")
    study = run_model_feature_study(
        full,
        present,
        head=layer_head(model, "hidden", data, np.arange(120)),
        d_sae=32,
        extractor_options={"k": 4, "epochs": 5},
        n_boot=20,
        n_null=2,
        model_info={"name": "blocks", "layer": "hidden"},
    )
    study.save(tmp_path / "run")
    back = load_feature_study(tmp_path / "run")
    assert back.dominance["modalities"] == list(MODS)
    assert len(back.instance_features) == len(study.instance_features) > 0
    assert back.model["layer"] == "hidden" and back.model["instances"] == list(range(120))


def test_cli_wrong_layer_lists_the_layers(tmp_path) -> None:
    from typer.testing import CliRunner

    from modalens.cli.features import app

    result = CliRunner().invoke(app, ["study-model", "demo", str(tmp_path / "run"), "--layer", "fused", "--limit", "5"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "layer 'fused' is not a layer of MulTLike" in text and "head.0" in text and "norm_out.2" in text
    assert not (tmp_path / "run").exists()


def test_demo_mult_end_to_end(tmp_path) -> None:
    """The demo MulT's fused representation (the head's input) on 240 demo instances, a few epochs."""
    from typer.testing import CliRunner

    from modalens.cli.features import app
    from modalens.features.study import load_feature_study

    args = ["study-model", "demo", str(tmp_path / "run"), "--layer", "head:input", "--limit", "240"]
    args += ["--epochs", "3", "--n-boot", "20", "--n-null", "2", "--d-sae", "128"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    study = load_feature_study(tmp_path / "run")
    assert study.dominance["modalities"] == ["text", "audio", "vision"]
    assert set(study.proportions) == {"language", "audio", "vision", "cross-modal"}
    assert study.model["layer"] == "head:input" and study.model["baseline"] == "mean"
    inst = study.instance_features
    assert inst["id"].nunique() == 240 and (inst["rank"] < 5).all()
    # the attributions are gradient x code: with the reconstruction error kept, the output is the model's own
    from modalens.data.demo import load_demo
    from modalens.models.training import load_pretrained, predict

    out = predict(load_pretrained("mult"), load_demo(), np.arange(240))
    first = inst.drop_duplicates("instance").set_index("instance")["output"]
    assert np.allclose(first.to_numpy(), out[first.index.to_numpy()], atol=1e-4)


def test_attributions_in_batches_equal_one_pass() -> None:
    model, data, full, _ = _block_inputs(50)
    head = layer_head(model, "hidden", data, np.arange(50))
    ext = _identity_sae(full.shape[1])
    one = feature_attributions(ext, full, head)
    batched = feature_attributions(ext, full, head, batch_size=7)
    for a, b in zip(one, batched, strict=True):
        assert np.allclose(a, b, atol=1e-6)
    w = model.out.weight.detach().numpy()[0]
    assert np.allclose(one[1], full * w[None, :], atol=1e-5)  # identity SAE, linear head: a_j = h_j w_j

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from modalens.features.ncl import NCLConfig, train_ncl
from modalens.features.sae import (
    ReLUSAEConfig,
    TopKSAEConfig,
    get_extractor,
    list_extractors,
    load_extractor,
    make_config,
    reconstruction_metrics,
    train_extractor,
    train_sae,
)


def test_registry_lists_all_architectures():
    assert {"relu", "topk", "ncl"} <= set(list_extractors())
    assert get_extractor("topk").config is TopKSAEConfig
    with pytest.raises(ValueError, match="choose from"):
        get_extractor("gated")
    with pytest.raises(TypeError, match="no option"):
        make_config("topk", 4, 8, l1_coefficient=1.0)


def test_config_validation_names_field():
    with pytest.raises(ValueError, match="k must"):
        TopKSAEConfig(d_in=4, d_sae=8, k=9)
    with pytest.raises(ValueError, match="d_sae"):
        ReLUSAEConfig(d_in=4, d_sae=0)


def test_topk_learns_planted_data(trained_topk):
    m = trained_topk.metrics
    assert m["explained_variance"] > 0.95
    assert m["l0"] <= 2.0 + 1e-9  # at most k codes per row
    assert m["image"]["l0"] <= 2.0 + 1e-9
    losses = [h["loss"] for h in trained_topk.history]
    assert losses[-1] < 0.2 * losses[0]


def test_topk_features_match_planted_kinds(trained_topk, planted):
    """Each planted atom's best-matching feature has the right modality: the extractor finds the known answer."""
    sae = trained_topk.extractor
    zi, zt = sae.encode_numpy(planted.image), sae.encode_numpy(planted.text)
    for a, kind in enumerate(planted.kinds):
        pres = np.r_[planted.presence[:, a], planted.presence[:, a]].astype(float)
        z = np.r_[zi, zt]
        corr = [np.corrcoef(z[:, j], pres)[0, 1] if z[:, j].std() > 0 else 0 for j in range(z.shape[1])]
        j = int(np.nanargmax(corr))
        active = (zi[:, j] + zt[:, j]) > 0
        mds = (zi[active, j] / (zi[active, j] + zt[active, j])).mean()
        expected = {"vision": (0.75, 1.0), "language": (0.0, 0.25), "cross-modal": (0.35, 0.65)}[kind]
        assert expected[0] <= mds <= expected[1], (a, kind, mds)


def test_relu_l1_trades_sparsity_for_reconstruction(planted):
    common = dict(d_in=16, d_sae=24, epochs=25, batch_size=64, lr=3e-3)
    loose = train_sae(ReLUSAEConfig(l1_coefficient=1e-4, **common), planted.image, planted.text).metrics
    tight = train_sae(ReLUSAEConfig(l1_coefficient=5e-2, **common), planted.image, planted.text).metrics
    assert tight["l0"] < loose["l0"]
    assert loose["explained_variance"] > tight["explained_variance"]
    assert loose["explained_variance"] > 0.9


def test_training_is_deterministic(planted):
    cfg = TopKSAEConfig(d_in=16, d_sae=12, k=2, epochs=3, batch_size=64, seed=5)
    a = train_sae(cfg, planted.image, planted.text).extractor
    b = train_sae(cfg, planted.image, planted.text).extractor
    assert torch.equal(a.W_enc, b.W_enc) and torch.equal(a.W_dec, b.W_dec)


def test_decoder_rows_unit_norm(trained_topk):
    norms = trained_topk.extractor.W_dec.norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms), atol=1e-5, rtol=0)


def test_reconstruction_metrics_known_values(axis_sae):
    x = np.array([[1.0] + [0.0] * 15, [0.0, -2.0] + [0.0] * 14], dtype=np.float32)
    m = reconstruction_metrics(axis_sae, x)
    assert m["explained_variance"] == pytest.approx(1.0)
    assert m["l0"] == pytest.approx(1.0)
    assert m["n_dead"] == 32 - 2 and m["dead_fraction"] == pytest.approx(30 / 32)


def test_save_load_roundtrip_saelens_layout(tmp_path, trained_topk, planted):
    sae = trained_topk.extractor
    sae.save(tmp_path / "sae", metadata={"model_name": "fake"})
    cfg = json.loads((tmp_path / "sae" / "cfg.json").read_text())
    assert cfg["architecture"] == "topk" and cfg["k"] == 2 and cfg["d_in"] == 16 and cfg["d_sae"] == 24
    from safetensors.torch import load_file

    tensors = load_file(str(tmp_path / "sae" / "sae_weights.safetensors"))
    assert {k: tuple(v.shape) for k, v in tensors.items()} == {
        "W_enc": (16, 24),
        "b_enc": (24,),
        "W_dec": (24, 16),
        "b_dec": (16,),
    }
    back = load_extractor(tmp_path / "sae")
    np.testing.assert_array_equal(back.encode_numpy(planted.image), sae.encode_numpy(planted.image))


def test_load_foreign_saelens_standard_dir(tmp_path):
    """A directory as SAELens writes it (no modalens block) loads and encodes as relu((x - b_dec) W_enc + b_enc)."""
    rng = np.random.default_rng(0)
    w = {
        k: torch.from_numpy(rng.normal(size=s).astype(np.float32))
        for k, s in {"W_enc": (3, 5), "b_enc": (5,), "W_dec": (5, 3), "b_dec": (3,)}.items()
    }
    save_file(w, str(tmp_path / "sae_weights.safetensors"))
    (tmp_path / "cfg.json").write_text(
        json.dumps(
            {
                "architecture": "standard",
                "d_in": 3,
                "d_sae": 5,
                "apply_b_dec_to_input": True,
                "normalize_activations": "none",
            }
        )
    )
    sae = load_extractor(tmp_path)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    expected = np.maximum((x - w["b_dec"].numpy()) @ w["W_enc"].numpy() + w["b_enc"].numpy(), 0)
    np.testing.assert_allclose(sae.encode_numpy(x), expected, atol=1e-5)
    (tmp_path / "cfg.json").write_text(json.dumps({"architecture": "jumprelu", "d_in": 3, "d_sae": 5}))
    with pytest.raises(ValueError, match="jumprelu"):
        load_extractor(tmp_path)


def test_load_rejects_wrong_shapes(tmp_path, trained_topk):
    trained_topk.extractor.save(tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    cfg["modalens"]["d_sae"] = 25
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="W_enc has shape"):
        load_extractor(tmp_path)
    with pytest.raises(FileNotFoundError, match="cfg.json"):
        load_extractor(tmp_path / "nothing")


def test_bad_embeddings_are_named(planted):
    with pytest.raises(ValueError, match="text_emb"):
        train_extractor("topk", planted.image, planted.text[:, :8], d_sae=8)
    bad = planted.image.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="image_emb contains NaN"):
        train_extractor("topk", bad, planted.text, d_sae=8)


def test_ncl_codes_nonnegative_sparse_and_aligned(planted, tmp_path):
    cfg = NCLConfig(d_in=16, d_sae=24, epochs=40, batch_size=64, lr=3e-3)
    res = train_ncl(cfg, planted.image, planted.text)
    head = res.extractor
    zi, zt = head.encode_numpy(planted.image), head.encode_numpy(planted.text)
    assert (zi >= 0).all() and (zt >= 0).all()
    assert res.metrics["l0"] < 24  # non-negativity leaves codes sparse
    assert res.history[-1]["clip"] < res.history[0]["clip"]
    # the contrastive head retrieves partners far above chance (1/400) in code space
    from modalens.features.interventions import retrieval_recall

    assert retrieval_recall(zi, zt, ks=(10,))["i2t@10"] > 0.2
    assert res.metrics["explained_variance"] > 0.3  # fitted linear read-out
    head.save(tmp_path / "ncl")
    back = load_extractor(tmp_path / "ncl")
    assert back.edit_space == "code"
    np.testing.assert_allclose(back.encode_numpy(planted.text), zt, atol=1e-6)


def test_train_on_device_argument(planted):
    res = train_extractor("topk", planted.image[:50], planted.text[:50], d_sae=8, k=2, epochs=1, device="cpu")
    assert res.extractor.W_enc.device.type == "cpu"


def test_interrupt_keeps_finished_epochs(planted, monkeypatch):
    """Ctrl-C during training ends it early and returns the model trained so far, with a warning."""
    from modalens.features import sae as sae_mod

    calls = {"n": 0}
    original = sae_mod.TopKSAE.training_loss

    def interrupting(self, batch):
        calls["n"] += 1
        if calls["n"] > 13:  # 800 rows / 64 = 13 batches: interrupt during the second epoch
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(sae_mod.TopKSAE, "training_loss", interrupting)
    cfg = TopKSAEConfig(d_in=16, d_sae=12, k=2, epochs=5, batch_size=64)
    with pytest.warns(UserWarning, match="interrupted after 1 of 5"):
        res = train_sae(cfg, planted.image, planted.text)
    assert res.metrics["epochs_completed"] == 1 and len(res.history) == 1

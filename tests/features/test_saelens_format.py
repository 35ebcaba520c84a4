"""SAELens files: directories built by hand in SAELens' layout, with values worked out from SAELens' definitions.

SAELens' TopK SAE (``sae_lens/saes/topk_sae.py``) with ``rescale_acts_by_decoder_norm`` set encodes

    z = relu(topk_k(((x - b_dec) W_enc + b_enc) * n))          n_j = ||W_dec[j]||

and decodes ``x_hat = (z / n) W_dec + b_dec``. The StandardSAE config has no such option: SAELens drops the key.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from modalens.features.errors import FeatureError
from modalens.features.sae import load_extractor

# d_in = 2, d_sae = 3; decoder rows of norm 2, 0.5 and 5
WEIGHTS = {
    "W_enc": [[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]],
    "b_enc": [0.1, -0.2, 0.2],
    "W_dec": [[2.0, 0.0], [0.0, 0.5], [3.0, 4.0]],
    "b_dec": [0.5, -0.5],
}
# inputs chosen so that x - b_dec = [1, 2], [0, 0] and [-1, -1]
X = np.array([[1.5, 1.5], [0.5, -0.5], [-0.5, -1.5]], dtype=np.float32)


def _write(folder, architecture="topk", rescale=True, weights=WEIGHTS):
    folder.mkdir(exist_ok=True)
    save_file({k: torch.tensor(v) for k, v in weights.items()}, str(folder / "sae_weights.safetensors"))
    cfg = {
        "architecture": architecture,
        "d_in": 2,
        "d_sae": 3,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "rescale_acts_by_decoder_norm": rescale,
        "metadata": {"sae_lens_version": "6.18.0", "model_name": "m", "hook_name": "h"},
    }
    if architecture == "topk":
        cfg["k"] = 2
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return folder


def test_topk_rescale_by_decoder_norm_matches_saelens(tmp_path):
    sae = load_extractor(_write(tmp_path / "sae"))
    z = sae.encode_numpy(X)
    # row 1: pre = [1, 2] W_enc + b_enc = [1.1, 1.8, 1.7]; times n = [2.2, 0.9, 8.5]; top 2 -> features 2 and 0
    # row 2: pre = b_enc = [0.1, -0.2, 0.2]; times n = [0.2, -0.1, 1.0]; top 2 -> features 2 and 0
    # row 3: pre = [-0.9, -1.2, -0.8]; times n = [-1.8, -0.6, -4.0]; top 2 (features 1, 0) are negative -> relu 0
    np.testing.assert_allclose(z, [[2.2, 0.0, 8.5], [0.2, 0.0, 1.0], [0.0, 0.0, 0.0]], rtol=1e-6, atol=1e-6)
    # x_hat = (z / n) W_dec + b_dec
    # row 1: z / n = [1.1, 0, 1.7] -> 1.1 [2, 0] + 1.7 [3, 4] = [7.3, 6.8]; + b_dec = [7.8, 6.3]
    # row 2: z / n = [0.1, 0, 0.2] -> [0.2, 0] + [0.6, 0.8] = [0.8, 0.8]; + b_dec = [1.3, 0.3]
    # row 3: b_dec
    np.testing.assert_allclose(sae.decode_numpy(z), [[7.8, 6.3], [1.3, 0.3], [0.5, -0.5]], rtol=1e-6, atol=1e-6)
    # without the flag the top 2 differ: pre = [1.1, 1.8, 1.7] keeps features 1 and 2
    plain = load_extractor(_write(tmp_path / "plain", rescale=False))
    np.testing.assert_allclose(plain.encode_numpy(X[:1]), [[0.0, 1.8, 1.7]], rtol=1e-6)
    # an edit that changes no code leaves the input as it is; the loaded decoder rows have unit norm
    np.testing.assert_allclose(sae.edit(X, lambda codes: codes), X, atol=1e-6)
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(3))


def test_resaved_rescaled_file_keeps_its_codes(tmp_path):
    sae = load_extractor(_write(tmp_path / "sae"))
    sae.save(tmp_path / "again")
    back = load_extractor(tmp_path / "again")
    np.testing.assert_allclose(back.encode_numpy(X), sae.encode_numpy(X), rtol=1e-6)


def test_standard_ignores_the_flag_as_saelens_does(tmp_path):
    sae = load_extractor(_write(tmp_path / "std", architecture="standard"))
    # relu((x - b_dec) W_enc + b_enc), no rescaling: rows [1.1, 1.8, 1.7], [0.1, 0, 0.2], [0, 0, 0]
    np.testing.assert_allclose(sae.encode_numpy(X), [[1.1, 1.8, 1.7], [0.1, 0.0, 0.2], [0.0, 0.0, 0.0]], rtol=1e-6)


def test_rescale_refuses_zero_decoder_rows_and_non_booleans(tmp_path):
    zero = dict(WEIGHTS, W_dec=[[2.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    with pytest.raises(FeatureError, match=r"W_dec rows \[1\] are zero"):
        load_extractor(_write(tmp_path / "zero", weights=zero))
    with pytest.raises(FeatureError, match="rescale_acts_by_decoder_norm must be true or false"):
        load_extractor(_write(tmp_path / "odd", rescale="yes"))


def test_saved_cfg_carries_saelens_metadata(tmp_path, planted):
    from modalens import __version__
    from modalens.features.sae import SAELENS_FORMAT_VERSION, TopKSAEConfig, train_sae

    sae = train_sae(TopKSAEConfig(d_in=16, d_sae=8, k=2, epochs=1), planted.image, planted.text).extractor
    sae.save(tmp_path / "out", metadata={"model_name": "fake-clip", "sae_lens_version": "0.1"})
    cfg = json.loads((tmp_path / "out" / "cfg.json").read_text())
    meta = cfg["metadata"]
    # SAELens reads metadata.sae_lens_version to choose its loader (6.0 layout, metadata kept); the writer is named
    assert meta["sae_lens_version"] == SAELENS_FORMAT_VERSION == "6.0.0"  # a caller cannot fake it
    assert meta["sae_lens_training_version"] is None  # not trained by SAELens
    assert meta["modalens_version"] == __version__
    assert meta["model_name"] == "fake-clip" and meta["hook_name"] == "embedding"
    assert cfg["architecture"] == "topk" and cfg["k"] == 2 and cfg["rescale_acts_by_decoder_norm"] is False
    version = pytest.importorskip("packaging.version")
    # the test SAELens' handle_config_defaulting applies before keeping a file's metadata
    assert version.Version(meta["sae_lens_version"]) >= version.Version("6.0.0-rc.0")
    back = load_extractor(tmp_path / "out")
    np.testing.assert_array_equal(back.encode_numpy(planted.image), sae.encode_numpy(planted.image))

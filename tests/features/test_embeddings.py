"""Embedding sources: image handling, the on-disk cache, the transformers CLIP adapter and precomputed files."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch
from tests.features.tiny_clip import build_tiny_clip

from modalens.features.embeddings import (
    CLIP_MEAN,
    CLIP_STD,
    EmbeddingCache,
    EmbeddingError,
    EmbeddingModel,
    HFCLIPModel,
    PrecomputedEmbeddings,
    as_rgb_array,
    batched_encode,
    content_hash,
    extract_embeddings,
    images_to_tensor,
    l2_normalise,
    resize_center_crop,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# ---------------------------------------------------------------------------------------------------------------
# Images


def test_grey_and_rgba_become_rgb():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = as_rgb_array(grey)
    assert rgb.shape == (3, 4, 3)
    assert (rgb[:, :, 0] == grey).all() and (rgb[:, :, 2] == grey).all()
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[..., 1] = 7
    assert as_rgb_array(rgba).shape == (2, 2, 3)
    assert (as_rgb_array(rgba)[..., 1] == 7).all()


def test_pil_image_is_accepted():
    from PIL import Image

    pil = Image.fromarray(np.full((5, 6), 9, np.uint8), mode="L")
    assert (as_rgb_array(pil) == 9).all() and as_rgb_array(pil).shape == (5, 6, 3)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((4, 4), np.float32), "uint8"),
        (np.zeros((4, 4, 2), np.uint8), "HxWx3"),
        ("picture.png", "PIL image"),
    ],
)
def test_bad_images_are_named(bad, message):
    with pytest.raises(EmbeddingError, match=message) as info:
        as_rgb_array(bad, where="images[7]")
    assert "images[7]" in str(info.value)


def test_center_crop_keeps_the_middle():
    # shorter side already equals the size: no resampling, the crop must be exactly the central 4x4 block
    img = np.zeros((4, 12), np.uint8)
    img[:, 4:8] = 200
    out = resize_center_crop(img, 4)
    assert out.shape == (4, 4, 3)
    assert (out == 200).all()


def test_resize_of_constant_image_is_constant_and_tensor_in_unit_range():
    batch = images_to_tensor([np.full((2, 3), 255, np.uint8), np.zeros((7, 5, 3), np.uint8)], 6)
    assert batch.shape == (2, 3, 6, 6) and batch.dtype == torch.float32
    assert torch.allclose(batch[0], torch.ones(3, 6, 6))
    assert torch.allclose(batch[1], torch.zeros(3, 6, 6))


def test_content_hash_tracks_content_kind_and_shape():
    a = [np.zeros((4, 4), np.uint8), np.ones((4, 4), np.uint8)]
    b = [np.zeros((4, 4), np.uint8), np.ones((4, 4), np.uint8)]
    assert content_hash(a, "image") == content_hash(b, "image")
    b[1] = b[1].copy()
    b[1][0, 0] = 2
    assert content_hash(a, "image") != content_hash(b, "image")
    assert content_hash([np.zeros((2, 8), np.uint8)], "image") != content_hash([np.zeros((4, 4), np.uint8)], "image")
    assert content_hash(["ab", "c"], "text") != content_hash(["a", "bc"], "text")  # lengths are part of the hash
    with pytest.raises(EmbeddingError, match=r"texts\[1\]"):
        content_hash(["ok", 3], "text")


# ---------------------------------------------------------------------------------------------------------------
# Batched extraction and cache


class CountingEncoder:
    """Text 'embedding' = [len, count of 'a'], recording every batch it is asked for; can fail on a given call."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls = 0
        self.fail_on_call = fail_on_call

    def __call__(self, batch):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt("simulated interruption")
        return np.array([[len(t), t.count("a")] for t in batch], dtype=np.float32)


def test_batched_encode_is_exact_and_cached(tmp_path):
    texts = [f"{'a' * i}b{i}" for i in range(10)]
    enc = CountingEncoder()
    out = batched_encode(enc, texts, kind="text", model_name="m", batch_size=4, cache=tmp_path, progress=False)
    expected = np.array([[len(t), t.count("a")] for t in texts], np.float32)
    np.testing.assert_array_equal(out, expected)
    assert enc.calls == 3
    again = batched_encode(enc, texts, kind="text", model_name="m", batch_size=4, cache=tmp_path, progress=False)
    np.testing.assert_array_equal(again, expected)
    assert enc.calls == 3  # everything came from the cache
    other = batched_encode(enc, texts, kind="text", model_name="other", batch_size=4, cache=tmp_path, progress=False)
    np.testing.assert_array_equal(other, expected)
    assert enc.calls == 6  # another model name never reuses entries


def test_interrupted_extraction_keeps_finished_batches(tmp_path):
    texts = [f"t{i}" for i in range(10)]
    enc = CountingEncoder(fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        batched_encode(enc, texts, kind="text", model_name="m", batch_size=4, cache=tmp_path, progress=False)
    resumed = CountingEncoder()
    out = batched_encode(resumed, texts, kind="text", model_name="m", batch_size=4, cache=tmp_path, progress=False)
    assert resumed.calls == 1  # only the unfinished third batch is recomputed
    assert out.shape == (10, 2)


def test_damaged_cache_entry_is_recomputed(tmp_path):
    texts = ["x", "yy"]
    batched_encode(CountingEncoder(), texts, kind="text", model_name="m", batch_size=2, cache=tmp_path, progress=False)
    cache = EmbeddingCache(tmp_path)
    file = cache.path("m", "text", content_hash(texts, "text"))
    assert file.is_file()
    file.write_bytes(b"not an npy file")
    enc = CountingEncoder()
    out = batched_encode(enc, texts, kind="text", model_name="m", batch_size=2, cache=tmp_path, progress=False)
    assert enc.calls == 1
    np.testing.assert_array_equal(out, [[1, 0], [2, 0]])


def test_encoder_returning_wrong_rows_is_reported():
    with pytest.raises(EmbeddingError, match="shape"):
        batched_encode(lambda b: np.zeros((1, 2)), ["a", "b"], kind="text", model_name="m", progress=False)


def test_extract_embeddings_with_protocol_model(fake_model, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(5, 3, 8, 8)).astype(np.float32)
    texts = ["a red cat", "a blue dog", "a green car", "a photo of a cat", "dog"]
    out = extract_embeddings(fake_model, images=images, texts=texts, batch_size=2, progress=False)
    np.testing.assert_allclose(out["image"], fake_model.encode_images(images), atol=1e-6)
    np.testing.assert_allclose(out["text"], fake_model.encode_texts(texts), atol=1e-6)
    with pytest.raises(EmbeddingError, match="images=.*texts="):
        extract_embeddings(fake_model)


# ---------------------------------------------------------------------------------------------------------------
# transformers CLIPModel (a tiny random one, built offline)


@pytest.fixture(scope="module")
def tiny_clip():
    return build_tiny_clip()


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(40 + i, 48, 3), dtype=np.uint8) for i in range(n)]


def test_hf_clip_matches_the_model_computed_by_hand(tiny_clip):
    model, tokenizer = tiny_clip
    clip = HFCLIPModel(model, tokenizer, name="tiny")
    assert isinstance(clip, EmbeddingModel)
    assert clip.dim == 16 and clip.image_size == 32
    images = _images(3)
    emb = clip.encode_images(images, batch_size=2)
    assert emb.shape == (3, 16) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # by hand: shorter side to 32, centre crop, CLIP mean/std, projected pooled output, unit norm
    pixels = torch.stack([torch.from_numpy(resize_center_crop(im, 32)).permute(2, 0, 1).float() / 255 for im in images])
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = model(
            pixel_values=(pixels - mean) / std, input_ids=torch.tensor([[1, 2]]), attention_mask=torch.ones(1, 2)
        ).image_embeds
    np.testing.assert_allclose(emb, ref.numpy(), atol=1e-5)

    texts = ["a photo of a cat.", "a dog", "x"]
    temb = clip.encode_texts(texts, batch_size=2)
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        tref = model(pixel_values=torch.zeros(1, 3, 32, 32), **enc).text_embeds
    np.testing.assert_allclose(temb, tref.numpy(), atol=1e-5)
    assert not np.allclose(temb[0], temb[1])


def test_hf_clip_image_features_are_differentiable(tiny_clip):
    model, tokenizer = tiny_clip
    clip = HFCLIPModel(model, tokenizer)
    pixels = clip.preprocess_images(_images(2)).requires_grad_(True)
    assert pixels.shape == (2, 3, 32, 32) and float(pixels.detach().min()) >= 0 and float(pixels.detach().max()) <= 1
    out = clip.image_features(pixels)
    out[:, 0].sum().backward()
    assert pixels.grad is not None and torch.isfinite(pixels.grad).all() and pixels.grad.abs().sum() > 0
    with pytest.raises(EmbeddingError, match=r"\[B, 3, H, W\]"):
        clip.image_features(torch.zeros(2, 32, 32))


def test_hf_clip_from_directory_round_trip(tiny_clip, tmp_path):
    model, tokenizer = tiny_clip
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5] * 3, "image_std": [0.25] * 3}))
    loaded = HFCLIPModel.from_pretrained(tmp_path)
    assert loaded.name == str(tmp_path)
    in_memory = HFCLIPModel(model, tokenizer, mean=[0.5] * 3, std=[0.25] * 3)
    images, texts = _images(2, seed=1), ["red car", "blue sky"]
    np.testing.assert_allclose(loaded.encode_images(images), in_memory.encode_images(images), atol=1e-5)
    np.testing.assert_allclose(loaded.encode_texts(texts), in_memory.encode_texts(texts), atol=1e-5)
    default = HFCLIPModel(model, tokenizer)
    assert not np.allclose(default.encode_images(images), in_memory.encode_images(images), atol=1e-3)


def test_extract_embeddings_cache_reuses_hf_batches(tiny_clip, tmp_path):
    model, tokenizer = tiny_clip
    clip = HFCLIPModel(model, tokenizer, name="tiny/clip")
    images, texts = _images(5, seed=2), ["a", "b", "c", "d", "e"]
    first = extract_embeddings(clip, images=images, texts=texts, batch_size=2, cache_dir=tmp_path, progress=False)
    files = sorted(p.name for p in (tmp_path / "tiny_clip").iterdir())
    assert len(files) == 6 and sum(f.startswith("image-") for f in files) == 3
    second = extract_embeddings(clip, images=images, texts=texts, batch_size=2, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(first["image"], second["image"])
    np.testing.assert_allclose(first["text"], clip.encode_texts(texts), atol=1e-6)


def test_hf_clip_rejects_a_single_string(tiny_clip):
    model, tokenizer = tiny_clip
    with pytest.raises(EmbeddingError, match="single str"):
        HFCLIPModel(model, tokenizer).encode_texts("a cat")


# ---------------------------------------------------------------------------------------------------------------
# Precomputed embeddings


def _pairs(n: int = 6, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.normal(size=(n, d)).astype(np.float32)


def test_precomputed_npy_npz_and_parquet_round_trip(tmp_path):
    img, txt = _pairs()
    np.save(tmp_path / "img.npy", img)
    np.save(tmp_path / "txt.npy", txt)
    a = PrecomputedEmbeddings.load(tmp_path / "img.npy", tmp_path / "txt.npy")
    np.testing.assert_allclose(a.image_emb, l2_normalise(img), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(a.text_emb, axis=1), 1.0, atol=1e-6)
    assert len(a) == 6 and a.dim == 4

    np.savez(tmp_path / "pairs.npz", image=img, text=txt)
    b = PrecomputedEmbeddings.load(tmp_path / "pairs.npz")
    np.testing.assert_array_equal(a.image_emb, b.image_emb)

    meta = pd.DataFrame({"id": [f"p{i}" for i in range(6)], "label": [0, 1, 0, 1, 2, 2]})
    c = PrecomputedEmbeddings(img, txt, meta=meta, normalise=False)
    c.save_parquet(tmp_path / "pairs.parquet")
    d = PrecomputedEmbeddings.load(tmp_path / "pairs.parquet", normalise=False)
    np.testing.assert_array_equal(d.image_emb, img)
    np.testing.assert_array_equal(d.text_emb, txt)
    assert list(d.meta.columns) == ["id", "label"] and d.meta["id"].tolist() == meta["id"].tolist()


def test_precomputed_errors_name_the_problem(tmp_path):
    img, txt = _pairs()
    with pytest.raises(EmbeddingError, match=r"same shape"):
        PrecomputedEmbeddings(img, txt[:5])
    bad = img.copy()
    bad[2, 1] = np.nan
    with pytest.raises(EmbeddingError, match="1 row"):
        PrecomputedEmbeddings(bad, txt)
    with pytest.raises(EmbeddingError, match="2-D"):
        PrecomputedEmbeddings(img[0], txt[0])
    np.save(tmp_path / "obj.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(EmbeddingError, match="obj.npy.*pickled"):
        PrecomputedEmbeddings.from_npy(tmp_path / "obj.npy", tmp_path / "obj.npy")
    pd.DataFrame({"image_embedding": list(img)}).to_parquet(tmp_path / "half.parquet")
    with pytest.raises(EmbeddingError, match=r"half.parquet.*text_embedding"):
        PrecomputedEmbeddings.from_parquet(tmp_path / "half.parquet")
    np.savez(tmp_path / "wrong.npz", a=img)
    with pytest.raises(EmbeddingError, match=r"wrong.npz.*missing"):
        PrecomputedEmbeddings.from_npz(tmp_path / "wrong.npz")
    with pytest.raises(EmbeddingError, match="unknown embedding file type"):
        PrecomputedEmbeddings.load(tmp_path / "x.csv")
    with pytest.raises(EmbeddingError, match="text embeddings' .npy"):
        PrecomputedEmbeddings.load(tmp_path / "obj.npy")

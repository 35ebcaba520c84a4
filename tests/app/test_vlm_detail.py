"""The instance document of a vision-language run: the patch heat map, the words of the caption, MM-SHAP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import modalens as ml
from modalens.app.server import create_app
from modalens.data.images import image_text_dataset
from modalens.models.vlm import hf_clip_predictor
from tests.features.tiny_clip import build_tiny_clip

BASE = "http://127.0.0.1"


def write_vlm_run(root: Path) -> Path:
    """Three image-caption pairs explained with a tiny CLIPModel: 2x2 patches, word players, exact values."""
    model, tokenizer = build_tiny_clip(image_size=32)
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    ds = image_text_dataset(images, ["a red cat", "dog sat", "a cat"], tokenizer, image_size=32, patches=2)
    expl = ml.explain(
        hf_clip_predictor(model, tokenizer),
        ds,
        feature_method="exact",
        players="words",
        granularities=("steps",),
        templates=False,
        projection=None,
        progress=False,
    )
    return expl.save(root / "vlm")


@pytest.fixture(scope="module")
def vlm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_vlm_run(tmp_path_factory.mktemp("vlm"))


def test_instance_document_draws_patches_and_words(vlm_run: Path) -> None:
    client = TestClient(create_app([vlm_run]), base_url=BASE)
    doc = client.get("/api/runs/vlm/instances/0").json()
    run = ml.load_run(vlm_run)
    fa = run.feature_attributions
    image = fa[(fa.instance == 0) & (fa.modality == "image")].sort_values("position")
    patches = doc["patches"]["image"]
    assert (patches["rows"], patches["cols"]) == (2, 2)
    np.testing.assert_allclose(patches["values"], image.value.to_numpy())
    assert patches["image"] == {"key": "image", "mime": "image/png", "file": "0.png"}
    assert client.get(f"/api/runs/vlm/media/image/{patches['image']['file']}").status_code == 200
    words = doc["word_groups"]["text"]
    assert [w["text"] for w in words] == ["a", "red", "cat"] and [w["pieces"] for w in words] == [1, 3, 3]
    pieces = {w["position"]: w["value"] for w in doc["words"]["text"]}
    for w in words:  # a word's value is the sum of its pieces'
        assert w["value"] == pytest.approx(sum(pieces[w["position"] + k] for k in range(w["pieces"])))
    shares = {r["modality"]: r["share"] for r in doc["mm_shap"]}
    assert shares["text"] + shares["image"] == pytest.approx(1.0)
    assert not [t for t in doc["tracks"] if t["modality"] == "image"]  # the grid is drawn, not listed as tracks
    described = {m["name"]: m for m in run_manifest(client)["dataset"]["modalities"]}
    assert described["image"]["patches"]["rows"] == 2 and described["text"]["tokens"]["mask_id"] is None


def run_manifest(client: TestClient) -> dict:
    return client.get("/api/runs/vlm").json()

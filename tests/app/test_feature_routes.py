"""The feature views' documents and routes: the card's tables, the query (a run sample, a caption, a new caption and
an uploaded image through the server's model) and the comparison of two feature runs."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient

from modalens.app.server import create_app
from modalens.features.sae import load_extractor
from modalens.features.study import run_feature_study

WORDS = ["a", "photo", "of", "red", "green", "blue", "cat", "dog", "car"]


@pytest.fixture(scope="module")
def model():
    from tests.features.conftest import FakeModel

    class Model(FakeModel):
        """Also takes decoded images (H x W x 3 uint8), as real models do."""

        def encode_images(self, images, batch_size: int = 64):
            arrays = [np.asarray(i) for i in images]
            arrays = [a.transpose(2, 0, 1) / 255.0 if a.ndim == 3 and a.shape[-1] == 3 else a for a in arrays]
            return super().encode_images(np.stack(arrays).astype(np.float32), batch_size)

    return Model(WORDS, dim=16, seed=1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, model):
    rng = np.random.default_rng(0)
    n = 120
    images = rng.random((n, 3, 8, 8)).astype(np.float32)
    texts = [f"a photo of a {rng.choice(WORDS[3:6])} {rng.choice(WORDS[6:])}" for _ in range(n)]
    img, txt = model.encode_images(images), model.encode_texts(texts)
    classes = model.encode_texts(["a cat", "a dog", "a car"])
    labels = np.array([["cat", "dog", "car"].index(t.split()[-1]) for t in texts])
    common = dict(
        texts=texts,
        labels=[t.split()[-1] for t in texts],
        images=list(images),
        class_text_emb=classes,
        class_labels=labels,
        class_names=["cat", "dog", "car"],
        model_info={"name": "fake", "dim": 16},
        d_sae=32,
        n_boot=20,
        n_null=5,
        top_k=5,
        compare_with=(),
        steer_features=0,
        n_random=1,
    )
    root = tmp_path_factory.mktemp("routes")
    a = run_feature_study(img, txt, extractor="topk", extractor_options={"k": 4, "epochs": 4}, **common).save(
        root / "a"
    )
    b = run_feature_study(img, txt, extractor="ncl", extractor_options={"k": 6, "epochs": 4}, **common).save(root / "b")
    other = run_feature_study(
        img[:60],
        txt[:60],
        extractor="topk",
        extractor_options={"k": 4, "epochs": 2},
        **{**common, **_first(common, 60)},
    ).save(root / "other")
    return {"a": a, "b": b, "other": other, "texts": texts}


def _first(common, n):
    return {
        "texts": common["texts"][:n],
        "labels": common["labels"][:n],
        "images": common["images"][:n],
        "class_labels": common["class_labels"][:n],
    }


def client(paths, model=None) -> TestClient:
    return TestClient(create_app(paths, model=model), base_url="http://127.0.0.1")


def test_card_holds_examples_histograms_neighbours_classes(runs):
    c = client([runs["a"]])
    doc = c.get("/api/runs/a/features").json()
    assert {"bootstrap", "null"} <= set(doc["replicates"]) and len(doc["replicates"]["null"]) == 5
    assert len(doc["replicates"]["bootstrap"][0]) == doc["n"]
    assert "label" in doc["columns"] and doc["has_codes"]
    f = int(np.nanargmax([v if v is not None else np.nan for v in doc["columns"]["frequency"]]))
    card = c.get(f"/api/runs/a/features/{f}").json()
    assert card["examples"] and {e["level"] for e in card["examples"]} <= {"top", "middle", "low"}
    texts = [e for e in card["examples"] if e["modality"] == "text"]
    assert len({e["text"] for e in texts}) == len(texts)  # duplicates collapsed
    assert all(e["image"] for e in card["examples"] if e["modality"] == "image")
    assert {h["modality"] for h in card["histograms"]} <= {"image", "text"}
    assert len(card["neighbours"]) == 5 and all(n["feature"] != f for n in card["neighbours"])
    assert {x["class"] for x in card["classes"]} <= {"cat", "dog", "car"}


def test_query_a_sample_and_a_caption_of_the_run(runs):
    c = client([runs["a"]])
    codes = c.get("/api/runs/a/tables/codes").json()["columns"]
    q = c.get("/api/runs/a/query", params={"sample": 3, "modality": "image"}).json()
    expected = {
        f: a
        for s, m, f, a in zip(codes["sample"], codes["modality"], codes["feature"], codes["activation"], strict=True)
        if s == 3 and m == "image"
    }
    assert {x["feature"]: x["activation"] for x in q["features"]} == pytest.approx(expected)
    assert [x["activation"] for x in q["features"]] == sorted((x["activation"] for x in q["features"]), reverse=True)
    assert q["image"] == "3.png" and q["n_active"] == len(expected)
    caption = runs["texts"][5]
    q = c.get("/api/runs/a/query", params={"text": caption.upper() + "  "}).json()
    assert q["modality"] == "text" and runs["texts"][q["sample"]] == caption
    r = c.get("/api/runs/a/query", params={"text": "a caption nobody wrote"})
    assert r.status_code == 404 and "--model" in r.json()["error"]
    assert c.get("/api/runs/a/query", params={"sample": 10_000}).status_code == 404
    assert c.get("/api/runs/a/query").status_code == 404


def test_new_inputs_through_the_servers_model(runs, model):
    c = client([runs["a"]], model=model)
    ext = load_extractor(runs["a"] / "extractor")
    z = ext.encode_numpy(model.encode_texts(["red red car"]))[0]
    q = c.get("/api/runs/a/query", params={"text": "red red car"}).json()
    assert {x["feature"] for x in q["features"]} == set(np.flatnonzero(z > 0).tolist())
    assert "embedded by fake" in q["source"]
    # an uploaded image: a PNG data URL, decoded, embedded by the model, encoded by the run's extractor
    from PIL import Image

    pixels = (np.random.default_rng(3).random((8, 8, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    q = c.post("/api/runs/a/query", json={"image": url})
    assert q.status_code == 200, q.text
    want = ext.encode_numpy(model.encode_images([pixels.transpose(2, 0, 1) / 255.0]))[0]
    assert {x["feature"] for x in q.json()["features"]} == set(np.flatnonzero(want > 0).tolist())
    assert q.headers["cache-control"] == "no-store"
    assert c.post("/api/runs/a/query", json={"image": "data:text/html;base64,AAAA"}).status_code == 404
    assert c.post("/api/runs/a/query", json={"image": "data:image/png;base64,!!"}).status_code == 404
    assert c.post("/api/runs/a/query", json={}).status_code == 404
    # an image the model cannot take: its error in one line, not a server error
    big = io.BytesIO()
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(big, format="PNG")
    r = c.post(
        "/api/runs/a/query", json={"image": "data:image/png;base64," + base64.b64encode(big.getvalue()).decode()}
    )
    assert r.status_code == 422 and "could not embed" in r.json()["error"]
    r = client([runs["a"]]).post("/api/runs/a/query", json={"text": "red car"})
    assert r.status_code == 404 and "--model" in r.json()["error"]


def test_compare_route(runs):
    c = client([runs["a"], runs["b"], runs["other"]])
    doc = c.get("/api/features-compare/a/b", params={"match": "activation"}).json()
    assert doc["summary"]["method"] == "activation" and doc["n_matches"] == doc["summary"]["n_matched"]
    assert set(doc["a"]["shares"]) == {"vision", "language", "cross-modal"}
    assert doc["a"]["null_shares"] and doc["a"]["share_ci"]
    assert c.get("/api/features-compare/a/b", params={"match": "decoder"}).json()["summary"]["method"] == "decoder"
    r = c.get("/api/features-compare/a/other", params={"match": "activation"})
    assert r.status_code == 404 and "same pairs" in r.json()["error"]
    assert c.get("/api/features-compare/a/b", params={"match": "words"}).status_code == 422

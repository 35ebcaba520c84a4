"""The read-only API over run directories: contents, consistency with the tables, safety."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from modalens.app.server import create_app, serve
from modalens.runs import RunError, read_run

from .fixtures import write_interaction_run

BASE = "http://127.0.0.1"  # the server answers loopback host names only


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {
        "a": write_interaction_run(root / "model-a", 300, model_seed=0, model_name="late-fusion"),
        "b": write_interaction_run(root / "model-b", 300, model_seed=1, model_name="early-fusion"),
        "noproj": write_interaction_run(root / "noproj", 120, with_projection=False),
    }


@pytest.fixture(scope="module")
def client(runs: dict[str, Path]) -> TestClient:
    return TestClient(create_app([runs["a"], runs["b"], runs["noproj"]]), base_url=BASE)


def test_lists_exactly_the_given_runs(client: TestClient) -> None:
    listed = client.get("/api/runs").json()
    assert [r["id"] for r in listed] == ["model-a", "model-b", "noproj"]
    assert listed[0]["model"] == "late-fusion" and listed[0]["n_instances"] == 300
    assert listed[0]["modalities"] == ["text", "audio", "vision"]


def test_instances_match_tables(client: TestClient, runs: dict[str, Path]) -> None:
    doc = client.get("/api/runs/model-a/instances").json()
    run = read_run(runs["a"])
    inst = run.table("instances")
    assert doc["n"] == 300
    np.testing.assert_allclose(doc["columns"]["prediction"], inst["prediction"])
    ms = run.table("modality_shapley")
    text = ms[ms["modality"] == "text"].sort_values("instance")["value"].to_numpy()
    np.testing.assert_allclose(doc["shapley"]["text"], text)
    proj = run.table("projection").sort_values("instance")
    np.testing.assert_allclose(doc["x"], proj["x"], rtol=1e-6)
    assert doc["projection_method"] == "pca"
    # efficiency, the known answer of the glass-box game: base + sum of Shapley values = prediction
    total = np.array(doc["columns"]["base_value"]) + sum(np.array(doc["shapley"][m]) for m in doc["modalities"])
    np.testing.assert_allclose(total, doc["columns"]["prediction"], atol=1e-9)


def test_projection_fallback_when_run_has_none(client: TestClient) -> None:
    doc = client.get("/api/runs/noproj/instances").json()
    assert doc["projection_method"].startswith("pca")
    xy = np.array([doc["x"], doc["y"]]).T
    assert xy.shape == (120, 2) and np.isfinite(xy).all()
    assert np.mean(np.sum(xy**2, axis=1)) == pytest.approx(2.0, rel=1e-4)


def test_instance_detail(client: TestClient, runs: dict[str, Path]) -> None:
    d = client.get("/api/runs/model-a/instances/5").json()
    run = read_run(runs["a"])
    row = run.table("instances").iloc[5]
    assert d["row"]["id"] == row["id"]
    phi = {r["modality"]: r["value"] for r in d["modality_shapley"]}
    # word attributions split the text Shapley value
    assert sum(w["value"] for w in d["words"]["text"]) == pytest.approx(phi["text"], abs=1e-6)
    audio = [t for t in d["tracks"] if t["modality"] == "audio"]
    assert {t["feature"] for t in audio} == {"F0", "VUV", "NAQ", "H1H2"}
    assert sum(sum(t["attribution"]) for t in audio) == pytest.approx(phi["audio"], abs=1e-6)  # float32 split
    # raw values come from dataset.npz
    from modalens.data.native import load_dataset

    ds = load_dataset(runs["a"] / "dataset.npz")
    f0 = next(t for t in audio if t["feature"] == "F0")
    np.testing.assert_allclose(f0["values"], ds["audio"].values[5, f0["positions"], 0], rtol=1e-6)
    assert len(d["coalitions"]) == 8 and len(d["interactions"]) == 3
    assert {m["key"] for m in d["media"]} == {"face", "speech"}
    assert d["warnings"] == []


def test_instance_out_of_range(client: TestClient) -> None:
    r = client.get("/api/runs/model-a/instances/300")
    assert r.status_code == 404 and "0..299" in r.json()["error"]


def test_templates_members(client: TestClient, runs: dict[str, Path]) -> None:
    doc = client.get("/api/runs/model-a/templates").json()["templates"]
    run = read_run(runs["a"])
    assert len(doc) == len(run.table("templates"))
    for t in doc[:10]:
        assert len(t["members"]) == t["count"]
        assert t["polarity"] in ("positive", "negative")


def test_media_and_path_traversal(client: TestClient, runs: dict[str, Path]) -> None:
    d = client.get("/api/runs/model-a/instances/0").json()
    face = next(m for m in d["media"] if m["key"] == "face")
    r = client.get(f"/api/runs/model-a/media/face/{face['file']}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content.startswith(b"\x89PNG")
    secret = runs["a"].parent / "secret.txt"
    secret.write_text("do not serve")
    for bad in [
        "/api/runs/model-a/media/face/..%2F..%2Fmanifest.json",
        "/api/runs/model-a/media/face/%2E%2E%2F%2E%2E%2F..%2Fsecret.txt",
        "/api/runs/model-a/media/face/..",
        "/api/runs/model-a/media/..%2F..%2F/manifest.json",
        "/api/runs/model-a/media/face/%2Fetc%2Fpasswd",
        "/api/runs/..%2Fmodel-b/instances",
        "/api/runs/model-a/tables/..%2F..%2Fsecret",
        "/assets/..%2F..%2F..%2Fsecret.txt",
        "/../secret.txt",
    ]:
        r = client.get(bad)
        assert r.status_code in (404, 400), bad
        assert b"do not serve" not in r.content and b"root:" not in r.content


def test_media_symlink_leaving_the_run_is_refused(tmp_path: Path) -> None:
    run = write_interaction_run(tmp_path / "run", 30)
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"\x89PNG outside")
    os.symlink(outside, run / "media" / "face" / "link.png")
    c = TestClient(create_app([run]), base_url=BASE)
    assert c.get("/api/runs/run/media/face/link.png").status_code == 404


def test_read_only(client: TestClient) -> None:
    for method in ("post", "put", "delete", "patch"):
        r = getattr(client, method)("/api/runs/model-a")
        assert r.status_code in (404, 405)


def test_tables_json_and_arrow(client: TestClient, runs: dict[str, Path]) -> None:
    run = read_run(runs["a"])
    r = client.get("/api/runs/model-a/tables/feature_importance")
    assert r.json()["rows"] == len(run.table("feature_importance"))
    r = client.get("/api/runs/model-a/tables/feature_attributions?format=arrow")
    assert r.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(io.BytesIO(r.content)).read_all().to_pandas()
    expected = run.table("feature_attributions")
    assert len(table) == len(expected)
    np.testing.assert_allclose(table["value"], expected["value"])
    assert client.get("/api/runs/model-a/tables/nope").status_code == 404


def test_json_row_limit(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import modalens.app.server as server

    monkeypatch.setattr(server, "JSON_ROW_LIMIT", 10)
    r = client.get("/api/runs/model-a/tables/instances")
    assert r.status_code == 413 and "format=arrow" in r.json()["error"]


def test_compare(client: TestClient, runs: dict[str, Path]) -> None:
    doc = client.get("/api/compare/model-a/model-b").json()
    pa_ = read_run(runs["a"]).table("instances")["prediction"].to_numpy()
    pb_ = read_run(runs["b"]).table("instances")["prediction"].to_numpy()
    assert doc["n_matched"] == 300
    assert doc["n_disagree"] == int(np.sum(np.sign(pa_) != np.sign(pb_)))
    np.testing.assert_allclose(doc["columns"]["difference"], pb_ - pa_)
    assert set(doc["shapley"]) == {"a", "b"}
    # noproj explains other instances (seed 0, N=120 -> ids overlap the first 120) -- matched by id
    assert client.get("/api/compare/model-a/noproj").json()["n_matched"] == 120


def test_compare_refuses_disjoint_runs(tmp_path: Path) -> None:
    a = write_interaction_run(tmp_path / "a", 20)
    b = write_interaction_run(tmp_path / "b", 20)
    inst = read_run(b).table("instances")
    inst["id"] = "other-" + inst["id"]
    manifest = json.loads((b / "manifest.json").read_text())
    inst.to_parquet(b / manifest["tables"]["instances"]["file"], index=False)
    r = TestClient(create_app([a, b]), base_url=BASE).get("/api/compare/a/b")
    assert r.status_code == 404 and "same dataset" in r.json()["error"]


def test_openapi_and_bundle(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert "/api/runs/{run_id}/instances/{index}" in spec["paths"]
    assert "InstanceDetail" in spec["components"]["schemas"]
    index = client.get("/")
    assert index.status_code == 200 and '<div id="root">' in index.text


def test_bad_run_dirs_are_named(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="no manifest.json"):
        create_app([tmp_path])
    with pytest.raises(RunError, match="at least one"):
        create_app([])


def test_duplicate_names_get_distinct_ids(tmp_path: Path) -> None:
    a = write_interaction_run(tmp_path / "x" / "run", 10)
    b = write_interaction_run(tmp_path / "y" / "run", 10)
    ids = [r["id"] for r in TestClient(create_app([a, b]), base_url=BASE).get("/api/runs").json()]
    assert ids == ["run", "run-2"]


def test_serve_binds_localhost_by_default() -> None:
    import inspect

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"


def test_dataset_npz_missing_gives_warning_not_failure(tmp_path: Path) -> None:
    run = write_interaction_run(tmp_path / "r", 15)
    (run / "dataset.npz").unlink()
    d = TestClient(create_app([run]), base_url=BASE).get("/api/runs/r/instances/2").json()
    assert d["warnings"] and "dataset.npz" in d["warnings"][0]
    assert all(t["values"] is None for t in d["tracks"])

"""Slices saved in the user's folder (never in the run), the export of a selection, the text column."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from modalens.app.server import create_app
from modalens.app.slice_routes import run_key, slices_home

from .fixtures import write_interaction_run

BASE = "http://127.0.0.1"
FILTER = {
    "conditions": [
        {"column": "label", "op": "range", "min": 1, "max": None},
        {"column": "interaction_type", "op": "in", "values": ["conflict", None]},
        {"column": "text", "op": "contains", "text": "great"},
        {"column": "id", "op": "prefix", "text": "u"},
    ]
}


def tree_digest(path: Path) -> str:
    """Names, sizes and contents of every file under a folder: any write into the run changes it."""
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("slice-runs")
    return {
        "a": write_interaction_run(root / "model-a", 120, model_seed=0),
        "b": write_interaction_run(root / "model-b", 120, model_seed=1, model_name="early-fusion"),
    }


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODALENS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def client(runs: dict[str, Path], home: Path) -> TestClient:
    return TestClient(create_app([runs["a"], runs["b"]]), base_url=BASE)


def test_save_list_replace_delete_in_the_user_folder_only(
    client: TestClient, runs: dict[str, Path], home: Path
) -> None:
    before = tree_digest(runs["a"])
    assert client.get("/api/runs/model-a/slices").json() == {"slices": []}
    r = client.put("/api/runs/model-a/slices/positive conflicts", json={"filter": FILTER})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "positive conflicts"
    assert client.put("/api/runs/model-a/slices/small (v2)", json={"filter": {"conditions": []}}).status_code == 200
    listed = client.get("/api/runs/model-a/slices").json()["slices"]
    assert [s["name"] for s in listed] == ["positive conflicts", "small (v2)"]
    assert listed[0]["filter"] == FILTER
    assert listed[0]["created"].endswith("+00:00")
    # one file per run, named by the hash of its identity, in $MODALENS_HOME/slices; the run is untouched
    manifest = json.loads((runs["a"] / "manifest.json").read_text())
    files = list((home / "slices").iterdir())
    assert [f.name for f in files] == [f"{run_key(manifest['created'], 'model-a')}.json"]
    assert json.loads(files[0].read_text())["run"] == {"name": "model-a", "created": manifest["created"]}
    assert tree_digest(runs["a"]) == before
    assert not list(home.rglob("*.tmp"))  # atomic writes leave no temporary file behind
    # the other run has its own slices
    assert client.get("/api/runs/model-b/slices").json() == {"slices": []}
    # replacing keeps one slice of a name, at the end
    new = {"conditions": [{"column": "abs_error", "op": "range", "min": None, "max": 0.5}]}
    assert client.put("/api/runs/model-a/slices/positive conflicts", json={"filter": new}).status_code == 200
    listed = client.get("/api/runs/model-a/slices").json()["slices"]
    assert [s["name"] for s in listed] == ["small (v2)", "positive conflicts"]
    assert listed[1]["filter"] == new
    # delete, then delete again: 404 saying which
    assert client.delete("/api/runs/model-a/slices/small (v2)").status_code == 200
    r = client.delete("/api/runs/model-a/slices/small (v2)")
    assert r.status_code == 404 and "no slice 'small (v2)'" in r.json()["error"]
    assert [s["name"] for s in client.get("/api/runs/model-a/slices").json()["slices"]] == ["positive conflicts"]


def test_slices_survive_a_restart_and_follow_a_copied_run(runs: dict[str, Path], home: Path, tmp_path: Path) -> None:
    first = TestClient(create_app([runs["a"]]), base_url=BASE)
    assert first.put("/api/runs/model-a/slices/kept", json={"filter": FILTER}).status_code == 200
    second = TestClient(create_app([runs["a"]]), base_url=BASE)
    assert [s["name"] for s in second.get("/api/runs/model-a/slices").json()["slices"]] == ["kept"]
    copy = shutil.copytree(runs["a"], tmp_path / "elsewhere" / "model-a")
    third = TestClient(create_app([copy]), base_url=BASE)
    assert [s["name"] for s in third.get("/api/runs/model-a/slices").json()["slices"]] == ["kept"]


def test_default_folder_is_under_the_home_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MODALENS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert slices_home() == (tmp_path / ".modalens" / "slices").resolve()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("x" * 81, "1 to 80 characters"),
        (" lead", "leading or trailing space"),
        ("a/b", None),  # a slash never reaches the route as a name: 404 or 422, never a file
        (".hidden", "use letters"),
        ("bad%09name", "use letters"),  # a tab, percent-encoded
        ("semi;colon", "use letters"),
        ("%E2%80%AEevil", "use letters"),  # a right-to-left override
        ("caf%C3%A9 (n%C2%BA2)", None),  # Unicode letters are fine: checked below
    ],
)
def test_bad_names_are_refused(client: TestClient, home: Path, name: str, why: str | None) -> None:
    r = client.put(f"/api/runs/model-a/slices/{name}", json={"filter": FILTER})
    if name.startswith("caf"):
        assert r.status_code == 200 and r.json()["name"] == "café (nº2)"
        return
    assert r.status_code in (404, 422)
    if why:
        assert why in r.json()["error"]
    assert not (home / "slices").exists() or not list((home / "slices").iterdir())


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"filter": {"nope": 1}}, "a filter is"),
        ({"filter": {"conditions": [{"column": "../x", "op": "in", "values": []}]}}, "column must be"),
        ({"filter": {"conditions": [{"column": "label", "op": "like", "text": "a"}]}}, "op must be"),
        ({"filter": {"conditions": [{"column": "label", "op": "range", "min": "2", "max": None}]}}, "numbers or null"),
        ({"filter": {"conditions": [{"column": "label", "op": "range", "min": True, "max": None}]}}, "numbers or null"),
        ({"filter": {"conditions": [{"column": "t", "op": "in", "values": [1]}]}}, "strings"),
        ({"filter": {"conditions": [{"column": "t", "op": "contains", "text": "x" * 201}]}}, "at most 200"),
        ({"filter": {"conditions": [{"column": "t", "op": "contains", "text": "x"}] * 33}}, "at most 32"),
        ({"filter": {"conditions": [{"column": "t", "op": "in", "values": ["v" * 150] * 150}]}}, "bytes of JSON"),
        ({"nofilter": 1}, "filter"),
    ],
)
def test_bad_filters_are_refused_with_a_reason(client: TestClient, body: dict, why: str) -> None:
    r = client.put("/api/runs/model-a/slices/ok", json=body)
    assert r.status_code == 422
    assert why in r.json()["error"]


def test_unknown_run_and_a_home_inside_a_run(client: TestClient, runs: dict[str, Path], monkeypatch) -> None:  # noqa: ANN001
    r = client.get("/api/runs/nope/slices")
    assert r.status_code == 404 and "no run 'nope'" in r.json()["error"]
    monkeypatch.setenv("MODALENS_HOME", str(runs["a"] / "inside"))
    r = client.put("/api/runs/model-a/slices/x", json={"filter": FILTER})
    assert r.status_code == 409 and "never written into a run" in r.json()["error"]
    assert not (runs["a"] / "inside").exists()


def test_a_corrupt_slices_file_is_reported_not_overwritten(
    client: TestClient, home: Path, runs: dict[str, Path]
) -> None:
    created = json.loads((runs["a"] / "manifest.json").read_text())["created"]
    path = home / "slices" / f"{run_key(created, 'model-a')}.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    r = client.get("/api/runs/model-a/slices")
    assert r.status_code == 500 and "unreadable" in r.json()["error"]
    assert client.put("/api/runs/model-a/slices/x", json={"filter": FILTER}).status_code == 500
    assert path.read_text() == "{not json"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_selection(client: TestClient, runs: dict[str, Path], fmt: str) -> None:
    picked = [17, 3, 99, 3, 0]
    r = client.post(f"/api/runs/model-a/selection?format={fmt}", json={"indices": picked})
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == f'attachment; filename="model-a-selection-4.{fmt}"'
    got = pd.read_csv(io.StringIO(r.text)) if fmt == "csv" else pd.read_parquet(io.BytesIO(r.content))
    expected = pd.read_parquet(runs["a"] / "instances.parquet").set_index("instance").loc[[0, 3, 17, 99]]
    assert got["instance"].tolist() == [0, 3, 17, 99]
    assert got["id"].tolist() == expected["id"].tolist()
    for m in ("text", "audio", "vision"):
        np.testing.assert_allclose(got[f"shapley_{m}"], expected[f"shapley_{m}"], rtol=1e-12)
    np.testing.assert_allclose(got["prediction"], expected["prediction"], rtol=1e-12)
    assert any(c.startswith("meta_") for c in got.columns) == any(c.startswith("meta_") for c in expected.columns)


def test_export_refuses_bad_selections(client: TestClient) -> None:
    r = client.post("/api/runs/model-a/selection", json={"indices": [0, 120]})
    assert r.status_code == 422 and "instance 120 is not in this run (0..119)" in r.json()["error"]
    r = client.post("/api/runs/model-a/selection?format=xlsx", json={"indices": [0]})
    assert r.status_code == 422
    r = client.post("/api/runs/model-a/selection", json={"indices": ["a"]})
    assert r.status_code == 422
    # a form post (what another site's page could send without a preflight) is not read as JSON
    r = client.post("/api/runs/model-a/selection", content=b'{"indices": [0]}', headers={"content-type": "text/plain"})
    assert r.status_code == 422
    empty = client.post("/api/runs/model-a/selection", json={"indices": []})
    assert empty.status_code == 200 and empty.text.splitlines()[0].startswith("instance,")


def test_text_column(client: TestClient, runs: dict[str, Path]) -> None:
    doc = client.get("/api/runs/model-a/text").json()
    expected = pd.read_parquet(runs["a"] / "instances.parquet").sort_values("instance")["text"].tolist()
    assert doc["text"] == expected and len(expected) == 120
    assert os.path.exists(runs["a"] / "manifest.json")

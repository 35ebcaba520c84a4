"""The app over a run written by the real explanation engine (``modalens.interactions.explain`` + ``.save``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import modalens.data.synthetic as synthetic
import modalens.models.glass_box as glass_box
from modalens.app.server import create_app
from modalens.interactions import api as explain_mod
from modalens.runs import read_run


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from modalens.models import Masker

    dataset = synthetic.make_synthetic(160).split("test")
    predictor = glass_box.glass_box_model()
    predictor.masker = Masker("mean")
    explanation = explain_mod.explain(predictor, dataset, projection="pca")
    return explanation.save(tmp_path_factory.mktemp("real") / "glass-box")


def test_real_run_is_served(real_run: Path) -> None:
    client = TestClient(create_app([real_run]), base_url="http://127.0.0.1")
    run = read_run(real_run)
    doc = client.get("/api/runs/glass-box/instances").json()
    assert doc["n"] == len(run.table("instances"))
    assert doc["projection_method"] == "pca"
    # efficiency of the engine's Shapley values, seen through the API
    total = np.array(doc["columns"]["base_value"]) + sum(np.array(doc["shapley"][m]) for m in doc["modalities"])
    np.testing.assert_allclose(total, doc["columns"]["prediction"], atol=1e-4)
    detail = client.get("/api/runs/glass-box/instances/0").json()
    assert detail["warnings"] == []
    assert "text" in detail["words"] and all(isinstance(w["token"], str) for w in detail["words"]["text"])
    fa = run.table("feature_attributions")
    whole = fa[(fa["instance"] == 0) & (fa["position"] < 0)]
    totals = {(t["modality"], t["feature"]): t["total"] for t in detail["tracks"] if t["total"] is not None}
    assert len(totals) == len(whole)
    for row in whole.itertuples():
        assert totals[(row.modality, row.feature)] == pytest.approx(row.value)
    # raw values come from the run's dataset.npz for every (modality, feature) track
    assert all(t["values"] is not None for t in detail["tracks"] if t["feature"] != "*")
    templates = client.get("/api/runs/glass-box/templates").json()["templates"]
    assert templates and all(len(t["members"]) == t["count"] for t in templates)

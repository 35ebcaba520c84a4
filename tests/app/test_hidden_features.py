"""An interaction run served beside a feature run of the model's hidden layer: the instance view's link (by id)."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from modalens.app.server import create_app
from modalens.features.model_study import run_model_feature_study

from .fixtures import write_interaction_run

BASE = "http://127.0.0.1"


def test_feature_run_of_a_hidden_layer_is_served_beside_the_interaction_run(tmp_path) -> None:
    inter = write_interaction_run(tmp_path / "inter", n=40)
    from modalens.runs import read_run

    ids = [str(i) for i in read_run(inter).table("instances")["id"]]
    rng = np.random.default_rng(0)
    full = rng.normal(size=(40, 6)).astype(np.float32)
    present = {m: full * w for m, w in (("text", 0.6), ("audio", 0.3), ("vision", 0.1))}
    w = rng.normal(size=6).astype(np.float32)
    study = run_model_feature_study(
        full,
        present,
        head=lambda h: h @ __import__("torch").from_numpy(w),
        ids=np.array(ids),
        d_sae=12,
        extractor_options={"k": 3, "epochs": 3},
        n_boot=20,
        n_null=2,
        model_info={"name": "toy", "layer": "hidden"},
    )
    feat = study.save(tmp_path / "feat")
    client = TestClient(create_app([inter, feat]), base_url=BASE)
    runs = {r["kind"]: r for r in client.get("/api/runs").json()}
    assert "instance_features" in runs["features"]["tables"]
    table = client.get(f"/api/runs/{runs['features']['id']}/tables/instance_features").json()
    assert set(table["columns"]["id"]) <= set(ids) and table["rows"] > 0
    inter_ids = client.get(f"/api/runs/{runs['interaction']['id']}/instances").json()["columns"]["id"]
    assert set(table["columns"]["id"]) & set(map(str, inter_ids))
    j = int(table["columns"]["feature"][0])
    card = client.get(f"/api/runs/{runs['features']['id']}/features/{j}").json()
    assert {"dominance_text", "dominance_audio", "dominance_vision"} <= set(card["row"])
    assert client.get(f"/api/runs/{runs['features']['id']}/features").status_code == 200

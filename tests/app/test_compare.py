"""Comparing runs: transition matrices, metrics and disagreement with known answers; the N-run route."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from modalens.app.compare import compare, compare_many, interaction_labels, metrics, transition_matrix
from modalens.app.data import NotFound, RunSource
from modalens.app.server import create_app
from modalens.runs import read_run

from .fixtures import write_interaction_run

N = 12


def _set_instances(run: Path, **columns: list) -> None:
    """Overwrite columns of a run's instance table (the rest of the run stays as the fixture wrote it)."""
    inst = read_run(run).table("instances")
    for name, values in columns.items():
        inst[name] = values
    manifest = json.loads((run / "manifest.json").read_text())
    inst.to_parquet(run / manifest["tables"]["instances"]["file"], index=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare-runs")
    out = {
        "a": write_interaction_run(root / "a", N, model_seed=0, model_name="late-fusion", media_count=0),
        "b": write_interaction_run(root / "b", N, model_seed=1, model_name="early-fusion", media_count=0),
        "c": write_interaction_run(root / "c", N, model_seed=2, model_name="mult", media_count=0),
        "other": write_interaction_run(root / "other", N, seed=5, media_count=0),
    }
    label = [1.0, -1.0, 2.0, -2.0, 0.0, 1.5, -0.5, 0.5, 1.0, -1.0, 2.5, -2.5]
    # a: perfect; b: every sign flipped on instances 0-3; c: a constant offset of +0.25
    _set_instances(
        out["a"],
        label=label,
        prediction=label,
        interaction_type=["dominance"] * 6 + ["conflict"] * 3 + ["complement"] * 3,
        dominant_modality=["text", "text", "text", "audio", "audio", "vision", None, None, None, None, None, None],
    )
    pb = [-v if i < 4 else v for i, v in enumerate(label)]
    _set_instances(
        out["b"],
        label=label,
        prediction=pb,
        interaction_type=["conflict", "conflict", "dominance", "dominance"] + ["complement"] * 8,
        dominant_modality=[None, None, "text", "audio"] + [None] * 8,
    )
    _set_instances(out["c"], label=label, prediction=[v + 0.25 for v in label])
    _set_instances(out["other"], id=[f"other-{i}" for i in range(N)])  # another dataset: no id in common
    return out


def _source(path: Path) -> RunSource:
    return RunSource.open(path.name, path)


def test_interaction_labels_join_type_and_dominant_modality() -> None:
    kinds = ["dominance", "conflict", None, "dominance"]
    frame = pd.DataFrame({"interaction_type": kinds, "dominant_modality": ["text", None, None, ""]})
    assert interaction_labels(frame).tolist() == ["dominance:text", "conflict", "—", "dominance"]
    assert interaction_labels(pd.DataFrame({"x": [1, 2]})).tolist() == ["—", "—"]


def test_transition_matrix_known_counts() -> None:
    a = ["dominance:text", "dominance:text", "conflict", "complement", "dominance:audio"]
    b = ["conflict", "dominance:text", "conflict", "conflict", "complement"]
    t = transition_matrix(a, b)
    assert t["rows"] == ["dominance:audio", "dominance:text", "complement", "conflict"]
    assert t["cols"] == ["dominance:text", "complement", "conflict"]
    assert t["counts"] == [[0, 1, 0], [1, 0, 1], [0, 0, 1], [0, 0, 1]]
    with pytest.raises(ValueError, match="labels"):
        transition_matrix(["x"], ["x", "y"])


def test_metrics_known_answers() -> None:
    y = np.array([1.0, -1.0, 2.0, 0.0, np.nan])
    p = np.array([1.5, 1.0, 2.0, -3.0, 9.0])
    m = metrics(p, y, "regression")
    assert m["n"] == 4
    assert m["mae"] == pytest.approx((0.5 + 2.0 + 0.0 + 3.0) / 4)
    assert m["acc2"] == pytest.approx(2 / 3)  # the zero label is left out; instance 1 has the wrong sign
    assert m["r"] == pytest.approx(np.corrcoef(p[:4], y[:4])[0, 1])
    c = metrics(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), "classification")
    assert c == {"n": 4, "accuracy": 0.75}


def test_compare_many_three_runs(runs: dict[str, Path]) -> None:
    a, b, c = (_source(runs[k]) for k in "abc")
    doc = compare_many([a, b, c])
    assert [r["id"] for r in doc["runs"]] == ["a", "b", "c"]
    assert [r["model"] for r in doc["runs"]] == ["late-fusion", "early-fusion", "mult"]
    assert doc["n_matched"] == N
    assert doc["metrics"]["a"]["mae"] == pytest.approx(0.0)
    assert doc["metrics"]["a"]["acc2"] == 1.0
    assert doc["metrics"]["b"]["acc2"] == pytest.approx(7 / 11)  # 4 flipped signs, the 0 label left out
    assert doc["metrics"]["c"]["mae"] == pytest.approx(0.25)
    # disagreement (sign): a vs b on instances 0-3; a vs c where the +0.25 offset moves a sign: -0.0 -> 0.25
    counts = doc["disagreement"]["counts"]
    assert counts[0][1] == counts[1][0] == 4
    assert counts[0][2] == 1  # label 0 -> 0.25 changes sign(0) = 0 to 1
    assert doc["disagreement"]["fraction"][0][1] == pytest.approx(4 / N)
    ab = next(t for t in doc["transitions"] if (t["a"], t["b"]) == ("a", "b"))
    assert ab["rows"] == ["dominance:audio", "dominance:text", "dominance:vision", "complement", "conflict"]
    assert ab["cols"] == ["dominance:audio", "dominance:text", "complement", "conflict"]
    cell = dict(zip(ab["rows"], ab["counts"], strict=True))
    assert cell["dominance:text"] == [0, 1, 0, 2]  # instances 0, 1 -> conflict; 2 stays dominance:text
    assert cell["dominance:audio"] == [1, 0, 1, 0]  # instance 3 -> dominance:audio, 4 -> complement
    assert cell["dominance:vision"] == [0, 0, 1, 0]
    assert cell["conflict"] == [0, 0, 3, 0]
    assert cell["complement"] == [0, 0, 3, 0]
    assert sum(map(sum, ab["counts"])) == N
    assert len(doc["transitions"]) == 3  # one per pair
    # the per-run label arrays agree with the counts
    pairs = list(zip(doc["types"]["a"], doc["types"]["b"], strict=True))
    assert pairs.count(("dominance:text", "conflict")) == 2
    # importance: mean |Shapley| of the matched rows, from the run's modality Shapley values
    sh = a.shapley_matrix()
    assert doc["importance"]["a"][a.modalities[0]] == pytest.approx(np.abs(sh[:, 0]).mean())


def test_compare_many_matches_by_id_in_any_order(runs: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    shuffled = tmp_path / "shuffled"
    shutil.copytree(runs["b"], shuffled)
    inst = read_run(shuffled).table("instances")
    ids = inst["id"].tolist()
    _set_instances(shuffled, id=ids[::-1], prediction=inst["prediction"].tolist()[::-1])
    doc = compare_many([_source(runs["b"]), _source(shuffled)])
    assert doc["disagreement"]["counts"][0][1] == 0  # same id, same prediction
    assert doc["instances"]["shuffled"] == list(range(N))[::-1]


def test_compare_many_refuses_bad_input(runs: dict[str, Path]) -> None:
    a = _source(runs["a"])
    with pytest.raises(ValueError, match="at least two"):
        compare_many([a])
    with pytest.raises(ValueError, match="twice"):
        compare_many([a, _source(runs["a"])])
    with pytest.raises(NotFound, match="share no instance ids"):
        compare_many([a, _source(runs["other"])])


def test_two_run_compare_still_works(runs: dict[str, Path]) -> None:
    doc = compare(_source(runs["a"]), _source(runs["b"]))
    assert doc["n_matched"] == N and doc["n_disagree"] == 4


def test_compare_routes(runs: dict[str, Path]) -> None:
    client = TestClient(create_app([runs["a"], runs["b"], runs["c"], runs["other"]]), base_url="http://127.0.0.1")
    many = client.get("/api/compare?runs=c,a,b")
    assert many.status_code == 200, many.text
    doc = many.json()
    assert [r["id"] for r in doc["runs"]] == ["c", "a", "b"]
    assert len(doc["transitions"]) == 3
    assert client.get("/api/compare?runs=c,a,b").headers["etag"] == many.headers["etag"]
    assert client.get("/api/compare/a/b").json()["n_disagree"] == 4
    assert client.get("/api/compare?runs=a").status_code == 422
    assert client.get("/api/compare?runs=a,a").status_code == 422
    missing = client.get("/api/compare?runs=a,nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    assert "share no instance ids" in client.get("/api/compare?runs=a,other").json()["error"]

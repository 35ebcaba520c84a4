"""Global feature importance (``/api/runs/{run}/feature-importance``): known answers on hand-built tables."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from modalens.app.data import RunSource
from modalens.app.export import export_documents
from modalens.app.importance import importance
from modalens.app.server import create_app

from .importance_fixtures import rows, write_run_with

BASE = "http://127.0.0.1"

# 4 instances. Words: "great" twice in instance 0 ("Great", "great") and once in 1 ("great "): 3 occurrences in 2
# instances; "rare" once (the largest |value|); an empty token (not a word). Audio F0 and vision Joy are named
# features (position -1); an audio step without a token and an audio cell (position >= 0, named) are not counted.
TABLE = rows(
    (0, "text", 0, "*", 1.0, "Great"),
    (0, "text", 1, "*", -3.0, "great"),
    (1, "text", 0, "*", 2.0, "great "),
    (1, "text", 1, "*", 0.5, "movie"),
    (2, "text", 0, "*", 4.0, "rare"),
    (3, "text", 0, "*", 9.0, ""),
    (0, "audio", -1, "F0", 0.2, None),
    (1, "audio", -1, "F0", -0.4, None),
    (2, "audio", -1, "F0", 0.6, None),
    (3, "audio", -1, "F0", 0.0, None),
    (0, "audio", 0, "*", 7.0, None),
    (0, "audio", 0, "F0", 5.0, None),
    (0, "vision", -1, "Joy", 1.0, None),
    (1, "vision", -1, "Joy", -1.0, None),
    (2, "vision", -1, "Joy", 1.0, None),
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("importance")
    words = pd.DataFrame(
        {
            "instance": [0, 0, 1],
            "modality": ["text", "text", "text"],
            "word": [0, 1, 0],
            "text": ["Good", "film", "good"],
            "value": [1.5, -0.25, 0.5],
            "pieces": [2, 1, 1],
            "position": [0, 2, 0],
        }
    )
    return {
        "hand": write_run_with(root / "hand", 4, feature_attributions=TABLE),
        "words": write_run_with(root / "words", 4, feature_attributions=TABLE, word_attributions=words),
        "none": write_run_with(root / "none", 4, feature_attributions=None),
    }


@pytest.fixture(scope="module")
def client(runs: dict[str, Path]) -> TestClient:
    return TestClient(create_app(list(runs.values())), base_url=BASE)


def by_name(doc: dict) -> dict[tuple[str, str], dict]:
    return {(f["modality"], f["feature"]): f for f in doc["features"]}


def test_all_instances_known_answers(client: TestClient) -> None:
    doc = client.get("/api/runs/hand/feature-importance").json()
    assert doc["n_instances"] == 4
    got = by_name(doc)
    # words are lower-cased and stripped; support counts instances, count counts occurrences
    assert got["text", "great"] == {
        "modality": "text", "feature": "great", "kind": "word", "mean_abs": 2.0, "mean": 0.0, "support": 2, "count": 3
    }  # fmt: skip
    assert got["text", "rare"]["support"] == 1 and got["text", "rare"]["mean_abs"] == 4.0
    assert got["audio", "F0"] == {
        "modality": "audio", "feature": "F0", "kind": "feature", "mean_abs": 0.3, "mean": 0.1, "support": 4, "count": 4
    }  # fmt: skip
    # instance 3 has no Joy row: support 3
    assert got["vision", "Joy"]["support"] == 3 and got["vision", "Joy"]["mean"] == pytest.approx(1 / 3, abs=1e-6)
    # no empty word, no step without a word, no per-step cell of a named feature
    assert set(got) == {("text", "great"), ("text", "rare"), ("text", "movie"), ("audio", "F0"), ("vision", "Joy")}
    # most important first
    assert [f["feature"] for f in doc["features"]] == ["rare", "great", "Joy", "movie", "F0"]


def test_min_support_leaves_out_rare_items(client: TestClient) -> None:
    doc = client.get("/api/runs/hand/feature-importance?min_support=2").json()
    assert [f["feature"] for f in doc["features"]] == ["great", "Joy", "F0"]
    assert client.get("/api/runs/hand/feature-importance?min_support=0").status_code == 422


def test_selection(client: TestClient) -> None:
    res = client.post("/api/runs/hand/feature-importance", json={"indices": [1, 2]})
    assert res.status_code == 200
    doc = res.json()
    assert doc["n_instances"] == 2
    got = by_name(doc)
    assert got["text", "great"] | {} == {**got["text", "great"], "mean_abs": 2.0, "mean": 2.0, "support": 1, "count": 1}
    assert got["audio", "F0"]["mean_abs"] == 0.5 and got["audio", "F0"]["mean"] == pytest.approx(0.1)
    assert got["vision", "Joy"]["mean"] == 0.0 and got["vision", "Joy"]["support"] == 2
    assert set(got) == {("text", "great"), ("text", "rare"), ("text", "movie"), ("audio", "F0"), ("vision", "Joy")}
    # instance 0 alone: "great" twice, F0, Joy; no "rare" nor "movie"
    only0 = by_name(client.post("/api/runs/hand/feature-importance", json={"indices": [0]}).json())
    assert set(only0) == {("text", "great"), ("audio", "F0"), ("vision", "Joy")}
    assert only0["text", "great"]["count"] == 2 and only0["text", "great"]["support"] == 1
    # an empty selection has nothing; a POST without indices is every instance
    assert client.post("/api/runs/hand/feature-importance", json={"indices": []}).json()["features"] == []
    every = client.post("/api/runs/hand/feature-importance", json={})
    assert every.json() == client.get("/api/runs/hand/feature-importance").json()


def test_members_of_a_word_or_feature(client: TestClient) -> None:
    ask = {"modality": "text", "feature": "great", "kind": "word"}
    assert client.post("/api/runs/hand/feature-importance", json={"members_of": ask}).json()["members"] == [0, 1]
    within = client.post("/api/runs/hand/feature-importance", json={"indices": [1, 2], "members_of": ask}).json()
    assert within["members"] == [1]
    f0 = {"modality": "audio", "feature": "F0", "kind": "feature"}  # instance 3's F0 is exactly 0: no attribution
    assert client.post("/api/runs/hand/feature-importance", json={"members_of": f0}).json()["members"] == [0, 1, 2]


def test_bad_requests_say_why(client: TestClient) -> None:
    res = client.post("/api/runs/hand/feature-importance", json={"indices": [0, 4]})
    assert res.status_code == 422 and "instance 4 is out of range" in res.json()["error"]
    res = client.post("/api/runs/hand/feature-importance", json={"indices": "all"})
    assert res.status_code == 422
    unknown = {"modality": "text", "feature": "nowhere", "kind": "word"}
    res = client.post("/api/runs/hand/feature-importance", json={"members_of": unknown})
    assert res.status_code == 422 and "nowhere" in res.json()["error"]
    res = client.get("/api/runs/none/feature-importance")
    assert res.status_code == 404 and "feature_attributions" in res.json()["error"]


def test_whole_words_replace_pieces_of_token_modalities(client: TestClient) -> None:
    got = by_name(client.get("/api/runs/words/feature-importance").json())
    # the text modality has word_attributions: its words come from there ("good" twice), not from the pieces
    assert {k for k in got if k[0] == "text"} == {("text", "good"), ("text", "film")}
    assert got["text", "good"]["count"] == 2 and got["text", "good"]["support"] == 2
    assert got["text", "good"]["mean_abs"] == 1.0


def test_cached_per_snapshot_and_exported(runs: dict[str, Path]) -> None:
    source = RunSource.open("hand", runs["hand"])
    first = importance(source)
    assert importance(source) == first  # from the snapshot's cache: the same encoded rows
    docs = export_documents([runs["hand"], runs["none"]], max_instances=2)
    assert docs["api/runs/hand/feature-importance"] == first
    assert "api/runs/none/feature-importance" not in docs  # no attributions: the view says "not computed"


def test_fast_on_a_large_run(tmp_path: Path) -> None:
    """50,000 instances x 30 words and 60 named features (4.5 M rows): a selection answers in well under a second."""
    n, words, named = 50_000, 30, 60
    rng = np.random.default_rng(0)
    vocab = np.array([f"w{k}" for k in range(5_000)], dtype=object)
    inst_w = np.repeat(np.arange(n), words)
    inst_f = np.repeat(np.arange(n), named)
    table = pd.concat(
        [
            pd.DataFrame(
                {
                    "instance": inst_w,
                    "modality": "text",
                    "position": np.tile(np.arange(words), n),
                    "feature": "*",
                    "value": rng.normal(size=n * words),
                    "token": vocab[rng.zipf(1.3, n * words) % len(vocab)],
                }
            ),
            pd.DataFrame(
                {
                    "instance": inst_f,
                    "modality": "audio",
                    "position": -1,
                    "feature": np.tile([f"f{k}" for k in range(named)], n),
                    "value": rng.normal(size=n * named),
                    "token": None,
                }
            ),
        ],
        ignore_index=True,
    )
    run = write_run_with(tmp_path / "big", n, feature_attributions=table)
    source = RunSource.open("big", run)
    start = time.perf_counter()
    whole = importance(source)
    prepare_s = time.perf_counter() - start
    selection = rng.choice(n, n // 3, replace=False)
    start = time.perf_counter()
    part = importance(source, selection)
    select_s = time.perf_counter() - start
    print(f"\n50,000 instances, {len(table):,} rows: first document {prepare_s:.2f} s, a selection {select_s:.3f} s")
    assert part["n_instances"] == n // 3 and whole["n_instances"] == n
    f0 = next(f for f in whole["features"] if f["feature"] == "f0")
    expected = table[(table["feature"] == "f0")]["value"].abs().mean()
    assert math.isclose(f0["mean_abs"], expected, rel_tol=1e-5) and f0["support"] == n
    assert select_s < 1.0

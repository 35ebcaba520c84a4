"""The glyph and template-contribution documents: known answers computed independently from the run's files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from modalens.app.glyphs import acoustic_group, compact, emotion_of
from modalens.app.server import create_app
from modalens.data.native import load_dataset

from .fixtures import write_interaction_run
from .glyph_fixtures import write_glyph_run

BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("glyphs")
    return {
        "glyph": write_glyph_run(root / "glyph", 240, seed=3),
        "steps": write_interaction_run(root / "steps", 120, seed=4),
    }


@pytest.fixture(scope="module")
def client(runs: dict[str, Path]) -> TestClient:
    return TestClient(create_app([runs["glyph"], runs["steps"]]), base_url=BASE)


def test_names_map_to_emotions_and_acoustic_groups() -> None:
    assert emotion_of("Joy") == "joy"
    assert emotion_of("Joy Evidence") == "joy"
    assert emotion_of("happiness") == "joy"
    assert emotion_of("Surprise_prob") == "surprise"
    assert emotion_of("AU12") is None
    assert emotion_of("Joystick") is None
    assert emotion_of("Joy of cooking") is None
    assert acoustic_group("F0") == "pitch"
    assert acoustic_group("VUV") == "voicing"
    assert acoustic_group("energy_db") == "energy"
    assert acoustic_group("MCEP_17") == "spectrum"
    assert acoustic_group("HMPDM_3") == "spectrum"
    assert acoustic_group("NAQ") == "voice quality"
    assert acoustic_group("peakSlope") == "voice quality"
    assert acoustic_group("creak") == "voice quality"
    assert acoustic_group("word_duration") == "timing"
    assert acoustic_group("minilm_pc3") is None


def test_face_inputs_are_expression_means_over_valid_steps(client: TestClient, runs: dict[str, Path]) -> None:
    doc = client.get("/api/runs/glyph/glyphs").json()
    ds = load_dataset(runs["glyph"] / "dataset.npz")
    face = doc["face"]
    assert doc["n"] == len(ds) == 240
    assert face["modality"] == "vision"
    assert face["emotions"] == ["joy", "sadness"]  # AU12, AU4, yaw are not emotions
    vision = ds["vision"]
    mask = vision.step_mask()
    for emotion, feature in (("joy", "Joy"), ("sadness", "Sadness")):
        d = vision.feature_names.index(feature)
        expected = [float(vision.values[i, mask[i], d].mean()) for i in range(len(ds))]
        assert np.allclose(face["values"][emotion], expected, rtol=6e-4, atol=1e-9)  # 4 significant digits
        lo, hi = face["range"][emotion]
        assert lo == pytest.approx(np.percentile(expected, 5)) and hi == pytest.approx(np.percentile(expected, 95))
    # the padding (masked steps) really differs from the mean: a mean over all steps would not match
    d = vision.feature_names.index("Joy")
    short = int(np.flatnonzero(mask.sum(1) < mask.shape[1])[0])
    assert face["values"]["joy"][short] != pytest.approx(float(vision.values[short, :, d].mean()))


def test_petals_are_grouped_whole_instance_attributions(client: TestClient, runs: dict[str, Path]) -> None:
    rose = client.get("/api/runs/glyph/glyphs").json()["rose"]
    fa = pd.read_parquet(runs["glyph"] / "feature_attributions.parquet")
    whole = fa[(fa["modality"] == "audio") & (fa["position"] == -1)]
    assert rose["modality"] == "audio" and rose["source"] == "features"
    assert rose["groups"] == ["pitch", "voicing", "voice quality"]
    assert rose["features"] == {"pitch": ["F0"], "voicing": ["VUV"], "voice quality": ["NAQ", "H1H2"]}
    wide = whole.pivot_table(index="instance", columns="feature", values="value").reindex(range(240))
    for group, feats in rose["features"].items():
        assert np.allclose(rose["signed"][group], wide[feats].sum(axis=1), rtol=6e-4, atol=1e-12)
        assert np.allclose(rose["abs"][group], wide[feats].abs().sum(axis=1), rtol=6e-4, atol=1e-12)
    all_abs = np.concatenate([rose["abs"][g] for g in rose["groups"]])
    assert rose["scale"] == pytest.approx(np.percentile(all_abs, 98), rel=1e-3)


def test_compact_keeps_four_significant_digits() -> None:
    assert compact(np.array([0.123456, -98765.4, 1.23456e-7, 0.0, np.nan])) == [0.1235, -98770.0, 1.235e-07, 0.0, None]


def test_without_whole_instance_rows_petals_sum_the_steps(client: TestClient, runs: dict[str, Path]) -> None:
    rose = client.get("/api/runs/steps/glyphs").json()["rose"]
    assert rose["source"] == "steps summed"
    fa = pd.read_parquet(runs["steps"] / "feature_attributions.parquet")
    f0 = fa[(fa["modality"] == "audio") & (fa["feature"] == "F0")].groupby("instance")["value"].sum()
    assert np.allclose(rose["signed"]["pitch"], f0.reindex(range(120)).to_numpy(), rtol=6e-4, atol=1e-12)


def test_runs_without_faces_or_acoustics_get_null_glyphs(tmp_path: Path) -> None:
    # no dataset.npz: no raw expression features, no face; no audio attributions: no rose
    run = write_glyph_run(tmp_path / "plain", 60, seed=1, audio_attributions=False, dataset=False)
    client = TestClient(create_app([run]), base_url=BASE)
    doc = client.get("/api/runs/plain/glyphs")
    assert doc.status_code == 200
    assert doc.json() == {"n": 60, "face": None, "rose": None}


def test_template_contributions_split_the_mean_attribution(client: TestClient, runs: dict[str, Path]) -> None:
    templates = client.get("/api/runs/glyph/templates").json()["templates"]
    doc = client.get("/api/runs/glyph/template-contributions").json()["templates"]
    assert [t["template_id"] for t in doc] == [t["template_id"] for t in templates]
    fa = pd.read_parquet(runs["glyph"] / "feature_attributions.parquet")
    words = fa[fa["feature"] == "*"].assign(word=lambda f: f["token"].str.lower())
    checked = 0
    for tpl, contrib in zip(templates, doc, strict=True):
        members = tpl["members"]
        for item in tpl["items"]:
            modality, rest = item.split(":", 1)
            assert len(contrib["values"][modality]) == len(members)
        for modality, values in contrib["values"].items():
            expected = np.zeros(len(members))
            for item in (it for it in tpl["items"] if it.startswith(modality + ":")):
                rest = item.split(":", 1)[1]
                for k, i in enumerate(members):
                    if modality == "text":
                        rows = words[(words["instance"] == i) & (words["modality"] == "text") & (words["word"] == rest)]
                    else:
                        feature = rest.rsplit(" ", 1)[0]
                        rows = fa[(fa["instance"] == i) & (fa["modality"] == modality) & (fa["feature"] == feature)]
                        rows = rows[rows["position"] == -1]  # the whole-instance row, not the steps
                    expected[k] += rows["value"].sum()
            assert np.allclose(values, expected, rtol=1e-6, atol=1e-9), (tpl["items"], modality)
            checked += 1
    assert checked >= 4


def test_glyph_documents_are_cached_with_etags(client: TestClient) -> None:
    first = client.get("/api/runs/glyph/glyphs")
    again = client.get("/api/runs/glyph/glyphs", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/api/runs/nope/glyphs").status_code == 404

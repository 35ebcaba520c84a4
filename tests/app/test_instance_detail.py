"""The instance detail document's additions: feature descriptions and groups, word timings from word durations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from modalens.app.data import RunSource
from modalens.app.server import create_app
from modalens.data.feature_vocab import describe_feature
from modalens.data.native import load_dataset

from .fixtures import write_interaction_run


@pytest.fixture(scope="module")
def timed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_interaction_run(tmp_path_factory.mktemp("timed") / "timed", n=30, word_durations=True, steps=40)


@pytest.mark.parametrize(
    ("name", "kind", "group", "words"),
    [
        ("F0", "audio", "pitch", "fundamental frequency"),
        ("VUV", "audio", "pitch", "voicing"),
        ("NAQ", "audio", "voice quality", "amplitude quotient"),
        ("QOQ", "audio", "voice quality", "quasi-open"),
        ("H1H2", "audio", "voice quality", "harmonics"),
        ("PSP", "audio", "voice quality", "parabolic"),
        ("MDQ", "audio", "voice quality", "dispersion"),
        ("peakSlope", "audio", "voice quality", "wavelet"),
        ("Rd", "audio", "voice quality", "glottal flow"),
        ("creak", "audio", "voice quality", "creaky"),
        ("MCEP_0", "audio", "spectrum", "coefficient 0"),
        ("MCEP_17", "audio", "spectrum", "coefficient 17"),
        ("HMPDM_3", "audio", "phase", "mean, band 3"),
        ("HMPDD_12", "audio", "phase", "deviation, band 12"),
        ("energy_db", "audio", "loudness", "dB"),
        ("word_duration", "audio", "timing", "time taken"),
        ("Joy", "vision", "emotion", "joyful"),
        ("Anger Evidence", "vision", "emotion", "angry"),
        ("Neutral", "vision", "emotion", "neutral"),
        ("AU12", "vision", "lips", "lip corner puller"),
        ("AU01_r", "vision", "brow", "inner brow raiser (intensity)"),
        ("AU45_c", "vision", "eyes", "blink (present or not)"),
        ("AU4", "vision", "brow", "brow lowerer"),
        ("AU26", "vision", "chin", "jaw drop"),
        ("pitch", "vision", "head pose", "nodding"),
        ("yaw", "vision", "head pose", "turning"),
        ("pose_Rx", "vision", "head pose", "pitch angle"),
        ("vader_valence", "text", "lexicon", "VADER"),
        ("minilm_pc7", "text", "embedding", "component 7"),
        ("FER_act_pc3", "vision", "face embedding", "component 3"),
    ],
)
def test_feature_vocabulary(name: str, kind: str, group: str, words: str) -> None:
    info = describe_feature(name, kind)
    assert info is not None, name
    assert info.group == group
    assert words in info.description


def test_unknown_feature_names_have_no_description() -> None:
    for name in ("emb3", "*", "", "AU", "MCEPx", "something_else"):
        assert describe_feature(name) is None
    assert describe_feature("AU99").group == "action units"  # an action unit, but not one FACS names here
    assert describe_feature("pitch", "audio").group == "pitch"  # the voice's, not the head's


def test_tracks_carry_description_and_group(timed_run: Path) -> None:
    client = TestClient(create_app([timed_run]), base_url="http://127.0.0.1")
    doc = client.get("/api/runs/timed/instances/0").json()
    by_name = {(t["modality"], t["feature"]): t for t in doc["tracks"]}
    assert by_name[("audio", "F0")]["group"] == "pitch"
    assert "fundamental frequency" in by_name[("audio", "F0")]["description"]
    assert by_name[("vision", "AU12")]["group"] == "lips"
    assert by_name[("vision", "Joy")]["group"] == "emotion"
    assert by_name[("vision", "yaw")]["group"] == "head pose"
    assert all(t["description"] and t["group"] for t in doc["tracks"])  # every fixture feature is a known one


def test_word_timings_lay_the_stored_durations_end_to_end(timed_run: Path) -> None:
    source = RunSource.open("timed", timed_run)
    audio = load_dataset(timed_run / "dataset.npz")["audio"]
    k = audio.feature_names.index("word_duration")
    for i in (0, 7, 29):
        doc = source.instance_detail(i)
        assert doc["warnings"] == []
        timings = doc["word_timings"]["audio"]
        steps = np.flatnonzero(audio.step_mask()[i])
        durations = audio.values[i, steps, k].astype(np.float64)
        assert [t["position"] for t in timings] == steps.tolist()
        # each word starts where the one before ended, and lasts its stored duration
        np.testing.assert_allclose([t["end"] - t["start"] for t in timings], durations, atol=2e-4)
        assert timings[0]["start"] == 0.0
        assert all(a["end"] == b["start"] for a, b in zip(timings, timings[1:], strict=False))
        # the durations sum to the speech's length (the meta column the fixture stores as their sum)
        assert timings[-1]["end"] == pytest.approx(doc["row"]["meta_speech_seconds"], abs=1e-3)
        assert timings[-1]["end"] == pytest.approx(durations.sum(), abs=1e-3)
        # the text words and the timed words share positions: the view highlights the word being spoken
        assert {w["position"] for w in doc["words"]["text"]} == set(steps.tolist())


def test_word_timings_warn_when_the_speech_length_disagrees(timed_run: Path) -> None:
    source = RunSource.open("timed", timed_run)
    warnings: list[str] = []
    timings = source._word_timings(3, {"meta_speech_seconds": 99.0}, warnings)
    assert timings is not None and len(warnings) == 1
    assert "99.00 s" in warnings[0] and "speech_seconds" in warnings[0]


def test_no_word_timings_without_word_durations(tmp_path: Path) -> None:
    run = write_interaction_run(tmp_path / "plain", n=12)
    doc = RunSource.open("plain", run).instance_detail(2)
    assert doc["word_timings"] is None
    assert doc["warnings"] == []


def test_stored_cells_fill_the_tracks_without_a_live_model(tmp_path: Path) -> None:
    """A run explained with ``--granularities steps features cells``: served without ``--model``, each named
    feature's track holds its attribution at every real step -- the glass box's known terms -- and its total."""
    from .cells_fixtures import expected_cells, write_glass_cells_run

    run = write_glass_cells_run(tmp_path)
    client = TestClient(create_app([run]), base_url="http://127.0.0.1")
    assert client.get("/api/runs").json()[0]["live"] is False
    for i in (0, 3):
        doc = client.get(f"/api/runs/glass-cells/instances/{i}").json()
        want = expected_cells(run, i)
        named = [t for t in doc["tracks"] if t["feature"] != "*"]
        assert {t["modality"] for t in named} == {"text", "audio", "vision"}
        checked = 0
        for t in named:
            assert t["attribution"] is not None and len(t["attribution"]) == len(t["positions"])
            for pos, value in zip(t["positions"], t["attribution"], strict=True):
                assert value == pytest.approx(want[(t["modality"], pos, t["feature"])], abs=1e-5)
                checked += 1
        assert checked == len(want)
        assert any(abs(v) > 1e-3 for t in named for v in t["attribution"])  # a heat map, not a grey strip

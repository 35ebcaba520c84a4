"""The instance view with real-length sequences, in headless Chromium: no box runs over another from 1024 to 2560 px,
the tracks are virtualised and folded, the audio lights up the word being spoken, the coalition chart has 2^M bars,
and the live what-if controls are absent without a model."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from .conftest import LiveServer, watch

pytestmark = pytest.mark.browser

BOXES = {
    "words": "[data-testid=word-strip]",
    "tracks": "[data-testid=tracks]",
    "waterfall": "[data-testid=waterfall]",
    "matrix": "[data-testid=interaction-matrix]",
    "media": "[data-testid=instance-media]",
    "coalitions": "[data-testid=coalition-chart]",
}


def api(server: LiveServer, path: str) -> dict:
    with urllib.request.urlopen(server.url + path) as r:  # noqa: S310 - local test server
        return json.loads(r.read())


@pytest.fixture(scope="module")
def long_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app.fixtures import write_interaction_run

    # utterances of 100 words, every one with a face and a speech clip, words timed by their durations
    return write_interaction_run(
        tmp_path_factory.mktemp("long") / "long",
        n=12,
        steps=100,
        min_words=100,
        word_durations=True,
        media_count=12,
    )


def open_instance(browser, server: LiveServer, index: int, width: int, errors: list[str], height: int = 800):  # noqa: ANN001, ANN201
    page = watch(browser.new_page(viewport={"width": width, "height": height}), errors)
    page.goto(server.url)
    row = page.locator(f'.instance-row[data-instance="{index}"]')
    row.wait_for(timeout=30_000)
    row.scroll_into_view_if_needed()
    row.click()
    page.locator("[data-testid=instance-detail]").wait_for()
    page.locator("[data-testid=tracks]").wait_for()
    return page


def boxes(page) -> dict[str, dict]:  # noqa: ANN001
    return {name: page.locator(sel).first.bounding_box() for name, sel in BOXES.items()}


def overlaps(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"] - 0.5
        and b["x"] < a["x"] + a["width"] - 0.5
        and a["y"] < b["y"] + b["height"] - 0.5
        and b["y"] < a["y"] + a["height"] - 0.5
    )


def longest(server: LiveServer) -> tuple[int, int]:
    lengths = [
        len(api(server, f"api/runs/long/instances/{i}")["words"]["text"])
        for i in range(api(server, "api/runs/long/instances")["n"])
    ]
    best = max(range(len(lengths)), key=lengths.__getitem__)
    return best, lengths[best]


@pytest.mark.parametrize("width", [1024, 1280, 1600, 2560])
def test_a_long_instance_has_no_overlapping_boxes(browser, long_run: Path, shots: Path, width: int) -> None:  # noqa: ANN001
    errors: list[str] = []
    with LiveServer([long_run]) as server:
        index, n_words = longest(server)
        assert n_words == 100
        page = open_instance(browser, server, index, width, errors)
        detail = page.locator("[data-testid=instance-detail]")
        detail.scroll_into_view_if_needed()
        found = boxes(page)
        assert all(found.values()), found
        names = list(found)
        clashes = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :] if overlaps(found[a], found[b])]
        assert not clashes, (width, clashes, found)
        # nothing sticks out of the instance panel, and the page does not scroll sideways
        panel = page.locator(".instance-panel").bounding_box()
        for name, box in found.items():
            assert box["x"] >= panel["x"] - 0.5 and box["x"] + box["width"] <= panel["x"] + panel["width"] + 0.5, name
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
        # every word is in the strip; the track box scrolls sideways inside itself
        assert page.locator("[data-testid=word-strip] .word").count() == n_words
        tracks = page.locator("[data-testid=tracks]")
        assert tracks.evaluate("el => el.scrollWidth > el.clientWidth")
        page.screenshot(path=str(shots / f"instance-long-{width}.png"), full_page=False)
        if width == 1280:
            # face and audio beside the words: on screen with the top of the instance at the top of the window
            page.evaluate(
                "() => window.scrollBy(0, document.querySelector('[data-testid=instance-detail]')"
                ".getBoundingClientRect().top)"
            )
            media = page.locator("[data-testid=instance-media]").bounding_box()
            assert media["y"] >= 0 and media["y"] + media["height"] <= 800, media
            assert page.locator("[data-testid=instance-media] img.thumb").is_visible()
            assert page.locator("[data-testid=instance-media] audio").is_visible()
            page.screenshot(path=str(shots / "instance-long-1280-top.png"))
        page.close()
    assert not errors, errors


def test_tracks_fold_virtualise_and_describe(browser, long_run: Path, shots: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    with LiveServer([long_run]) as server:
        index, n_words = longest(server)
        doc = api(server, f"api/runs/long/instances/{index}")
        page = open_instance(browser, server, index, 1280, errors)
        tracks = page.locator("[data-testid=tracks]")
        by_mod: dict[str, list] = {}
        for t in doc["tracks"]:
            by_mod.setdefault(t["modality"], []).append(t)
        # top 6 per modality by |attribution| shown, the rest folded behind "show N more"
        audio = [t for t in by_mod["audio"] if t["feature"] != "*"]
        assert len(audio) == 5  # F0, VUV, NAQ, H1H2, word_duration: fits without folding beyond 6
        vision = by_mod["vision"]
        assert len(vision) == 5
        rendered = tracks.locator(".inst-track-row[data-feature]")
        names = rendered.evaluate_all("els => els.map(e => e.dataset.modality + ':' + e.dataset.feature)")
        assert set(names) == {f"{t['modality']}:{t['feature']}" for t in doc["tracks"]}
        # the highest-ranked audio feature comes first in its modality (sum of |attribution| over the steps)
        score = {
            t["feature"]: sum(abs(a) for a in t["attribution"] if a is not None) for t in audio if t["feature"] != "*"
        }
        first_audio = next(n for n in names if n.startswith("audio:"))
        assert first_audio == f"audio:{max(score, key=score.get)}"
        # descriptions are shown with the name and in the tooltip
        f0 = tracks.locator('.inst-track-row[data-feature="F0"] .track-label')
        assert "fundamental frequency" in f0.get_attribute("title")
        # the header holds one word per step; every step of F0 has its attribution (a colour, not grey)
        assert tracks.locator(".inst-track-header .inst-track-word").count() == n_words
        assert tracks.locator('.inst-track-row[data-feature="F0"] .inst-cell').count() == n_words
        assert tracks.locator('.inst-track-row[data-feature="F0"] .inst-cell.none').count() == 0
        assert tracks.locator('.inst-track-row[data-feature="F0"] .inst-cell.value-only').count() == 0
        page.close()
    assert not errors, errors


def test_many_tracks_are_virtualised_and_folded(browser, tmp_path: Path) -> None:  # noqa: ANN001
    """A modality of 40 features: 6 shown, 34 behind "show 34 more"; opened, only the rows in view are in the DOM."""
    import modalens.data.native as native
    from app.fixtures import write_interaction_run

    run = write_interaction_run(tmp_path / "wide", n=6, steps=60, min_words=50)
    # widen the vision modality of the stored dataset to 40 named features (AU01..AU40): raw values only
    ds = native.load_dataset(run / "dataset.npz")
    import numpy as np

    from modalens.data import Modality, MultimodalDataset

    vision = ds["vision"]
    values = np.repeat(vision.values, 8, axis=2)[:, :, :40]
    wide = Modality("vision", "vision", values, mask=vision.mask, feature_names=[f"AU{k:02d}" for k in range(1, 41)])
    mods = [wide if m == "vision" else ds[m] for m in ds.modalities]
    bigger = MultimodalDataset(mods, ds.labels, label_kind=ds.label_kind, ids=ds.ids, splits=ds.splits, texts=ds.texts)
    native.save_dataset(bigger, run / "dataset.npz")
    errors: list[str] = []
    with LiveServer([run]) as server:
        doc = api(server, "api/runs/wide/instances/0")
        n_tracks = len(doc["tracks"])
        assert n_tracks >= 45
        page = open_instance(browser, server, 0, 1280, errors)
        tracks = page.locator("[data-testid=tracks]")
        fold = page.locator("[data-testid=fold-vision]")
        assert "more" in fold.inner_text()
        folded = int(fold.inner_text().split()[1])
        assert folded == len([t for t in doc["tracks"] if t["modality"] == "vision"]) - 6
        fold.click()
        rows_in_dom = tracks.locator(".inst-track-row").count()
        total_rows = int(tracks.get_attribute("aria-rowcount")) - 1
        assert total_rows > rows_in_dom, (total_rows, rows_in_dom)
        # scrolled to the bottom, the last rows are rendered
        tracks.evaluate("el => { el.scrollTop = el.scrollHeight; }")
        page.wait_for_timeout(100)
        last = tracks.locator(".inst-track-row[data-feature]").evaluate_all("els => els.map(e => e.dataset.feature)")
        assert any(f.startswith("AU") for f in last)
        page.close()
    assert not errors, errors


def test_audio_follows_the_words(browser, long_run: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    with LiveServer([long_run]) as server:
        index = 0
        doc = api(server, f"api/runs/long/instances/{index}")
        timings = doc["word_timings"]["audio"]
        page = open_instance(browser, server, index, 1280, errors)
        # the fixture's clip is a 0.6-s tone, so the browser clamps seeks to it: 0.3 s is inside the clip
        at = 0.3
        target = next(w for w in timings if w["start"] <= at < w["end"])
        page.evaluate(
            "(t) => { const a = document.querySelector('[data-testid=instance-media] audio');"
            " a.currentTime = t; a.dispatchEvent(new Event('timeupdate')); }",
            at,
        )
        page.wait_for_function("() => document.querySelector('[data-testid=word-strip] .word.speaking') !== null")
        assert page.locator("[data-testid=word-strip] .word.speaking").get_attribute("data-position") == str(
            target["position"]
        )
        assert page.locator(".inst-track-word.speaking").get_attribute("data-position") == str(target["position"])
        # a click on a word seeks the audio to its start
        word = timings[1] if timings[1]["start"] < 0.55 else timings[0]
        page.locator(f'[data-testid=word-strip] .word[data-position="{word["position"]}"]').click()
        t = page.evaluate("() => document.querySelector('[data-testid=instance-media] audio').currentTime")
        assert word["start"] <= t < word["start"] + 0.15  # it plays on from there
        assert page.locator("[data-testid=word-strip] .word.speaking").get_attribute("data-position") == str(
            word["position"]
        )
        page.close()
    assert not [e for e in errors if "play()" not in e], errors


def test_coalition_chart_and_no_live_controls_without_a_model(browser, long_run: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    with LiveServer([long_run]) as server:
        assert api(server, "api/runs")[0].get("live") is False
        page = open_instance(browser, server, 1, 1280, errors)
        doc = api(server, "api/runs/long/instances/1")
        chart = page.locator("[data-testid=coalition-chart]")
        assert chart.locator("rect.coalition-bar").count() == 2 ** len(doc["modalities"]) == len(doc["coalitions"])
        # the bar of the full coalition shows the stored value of the prediction
        full = "+".join(m["name"] for m in doc["modalities"])
        stored = next(c["value"] for c in doc["coalitions"] if c["coalition"] == full)
        assert f"{stored:.2f}" in chart.locator(f'g[data-coalition="{full}"]').text_content()
        # no model: no what-if controls, no compute button, a hint instead of a dead button
        assert page.locator("[data-testid=whatif-live]").count() == 0
        assert page.locator("[data-testid=compute-cells]").count() == 0
        page.close()
    assert not errors, errors


class ModelServer(LiveServer):
    """The live server with a model attached to its runs (``modalens serve RUN --model SPEC``)."""

    def __init__(self, run_dirs: list[Path], predictors: dict) -> None:
        import uvicorn

        from modalens.app.server import create_app

        from .conftest import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        app = create_app(run_dirs, predictors=predictors)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        import threading

        self.thread = threading.Thread(target=self.server.run, daemon=True)


@pytest.fixture(scope="module")
def model_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run written by ``modalens explain`` with the what-if tests' model (tests/app/test_whatif.py), words kept."""
    from modalens.cli.main import main
    from modalens.data.native import save_dataset
    from modalens.data.synthetic import make_synthetic

    folder = tmp_path_factory.mktemp("live")
    save_dataset(make_synthetic(24, seed=5), folder / "data.npz")
    out = folder / "interacting"
    argv = [
        "explain", str(folder / "data.npz"), "--model", "tests.app.test_whatif:interacting_model", "--out", str(out),
        "--granularities", "steps", "--n-permutations", "2", "--no-templates", "--projection", "none",
    ]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code in (0, None)
    return out


def test_live_what_if_answers_with_a_model(browser, model_run: Path, shots: Path) -> None:  # noqa: ANN001
    from modalens.cli.live_model import load_live_predictors

    predictors, refused = load_live_predictors([model_run], "tests.app.test_whatif:interacting_model")
    assert not refused
    errors: list[str] = []
    with ModelServer([model_run], predictors) as server:
        assert api(server, "api/runs")[0]["live"] is True
        doc = api(server, "api/runs/interacting/instances/2")
        page = open_instance(browser, server, 2, 1280, errors)
        live = page.locator("[data-testid=whatif-live]")
        live.wait_for()
        # dropping audio: the model's answer is the stored value of the coalition without audio
        page.locator("[data-testid=keep-audio]").uncheck()
        answer = page.locator("[data-testid=whatif-prediction]")
        answer.wait_for(timeout=10_000)
        expected = next(c["value"] for c in doc["coalitions"] if set(c["coalition"].split("+")) == {"text", "vision"})
        assert float(answer.inner_text()) == pytest.approx(expected, abs=2e-3)
        # the chart outlines the edited instance's coalitions next to the stored ones
        assert page.locator("[data-testid=coalition-chart] rect.coalition-live").count() == 8
        page.screenshot(path=str(shots / "instance-whatif.png"))
        # restore, then mask a word by clicking it: the answer changes from the stored prediction
        page.locator("[data-testid=keep-audio]").check()
        page.locator("[data-testid=mask-words]").click()
        word = page.locator("[data-testid=word-strip] .word").first
        word.click()
        assert "masked" in word.get_attribute("class")
        page.wait_for_function(
            "() => document.querySelector('[data-testid=whatif-prediction]') !== null"
            " && document.querySelector('[data-testid=mask-words]').textContent.includes('(1)')"
        )
        page.locator("[data-testid=whatif-prediction]").wait_for()
        page.close()
    assert not errors, errors


CELLS_JS = """() => Array.from(document.querySelectorAll('[data-testid=tracks] .inst-track-row')).filter(
    (r) => r.dataset.feature !== '*').flatMap((r) => Array.from(r.querySelectorAll('.inst-cell:not(.inst-total)')).map(
    (c) => ({modality: r.dataset.modality, feature: r.dataset.feature, title: c.title, bg: c.style.background})))"""


def test_feature_x_step_cells_computed_with_a_model(browser, model_run: Path, shots: Path) -> None:  # noqa: ANN001
    """The run has step attributions only: with a live model the button computes the feature x step cells of the
    open instance; the named features' cells take their colours, their values are the route's, the cost is shown."""
    from modalens.cli.live_model import load_live_predictors

    predictors, refused = load_live_predictors([model_run], "tests.app.test_whatif:interacting_model")
    assert not refused
    errors: list[str] = []
    with ModelServer([model_run], predictors) as server:
        page = open_instance(browser, server, 3, 1280, errors)
        before = page.evaluate(CELLS_JS)
        assert before and not [c for c in before if c["bg"]]  # values only, no attribution per feature and step
        button = page.locator("[data-testid=compute-cells]")
        assert "compute feature × step attributions" in button.inner_text()
        button.click()
        cost = page.locator("[data-testid=cells-cost]")
        cost.wait_for(timeout=20_000)
        # the same request straight to the route: the estimator is seeded, so the page shows exactly this answer
        req = urllib.request.Request(  # noqa: S310 - local test server
            server.url + "api/runs/interacting/instances/3/cells",
            data=json.dumps({"n_permutations": 8}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as r:  # noqa: S310
            answer = json.loads(r.read())
        text = cost.inner_text()
        assert f"{answer['evaluations']:,} model rows" in text and "8 permutations" in text
        assert page.locator("[data-testid=compute-cells]").count() == 0
        after = page.evaluate(CELLS_JS)
        coloured = [c for c in after if c["bg"]]
        assert len(coloured) == len(answer["rows"])  # every cell of the answer, and only those
        neutral = "rgb(247, 247, 247)"  # the diverging scale's zero
        value = {(r["modality"], r["feature"], r["position"]): r["value"] for r in answer["rows"]}
        strong = max(abs(v) for v in value.values())
        assert strong > 0
        for c in coloured:
            step = int(c["title"].split(" at step ")[1].split(":")[0])
            v = value[(c["modality"], c["feature"], step)]
            shown = float(c["title"].split("attribution ")[1].split(",")[0])
            assert shown == pytest.approx(v, rel=5e-3, abs=1.5e-3), c
            if abs(v) > 0.2 * strong:  # a strong cell is visibly coloured, not the neutral of zero
                assert c["bg"] != neutral, c
        assert any(c["bg"] != neutral for c in coloured)
        page.locator("[data-testid=tracks]").screenshot(path=str(shots / "instance-cells-live.png"))
        page.close()
    assert not errors, errors


def test_stored_cells_show_as_a_heat_map_without_a_model(browser, tmp_path: Path) -> None:  # noqa: ANN001
    """A run explained with ``--granularities steps features cells``, served without ``--model``: every named
    feature's cell is coloured by its stored attribution, with no compute button and no hint."""
    from app.cells_fixtures import expected_cells, write_glass_cells_run

    run = write_glass_cells_run(tmp_path)
    want = expected_cells(run, 1)
    errors: list[str] = []
    with LiveServer([run]) as server:
        page = open_instance(browser, server, 1, 1280, errors)
        cells = page.evaluate(CELLS_JS)
        coloured = [c for c in cells if c["bg"]]
        assert len(coloured) == len(want)
        for c in coloured:
            step = int(c["title"].split(" at step ")[1].split(":")[0])
            shown = float(c["title"].split("attribution ")[1].split(",")[0])
            assert shown == pytest.approx(want[(c["modality"], step, c["feature"])], rel=5e-3, abs=1.5e-3), c
        assert any(c["bg"] != "rgb(247, 247, 247)" for c in coloured)
        assert page.locator("[data-testid=compute-cells]").count() == 0
        assert page.locator("[data-testid=cells-hint]").count() == 0
        page.close()
    assert not errors, errors

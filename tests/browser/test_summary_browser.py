"""The Summary's measures in Chromium: EMAP and PID panels on a run that has them (a real glass-box run explained
with ``emap`` and ``pid``), "not computed" on one that has not, and the feature-importance list with its
minimum-support filter, selection and word click."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import LiveServer, watch

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def measured_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A glass-box model explained on 150 synthetic instances with EMAP, PID and word attributions."""
    from modalens.data.synthetic import make_synthetic
    from modalens.interactions import explain
    from modalens.models.glass_box import glass_box_model

    data = make_synthetic(150, seed=3)
    e = explain(
        glass_box_model(), data, emap=True, pid=True, n_permutations=2, templates=False, projection="pca",
        progress=False,
    )  # fmt: skip
    return e.save(tmp_path_factory.mktemp("measured") / "glass-box")


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app.fixtures import write_interaction_run

    return write_interaction_run(tmp_path_factory.mktemp("plain") / "plain", 200)


@pytest.fixture
def measured(measured_run: Path) -> Iterator[LiveServer]:
    with LiveServer([measured_run]) as server:
        yield server


def api(server: LiveServer, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:  # noqa: S310 - local test server
        return json.loads(r.read())


def open_summary(browser, server: LiveServer, errors: list[str]):  # noqa: ANN001, ANN201
    page = watch(browser.new_page(viewport={"width": 1500, "height": 1000}), errors)
    page.goto(server.url)
    page.wait_for_selector("[data-testid=fi-list], [data-testid=importance-missing]", timeout=30_000)
    return page


def listed(page) -> list[tuple[str, int]]:  # noqa: ANN001
    rows = page.locator("[data-testid=fi-list] [data-item]")
    return [
        (rows.nth(k).get_attribute("data-item"), int(rows.nth(k).get_attribute("data-support")))
        for k in range(rows.count())
    ]


def expected_words(doc: dict, min_support: int, top: int = 15) -> list[str]:
    words = [f for f in doc["features"] if f["modality"] == "text" and f["kind"] == "word"]
    words = [f for f in words if f["support"] >= min_support]
    words.sort(key=lambda f: (-f["mean_abs"], -f["support"], f["feature"]))
    return [f["feature"] for f in words[:top]]


def test_emap_pid_and_feature_importance(browser, measured: LiveServer, shots: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    page = open_summary(browser, measured, errors)
    manifest = api(measured, "api/runs/glass-box")
    emap, pid = manifest["dataset_measures"]["emap"], manifest["dataset_measures"]["pid"]
    page.wait_for_selector("[data-testid=emap]")
    share = emap["interaction_share"]
    assert page.get_by_test_id("emap-share").inner_text() == f"{100 * share:.{1 if share < 0.1 else 0}f}%"
    assert "additive" in page.get_by_test_id("emap").inner_text()
    assert page.locator("[data-testid=emap] tbody tr").count() >= 2  # mae, corr, ... with their gaps
    pairs = page.locator("[data-testid=pid] [data-pair]")
    assert sorted(pairs.nth(k).get_attribute("data-pair") for k in range(pairs.count())) == sorted(pid)
    assert page.locator("[data-testid=pid] [data-atom=synergy]").count() == len(pid)
    assert page.get_by_test_id("emap-missing").count() == 0 and page.get_by_test_id("pid-missing").count() == 0

    # feature importance: text words, at least 2 instances by default, as the API ranks them
    doc = api(measured, "api/runs/glass-box/feature-importance")
    page.get_by_test_id("fi-modality").select_option("text")
    page.locator("[data-testid=feature-importance] [data-kind=word]").click()
    shown = listed(page)
    assert [w for w, _ in shown] == expected_words(doc, 2)
    assert all(s >= 2 for _, s in shown)
    page.locator("[data-view=summary]").screenshot(path=str(shots / "summary-measures.png"))
    # a higher minimum support (the top word's support + 1) hides that word and every rarer one
    t = shown[0][1] + 1
    assert expected_words(doc, t) != expected_words(doc, 2)
    page.get_by_test_id("fi-min-support").fill(str(t))
    page.wait_for_function(
        "(t) => document.querySelector('[data-testid=fi-hidden]').innerText.includes('fewer than ' + t)", arg=t
    )
    assert [w for w, _ in listed(page)] == expected_words(doc, t)
    assert all(s >= t for _, s in listed(page))

    # a click on a word selects the instances where it occurs, and the list is then ranked within them
    word = listed(page)[0][0]
    ask = {"members_of": {"modality": "text", "feature": word, "kind": "word"}}
    members = api(measured, "api/runs/glass-box/feature-importance", ask)["members"]
    page.locator(f"[data-testid=fi-list] [data-item='{word}']").click()
    page.wait_for_function(
        "(n) => { const s = window.__modalensSelection; return s && s.selected && s.selected.length === n; }",
        arg=len(members),
    )
    page.wait_for_function(
        "() => document.querySelector('[data-testid=fi-hidden]').innerText.includes('Ranked within')"
    )
    selected = page.evaluate("() => Array.from(window.__modalensSelection.selected)")
    assert sorted(selected) == members
    within = api(measured, "api/runs/glass-box/feature-importance", {"indices": members})
    assert [w for w, _ in listed(page)] == expected_words(within, t)
    assert word in [w for w, _ in listed(page)]  # it occurs in every selected instance
    assert errors == []


def test_not_computed_messages(browser, plain_run: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    with LiveServer([plain_run]) as server:
        page = open_summary(browser, server, errors)
        page.wait_for_selector("[data-testid=emap-missing]")
        assert "--emap" in page.get_by_test_id("emap-missing").inner_text()
        assert "--pid" in page.get_by_test_id("pid-missing").inner_text()
        assert page.get_by_test_id("emap").count() == 0 and page.get_by_test_id("pid").count() == 0
        # dominance per modality: the bars' counts add up to the instances typed dominance
        doc = api(server, "api/runs/plain/instances")
        dominance = sum(1 for t in doc["columns"]["interaction_type"] if t == "dominance")
        texts = [page.locator(f"[data-dominant={m}] .bar-value").inner_text() for m in doc["modalities"]]
        assert sum(int(t.split("(")[1].rstrip(")").replace(",", "")) for t in texts) == dominance
        page.close()
    assert errors == []

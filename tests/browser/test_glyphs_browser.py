"""Glyphs in the projection and templates ranked within a selection, in headless Chromium.

Zoomed in on the synthetic run (faces from its Joy/Sadness expression features, acoustic roses from its audio
attributions), points become glyphs; zoomed out they are dots again. A lasso or an interaction-type selection
re-ranks the templates by lift, which is checked against the lift computed here from the API's documents.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from .conftest import LiveServer, watch
from .test_app_browser import lasso

pytestmark = pytest.mark.browser

N = 1500


@pytest.fixture(scope="module")
def glyph_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from app.glyph_fixtures import write_glyph_run

    run = write_glyph_run(tmp_path_factory.mktemp("glyph-browser") / "glyph-run", N, seed=5)
    with LiveServer([run]) as server:
        yield server


def api(server: LiveServer, path: str) -> dict:
    with urllib.request.urlopen(server.url + path) as r:  # noqa: S310 - local test server
        return json.loads(r.read())


def frame(page) -> dict:  # noqa: ANN001
    return page.evaluate("() => window.__modalensGlyphs || null")


def drawn(page) -> int:  # noqa: ANN001
    return int(page.locator(".scatter").first.get_attribute("data-glyphs") or 0)


def wheel_until(page, delta: float, done: str, steps: int = 25) -> None:  # noqa: ANN001
    """Wheel over the centre of the projection until the JS condition ``done`` holds (one notch at a time)."""
    box = page.locator("[data-testid=scatter-overlay]").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(steps):
        if page.evaluate(done):
            return
        page.mouse.wheel(0, delta)
        page.wait_for_timeout(120)
    page.wait_for_function(done, timeout=10_000)


def template_rows(page) -> list[dict]:  # noqa: ANN001
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('.template-row')).map(el => ({
            id: Number(el.dataset.template), lift: el.dataset.lift, inSel: Number(el.dataset.inSelection)}))"""
    )


def expected_ranking(templates: list[dict], selected: list[int], n: int, min_count: int = 2) -> list[int]:
    sel = set(selected)
    rows = []
    for t in templates:
        c = len(sel & set(t["members"]))
        lift = (c / len(sel)) / (len(t["members"]) / n)
        rows.append((-(c >= min_count), -lift, -c, t["rank"], t["template_id"]))
    return [r[-1] for r in sorted(rows)]


def test_glyphs_appear_when_zoomed_in(browser, glyph_server: LiveServer, shots: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    page = watch(browser.new_page(viewport={"width": 1500, "height": 1000}), errors)
    page.goto(glyph_server.url)
    page.wait_for_selector("[data-view=projection] canvas", timeout=30_000)
    page.wait_for_function("() => window.__modalensGlyphs")
    assert frame(page)["visible"] is None  # 1,500 points in view: dots only
    assert drawn(page) == 0
    assert page.locator("[data-testid=glyph-legend]").count() == 0

    # zoom until at most 400 points are in view; their glyph inputs are fetched then, and drawn
    wheel_until(page, -300, "() => window.__modalensGlyphs && window.__modalensGlyphs.visible !== null")
    page.wait_for_function("() => window.__modalensGlyphs.drawn > 0")
    f = frame(page)
    assert 20 < f["visible"] <= 400 and f["drawn"] == f["visible"] == drawn(page)
    legend = page.locator("[data-testid=glyph-legend]").inner_text()
    assert "Faces from vision" in legend and "pitch, voicing, voice quality" in legend
    # the glyph layer really has ink on it (faces are filled, so many pixels are not transparent)
    ink = page.evaluate(
        """() => { const c = document.querySelector('[data-testid=scatter-glyphs]');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let k = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) k++; return k; }"""
    )
    assert ink > 2000, (ink, f)
    page.locator("[data-view=projection]").screenshot(path=str(shots / "glyphs-zoomed.png"))

    # panning keeps glyphs for the points now in view
    box = page.locator("[data-testid=scatter-overlay]").bounding_box()
    page.get_by_role("button", name="Pan").click()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2 + 30, steps=4)
    page.mouse.up()
    page.wait_for_timeout(150)
    assert frame(page)["ms"] < 100

    wheel_until(page, 300, "() => window.__modalensGlyphs && window.__modalensGlyphs.visible === null")
    assert drawn(page) == 0
    assert page.locator("[data-testid=glyph-legend]").count() == 0
    page.screenshot(path=str(shots / "glyphs-zoomed-out.png"))
    assert not errors, errors


def test_templates_rerank_within_a_selection(browser, glyph_server: LiveServer, shots: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    page = watch(browser.new_page(viewport={"width": 1500, "height": 1000}), errors)
    page.goto(glyph_server.url)
    page.wait_for_selector(".template-row", timeout=30_000)
    templates = api(glyph_server, "api/runs/glyph-run/templates")["templates"]
    page.wait_for_function("() => document.querySelector('.template-row [data-modality]')")
    glob = template_rows(page)
    assert [r["id"] for r in glob] == [t["template_id"] for t in sorted(templates, key=lambda t: t["rank"])]
    assert all(r["lift"] == "" for r in glob)
    # item glyphs: faces for expressions, petals for acoustic items, word chips for words
    kinds = set(page.locator(".template-row [data-glyph]").evaluate_all("els => els.map(e => e.dataset.glyph)"))
    assert {"face", "petal", "word"} <= kinds

    # a type selection: the list is re-ranked by lift within it, exactly as computed here
    page.locator("[data-view=summary] [data-type=conflict]").first.click()
    page.wait_for_function("() => document.querySelector('.template-row').dataset.lift !== ''")
    selected = page.evaluate("() => Array.from(window.__modalensSelection.selected)")
    rows = template_rows(page)
    assert [r["id"] for r in rows] == expected_ranking(templates, selected, N)
    top = next(t for t in templates if t["template_id"] == rows[0]["id"])
    c = len(set(selected) & set(top["members"]))
    assert float(rows[0]["lift"]) == pytest.approx((c / len(selected)) / (len(top["members"]) / N), rel=1e-3)
    assert "Ranked by lift within the selection" in page.locator("[data-testid=template-order]").inner_text()

    # a lasso re-ranks again
    box = page.locator("[data-testid=scatter-overlay]").bounding_box()
    radius = min(box["width"], box["height"]) * 0.16
    lasso(page, box["x"] + box["width"] * 0.62, box["y"] + box["height"] * 0.45, radius)
    page.wait_for_function(
        "(n) => window.__modalensSelection.source === 'lasso' && window.__modalensSelection.selected.length !== n",
        arg=len(selected),
    )
    lassoed = page.evaluate("() => Array.from(window.__modalensSelection.selected)")
    page.wait_for_timeout(200)
    rows = template_rows(page)
    assert [r["id"] for r in rows] == expected_ranking(templates, lassoed, N)
    # per-modality contributions: one bar per modality of the template's items
    first = page.locator(".template-row").first
    mods = {m.split(":")[0] for m in next(t for t in templates if t["template_id"] == rows[0]["id"])["items"]}
    assert set(first.locator("[data-modality]").evaluate_all("els => els.map(e => e.dataset.modality)")) == mods
    page.locator("[data-view=templates]").screenshot(path=str(shots / "templates-in-selection.png"))
    assert np.isfinite(float(rows[0]["lift"]))
    assert not errors, errors

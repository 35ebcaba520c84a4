"""The HTML export opened from file:// with no server and no network: summary, projection, an instance with its
face and audio, and the N-run Compare view with its type-transition matrix all render, without console errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import watch

OFFLINE = ("file:", "data:")  # the only schemes an export may load from


@pytest.fixture(scope="module")
def export_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from app.fixtures import write_interaction_run

    root = tmp_path_factory.mktemp("export-browser")
    return [
        write_interaction_run(root / "late", 300, model_seed=0, model_name="late-fusion", media_count=300),
        write_interaction_run(root / "early", 300, model_seed=1, model_name="early-fusion", media_count=300),
        write_interaction_run(root / "mult", 300, model_seed=2, model_name="mult", media_count=0),
    ]


def test_export_opens_offline(browser, export_runs: list[Path], tmp_path: Path, shots: Path) -> None:  # noqa: ANN001
    from modalens.app.export import export_html

    out = export_html(export_runs, tmp_path / "export.html")
    page, errors, requests = open_offline(browser, out)
    # summary and projection
    page.wait_for_selector(".template-row", timeout=30_000)
    page.wait_for_selector("[data-view=projection] canvas")
    # an instance with its face and its audio (decoded from the compressed container)
    page.locator(".instance-row").first.click()
    detail = page.locator("[data-testid=instance-detail]")
    detail.wait_for()
    img = detail.locator("img").first
    img.wait_for()
    page.wait_for_function("(el) => el.complete && el.naturalWidth > 0", arg=img.element_handle())
    audio = detail.locator("audio").first
    audio.wait_for(state="attached")
    assert audio.get_attribute("src").startswith("data:audio/wav;base64,")
    page.wait_for_function("(el) => el.readyState >= 1 && el.duration > 0.5", arg=audio.element_handle())
    page.screenshot(path=str(shots / "export-instance.png"), full_page=True)
    # Compare: three runs side by side, named by their models; a transition cell selects its instances
    page.locator("[data-tab=compare]").click()
    many = page.locator("[data-testid=compare-many]")
    many.wait_for()
    metrics = page.locator("[data-testid=compare-metrics]").inner_text()
    assert "late-fusion" in metrics and "early-fusion" in metrics and "mult" in metrics
    cell = page.locator("[data-testid=transition-cell]:not([disabled])").first
    n = int(cell.inner_text().replace(",", ""))
    cell.click()
    assert page.locator("[data-testid=selection-count]").inner_text().startswith(f"{n} of 300")
    # fewer runs: the choice goes into the URL (cmp) and the export holds that document too
    page.locator("[data-testid=compare-run-mult]").uncheck()
    page.wait_for_function("() => new URLSearchParams(location.search).get('cmp') === 'early'")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=compare-metrics] tbody tr').length === 2")
    page.screenshot(path=str(shots / "export-compare.png"), full_page=True)
    assert not [u for u in requests if not u.startswith(OFFLINE)]
    assert not errors, errors


def test_export_draws_glyphs_template_contributions_and_filters_words(browser, tmp_path: Path) -> None:  # noqa: ANN001
    """The documents the server answers lazily -- glyph inputs, per-modality template contributions, the texts --
    are in the file: zoomed in, points become glyphs; the templates' bars are per modality; "word contains" works
    from file:// with no server."""
    import pandas as pd

    from app.glyph_fixtures import write_glyph_run
    from modalens.app.export import export_html

    from .test_glyphs_browser import drawn, wheel_until

    run = write_glyph_run(tmp_path / "glyph-export", 600, seed=5)
    out = export_html(run, tmp_path / "glyphs.html", max_instances=20)
    frame = pd.read_parquet(run / "instances.parquet").sort_values("instance").reset_index(drop=True)
    want = frame.index[frame["text"].str.lower().str.contains("great", regex=False)].tolist()
    assert 0 < len(want) < 600
    page, errors, requests = open_offline(browser, out)
    page.wait_for_selector("[data-view=projection] canvas", timeout=30_000)
    page.wait_for_function("() => window.__modalensGlyphs")
    assert drawn(page) == 0  # 600 points in view: dots
    wheel_until(page, -300, "() => window.__modalensGlyphs && window.__modalensGlyphs.visible !== null")
    page.wait_for_function("() => window.__modalensGlyphs.drawn > 0", timeout=10_000)
    assert drawn(page) == page.evaluate("() => window.__modalensGlyphs.visible") > 0
    assert "Faces from vision" in page.locator("[data-testid=glyph-legend]").inner_text()

    # templates: one bar per modality from the embedded contributions, not the Shapley stand-in
    page.wait_for_selector(".template-row [data-modality]")
    templates = page.locator("[data-view=templates]").inner_text()
    assert "Mean attribution of the set's items, per modality" in templates
    assert "Mean modality Shapley value of the members" not in templates

    # the word filter reads the embedded texts
    page.wait_for_selector("[data-testid=slice-builder]")
    page.locator("[data-testid=add-condition]").select_option("text")
    page.locator(".condition[data-column=text] input[type=search]").fill("great")
    page.wait_for_function(
        f"() => document.querySelector('[data-testid=filter-count] b')?.textContent === '{len(want):,}'"
    )
    page.locator("[data-testid=apply-filter]").click()
    page.wait_for_function(f"() => window.__modalensSelection.selected?.length === {len(want)}")
    assert page.evaluate("() => Array.from(window.__modalensSelection.selected)") == want
    assert "cannot be loaded" not in page.locator("[data-testid=slice-builder]").inner_text()
    assert not [u for u in requests if not u.startswith(OFFLINE)]
    assert not errors, errors


def open_offline(browser, out: Path):  # noqa: ANN001, ANN201 - Playwright objects
    """The exported file opened from ``file://`` with every other request refused: (page, console errors, the URLs
    the page asked for)."""
    errors: list[str] = []
    page = watch(browser.new_page(viewport={"width": 1500, "height": 1000}), errors)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(OFFLINE) else route.abort())
    page.goto(out.as_uri())
    return page, errors, requests

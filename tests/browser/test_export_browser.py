"""The HTML export opened from file:// with no server and no network: summary, projection, an instance with its
face and audio, and the N-run Compare view with its type-transition matrix all render, without console errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import watch


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
    errors: list[str] = []
    page = watch(browser.new_page(viewport={"width": 1500, "height": 1000}), errors)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    offline = ("file:", "data:")
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(offline) else route.abort())
    page.goto(out.as_uri())
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
    assert not [u for u in requests if not u.startswith(("file:", "data:"))]
    assert not errors, errors

"""The instance view of a vision-language run in headless Chromium: the image under its patch heat map, the caption's
words coloured, MM-SHAP's shares."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import LiveServer, watch

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def vlm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app.test_vlm_detail import write_vlm_run

    return write_vlm_run(tmp_path_factory.mktemp("vlm-browser"))


def test_patch_heat_map_and_words(browser, vlm_run: Path, shots: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    with LiveServer([vlm_run]) as server:
        page = watch(browser.new_page(viewport={"width": 1400, "height": 1000}), errors)
        page.goto(server.url)
        page.locator(".instance-row").first.wait_for()  # a run without labels still lists its instances
        page.locator(".instance-row[data-instance='0']").click()
        heat = page.locator("[data-testid=patch-heatmap]")
        heat.wait_for()
        assert heat.locator("[data-patch]").count() == 4  # a 2x2 grid
        assert heat.locator("image").count() == 1  # drawn over the pair's image
        page.wait_for_function("() => document.querySelector('[data-testid=patch-heatmap] image')?.getBBox().width > 0")
        words = page.locator("[data-testid=word-groups] .word")
        assert words.all_inner_texts()[:3] == ["a", "red", "cat"]
        shares = page.locator("[data-testid=mm-shap]").inner_text()
        assert "T-SHAP" in shares and "V-SHAP" in shares
        page.locator("[data-testid=instance-detail]").screenshot(path=str(shots / "07-vlm-instance.png"))
    assert not errors, errors

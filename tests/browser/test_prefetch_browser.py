"""The instance detail is fetched ahead: on a resting pointer (list row) and for the open row's neighbours, so the
click or the arrow key renders from memory without a request of its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import LiveServer, watch

pytestmark = pytest.mark.browser

DETAIL = re.compile(r"/api/runs/[^/]+/instances/(\d+)$")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app.fixtures import write_interaction_run

    return write_interaction_run(tmp_path_factory.mktemp("prefetch") / "run", n=30)


def shown(page, index: str) -> None:  # noqa: ANN001
    page.wait_for_function(
        "(i) => document.querySelector('[data-testid=instance-detail] .sub')?.textContent === '#' + i", arg=index
    )


def test_hover_and_neighbours_are_fetched_ahead(browser, small_run: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    with LiveServer([small_run]) as server:
        page = watch(browser.new_page(viewport={"width": 1400, "height": 900}), errors)
        asked: list[str] = []
        page.on("request", lambda r: (m := DETAIL.search(r.url)) and asked.append(m.group(1)))
        page.goto(server.url)
        rows = page.locator(".instance-row")
        rows.nth(5).wait_for(timeout=30_000)
        ids = [rows.nth(k).get_attribute("data-instance") for k in range(6)]

        # a pointer that only passes over a row fetches nothing; one that rests ~80 ms fetches its detail
        rows.nth(2).hover()
        page.wait_for_timeout(20)
        page.mouse.move(5, 5)
        page.wait_for_timeout(300)
        assert asked == []
        rows.nth(2).hover()
        page.wait_for_timeout(400)
        assert asked == [ids[2]]

        # the click renders from memory: no request of its own; then the rows above and below are fetched
        rows.nth(2).click()
        shown(page, ids[2])
        page.wait_for_timeout(400)
        assert asked[0] == ids[2] and asked.count(ids[2]) == 1
        assert sorted(asked[1:]) == sorted([ids[1], ids[3]])

        # ArrowDown opens the next row from memory and fetches the one after it
        page.keyboard.press("ArrowDown")
        shown(page, ids[3])
        page.wait_for_timeout(400)
        assert asked.count(ids[3]) == 1
        assert asked[-1] == ids[4]
    assert errors == []

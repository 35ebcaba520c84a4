"""Slices as a person uses them, in headless Chromium: a filter built in the page goes into the URL and a reload
reproduces it; a saved slice survives a server restart and is never written inside the run; the selection downloads
as CSV; an empty filter says so; back/forward step between tabs; the list reaches the last of 3,000 rows."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest

from .conftest import LiveServer, watch

pytestmark = pytest.mark.browser

N = 3000


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app.fixtures import write_interaction_run

    return write_interaction_run(tmp_path_factory.mktemp("slice-browser") / "big", N, media_count=4)


def tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def selected(page) -> list[int] | None:  # noqa: ANN001
    return page.evaluate(
        "() => { const s = window.__modalensSelection; return s && s.selected ? Array.from(s.selected) : null; }"
    )


def focused(page) -> int | None:  # noqa: ANN001
    return page.evaluate("() => window.__modalensSelection ? window.__modalensSelection.focused : null")


def query(page) -> dict[str, str]:  # noqa: ANN001
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def wait_ready(page) -> None:  # noqa: ANN001
    page.wait_for_selector("[data-view=projection] canvas", timeout=30_000)
    page.wait_for_selector("[data-testid=slice-builder]", timeout=30_000)


def test_filter_link_reload_saved_slice_export_and_list(
    browser, big_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shots: Path
) -> None:  # noqa: ANN001
    home = tmp_path / "home"
    monkeypatch.setenv("MODALENS_HOME", str(home))
    before = tree_digest(big_run)
    frame = pd.read_parquet(big_run / "instances.parquet").sort_values("instance").reset_index(drop=True)
    want = frame[
        (frame["label"] >= 1)
        & frame["interaction_type"].isin(["dominance", "complement"])
        & frame["text"].str.lower().str.contains("great", regex=False)
    ]["instance"].tolist()
    assert 0 < len(want) < N

    errors: list[str] = []
    with LiveServer([big_run]) as server:
        page = watch(browser.new_page(viewport={"width": 1500, "height": 1000}, accept_downloads=True), errors)
        page.goto(server.url)
        wait_ready(page)

        # build the filter: label >= 1, type is dominance or complement, word contains "great"
        builder = page.locator("[data-testid=slice-builder]")
        add = page.locator("[data-testid=add-condition]")
        add.select_option("label")
        builder.locator(".condition[data-column=label] input[data-bound=min]").fill("1")
        add.select_option("interaction_type")
        types = builder.locator(".condition[data-column=interaction_type]")
        types.locator("[data-value=dominance]").click()
        types.locator("[data-value=complement]").click()
        add.select_option("text")
        builder.locator(".condition[data-column=text] input[type=search]").fill("GREAT")
        page.wait_for_function(
            f"() => document.querySelector('[data-testid=filter-count] b')?.textContent === '{len(want):,}'"
        )
        page.locator("[data-testid=apply-filter]").click()
        page.wait_for_function("() => window.__modalensSelection && window.__modalensSelection.selected")
        assert selected(page) == want
        q = query(page)
        assert q["slice"] == "label:1..;interaction_type=dominance,complement;text~GREAT"
        assert "sel" not in q  # the filter is enough
        assert q["run"] == "big"

        # open an instance and colour by error: both in the URL
        page.locator(".instance-row").nth(2).click()
        opened = focused(page)
        assert opened in want
        page.locator("[data-testid=color-by]").select_option("error")
        url_has = f"/open={opened}(&|$)/.test(location.search) && /color=error/.test(location.search)"
        page.wait_for_function(f"() => {url_has}")
        page.screenshot(path=str(shots / "slices-filter.png"), full_page=True)

        # a reload reproduces the selection, the open instance and the colouring
        page.reload()
        wait_ready(page)
        page.wait_for_function("() => window.__modalensSelection && window.__modalensSelection.selected")
        assert selected(page) == want
        assert focused(page) == opened
        assert page.locator("[data-testid=color-by]").input_value() == "error"
        assert f"{len(want):,} of {N:,} selected" in page.locator("[data-testid=selection-count]").inner_text()
        page.locator("[data-testid=instance-detail]").wait_for()
        # the builder shows the link's filter again
        assert builder.locator(".condition").count() == 3

        # the selection downloads as CSV: exactly the selected rows
        with page.expect_download() as dl:
            page.locator("[data-testid=export-csv]").click()
        got = pd.read_csv(io.BytesIO(Path(dl.value.path()).read_bytes()))
        assert got["instance"].tolist() == want
        assert {"id", "label", "prediction", "shapley_text", "shapley_audio", "shapley_vision"} <= set(got.columns)
        assert dl.value.suggested_filename == f"big-selection-{len(want)}.csv"

        # save it as a named slice
        page.locator("[data-testid=slice-name]").fill("great positives")
        page.locator("[data-testid=save-slice]").click()
        page.locator("[data-slice='great positives']").wait_for()

        # a filter that matches nothing says so, and offers to relax it
        add.select_option("id")
        builder.locator(".condition[data-column=id] input[type=search]").fill("no-such-id")
        page.locator("[data-testid=builder-no-match]").wait_for()
        page.locator("[data-testid=apply-filter]").click()
        msg = page.locator("[data-testid=no-match]")
        msg.wait_for()
        assert "No instance matches: label ≥ 1 and type is dominance or complement and word contains 'GREAT'" in (
            msg.inner_text()
        )
        assert "id starts with 'no-such-id'" in msg.inner_text()
        page.screenshot(path=str(shots / "slices-empty.png"), full_page=True)
        msg.locator("[data-relax='3']").click()  # drop the id condition: back to the saved filter
        page.wait_for_function(f"() => window.__modalensSelection.selected?.length === {len(want)}")

        # back/forward step between tabs
        page.locator("[data-tab=compare]").click()
        page.wait_for_function("() => location.search.includes('tab=compare')")
        page.go_back()
        page.wait_for_function("() => !location.search.includes('tab=compare')")
        page.locator("[data-tab=explore][aria-selected=true]").wait_for()
        assert selected(page) == want
        page.close()

    # the saved slice survives a restart; nothing was written inside the run
    assert tree_digest(big_run) == before
    assert [p.suffix for p in (home / "slices").iterdir()] == [".json"]
    with LiveServer([big_run]) as server:
        page = watch(browser.new_page(viewport={"width": 1500, "height": 1000}), errors)
        page.goto(server.url)
        wait_ready(page)
        # a selection too large for a link says so, and leaves no index list in the URL
        page.locator("[data-view=summary] [data-type=conflict]").click()
        page.locator("[data-testid=link-too-large]").wait_for()
        assert "sel" not in query(page) and "slice" not in query(page)

        page.locator("[data-slice='great positives']").click()
        page.wait_for_function(f"() => window.__modalensSelection.selected?.length === {len(want)}")
        assert selected(page) == want
        assert query(page)["slice"] == "label:1..;interaction_type=dominance,complement;text~GREAT"

        # type "dominance", then intersect with the slice's filter: no single filter says that, so the link holds
        # the indices as ranges, and a reload brings them back
        page.locator("[data-view=summary] [data-type=dominance]").click()
        page.wait_for_function("() => window.__modalensSelection.source === 'type: dominance'")
        page.locator("[data-testid=slice-builder] button", has_text="Intersect").click()
        both = [i for i in want if frame["interaction_type"][i] == "dominance"]
        assert 0 < len(both) < len(want)
        page.wait_for_function(f"() => window.__modalensSelection.selected?.length === {len(both)}")
        page.wait_for_function("() => new URLSearchParams(location.search).has('sel')")
        assert "slice" not in query(page)
        page.reload()
        wait_ready(page)
        page.wait_for_function("() => window.__modalensSelection && window.__modalensSelection.selected")
        assert selected(page) == both

        # the list holds all 3,000 rows: scroll to the end, and End opens the last one
        page.locator("[data-testid=clear-selection]").click()
        page.locator("[aria-label='sort instances']").select_option("id")
        vlist = page.locator(".instance-list .vlist")
        assert f"All instances ({N:,})" in page.locator(".instance-list .list-head").inner_text()
        vlist.evaluate("el => { el.scrollTop = el.scrollHeight; el.dispatchEvent(new Event('scroll')); }")
        last = page.locator(f".instance-row[data-row='{N - 1}']")
        last.wait_for()
        assert last.is_visible()
        last_id = sorted(frame["id"].tolist())[-1]
        assert last_id in last.inner_text()
        first_row = page.locator(".instance-row[data-row='0']")
        assert first_row.count() == 0  # windowed: the top rows left the page
        vlist.focus()
        page.keyboard.press("Home")
        page.wait_for_function("() => window.__modalensSelection.focused !== null")
        assert frame["id"][focused(page)] == sorted(frame["id"].tolist())[0]
        page.keyboard.press("ArrowDown")
        assert frame["id"][focused(page)] == sorted(frame["id"].tolist())[1]
        page.keyboard.press("End")
        last_index = int(frame.index[frame["id"] == last_id][0])
        page.wait_for_function(f"() => window.__modalensSelection.focused === {last_index}")
        page.close()
    assert not errors, errors


def test_exported_html_keeps_slices_in_the_browser_and_builds_the_csv(browser, big_run: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """No server: slices go to localStorage, the CSV is built in the page, the filter still goes into the URL."""
    from modalens.app.export import export_html

    out = export_html([big_run], tmp_path / "export.html", max_instances=N)
    frame = pd.read_parquet(big_run / "instances.parquet").sort_values("instance").reset_index(drop=True)
    want = frame.index[frame["label"] >= 2].tolist()
    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1500, "height": 1000}, accept_downloads=True)
    page = watch(context.new_page(), errors)
    page.goto(out.as_uri())
    wait_ready(page)
    page.locator("[data-testid=add-condition]").select_option("label")
    page.locator(".condition[data-column=label] input[data-bound=min]").fill("2")
    page.locator("[data-testid=apply-filter]").click()
    page.wait_for_function(f"() => window.__modalensSelection.selected?.length === {len(want)}")
    assert selected(page) == want
    with page.expect_download() as dl:
        page.locator("[data-testid=export-csv]").click()
    got = pd.read_csv(io.BytesIO(Path(dl.value.path()).read_bytes()))
    assert got["instance"].tolist() == want
    assert got["id"].tolist() == frame["id"][want].tolist()
    page.locator("[data-testid=slice-name]").fill("high labels")
    page.locator("[data-testid=save-slice]").click()
    page.locator("[data-slice='high labels']").wait_for()
    assert page.locator("[data-testid=export-parquet]").count() == 0  # Parquet needs the server
    page.reload()
    wait_ready(page)
    page.wait_for_function("() => window.__modalensSelection && window.__modalensSelection.selected")
    assert selected(page) == want  # the link (file://...?slice=label:2..) reproduces the selection
    page.locator("[data-slice='high labels']").wait_for()  # kept in this browser
    context.close()
    assert not errors, errors

"""The web app as a person uses it, in headless Debian Chromium: every view, a lasso, linked views, an instance."""

from __future__ import annotations

import json
import math
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from .conftest import LiveServer, watch

pytestmark = pytest.mark.browser


def api(server: LiveServer, path: str) -> dict:
    with urllib.request.urlopen(server.url + path) as r:  # noqa: S310 - local test server
        return json.loads(r.read())


def open_app(browser, server: LiveServer, errors: list[str]):  # noqa: ANN001, ANN201
    page = watch(browser.new_page(viewport={"width": 1500, "height": 1000}), errors)
    page.goto(server.url)
    page.wait_for_selector("[data-view=projection] canvas", timeout=30_000)
    page.wait_for_selector(".template-row", timeout=30_000)
    return page


def selection(page) -> list[int]:  # noqa: ANN001
    sel = page.evaluate(
        "() => { const s = window.__modalensSelection; return s && s.selected ? Array.from(s.selected) : null; }"
    )
    return sel


def count_text(page) -> str:  # noqa: ANN001
    return page.locator("[data-testid=selection-count]").inner_text()


def lasso(page, cx: float, cy: float, r: float) -> None:  # noqa: ANN001
    page.mouse.move(cx + r, cy)
    page.mouse.down()
    for k in range(1, 33):
        a = 2 * math.pi * k / 32
        page.mouse.move(cx + r * math.cos(a), cy + r * math.sin(a))
    page.mouse.up()


def test_every_view_linked_selection_and_instance(browser, live: LiveServer, shots: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    page = open_app(browser, live, errors)
    table = api(live, "api/runs/late-fusion/instances")
    n = table["n"]
    page.screenshot(path=str(shots / "01-explore.png"), full_page=True)
    assert f"All {n:,} instances" in count_text(page)
    assert page.locator("[data-view=summary] .metric-value").first.inner_text().replace(",", "") == str(n)

    # lasso a region in the middle of the projection: every view follows the selection
    box = page.locator("[data-testid=scatter-overlay]").bounding_box()
    lasso(page, box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, min(box["width"], box["height"]) * 0.18)
    page.wait_for_function("() => window.__modalensSelection && window.__modalensSelection.selected")
    sel = selection(page)
    assert 0 < len(sel) < n
    assert f"{len(sel):,} of {n:,} selected" in count_text(page)
    # Summary shows the selection's own MAE, recomputed here from the API's table
    label, pred = np.array(table["columns"]["label"]), np.array(table["columns"]["prediction"])
    mae = np.mean(np.abs(pred[sel] - label[sel]))
    metrics = page.locator("[data-view=summary] .metric")
    assert metrics.nth(0).locator(".metric-value").inner_text().replace(",", "") == str(len(sel))
    assert float(metrics.nth(1).locator(".metric-value").inner_text()) == pytest.approx(mae, abs=0.006)
    # the lassoed points are the ones inside a disc in projection space: a compact region
    xy = np.array([table["x"], table["y"]]).T
    inside = xy[sel]
    assert (
        np.linalg.norm(inside - inside.mean(axis=0), axis=1).max() < np.linalg.norm(xy - xy.mean(axis=0), axis=1).max()
    )
    # Templates count members inside the selection; the instance list lists only selected instances
    assert page.locator(".support-text em").count() > 0
    listed = [int(x) for x in page.locator(".instance-row").evaluate_all("els => els.map(e => e.dataset.instance)")]
    assert listed and set(listed) <= set(sel)
    assert f"Selected instances ({len(sel):,})" in page.locator(".instance-list .list-head").inner_text()
    page.screenshot(path=str(shots / "02-lasso.png"), full_page=True)

    # open the worst instance of the selection
    page.locator(".instance-row").first.click()
    detail = page.locator("[data-testid=instance-detail]")
    detail.wait_for()
    first = listed[0]
    doc = api(live, f"api/runs/late-fusion/instances/{first}")
    assert doc["row"]["id"] in detail.locator("h3").inner_text()
    words = detail.locator(".word")
    assert words.count() == len(doc["words"]["text"])
    assert detail.locator("[data-testid=waterfall]").is_visible()
    assert detail.locator("[data-testid=interaction-matrix] rect").count() == 9
    assert detail.locator(".track-label").count() == len(doc["tracks"])
    page.screenshot(path=str(shots / "03-instance.png"), full_page=True)

    # an instance with media: thumbnail and audio player
    page.locator("[data-testid=clear-selection]").click()
    assert "no selection" in count_text(page)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.locator("[data-view=summary] [data-type=conflict]").click()
    conflict = [i for i, t in enumerate(table["columns"]["interaction_type"]) if t == "conflict"]
    assert selection(page) == conflict

    # clicking a template selects exactly its members
    templates = api(live, "api/runs/late-fusion/templates")["templates"]
    row = page.locator(".template-row").first
    tid = int(row.get_attribute("data-template"))
    row.click()
    members = next(t["members"] for t in templates if t["template_id"] == tid)
    assert selection(page) == sorted(members)
    assert f"template #{tid}" in count_text(page)
    # polarity filter
    page.get_by_label("filter templates by polarity").select_option("negative")
    shown = page.locator(".template-row").count()
    assert shown == min(150, sum(t["polarity"] == "negative" for t in templates))
    page.get_by_label("filter templates by polarity").select_option("all")

    # colour by absolute error: the legend follows
    page.get_by_test_id("color-by").select_option("abs_error")
    assert "Absolute error" in page.locator("[data-view=projection] .legend").inner_text()
    page.screenshot(path=str(shots / "04-template-abs-error.png"), full_page=True)

    # click a point in the dense centre of the cloud: it opens that instance
    page.keyboard.press("Escape")
    before = page.evaluate("() => window.__modalensSelection.focused")
    page.evaluate("() => window.scrollTo(0, 0)")
    box = page.locator("[data-testid=scatter-overlay]").bounding_box()
    # move around the centre until the pointer is over a point (hover shows its tooltip)
    for k in range(60):
        r = 2.0 * k
        page.mouse.move(
            box["x"] + box["width"] * 0.5 + r * math.cos(k), box["y"] + box["height"] * 0.5 + r * math.sin(k)
        )
        if page.evaluate("() => window.__modalensSelection.hovered") is not None:
            break
    hovered = page.evaluate("() => window.__modalensSelection.hovered")
    assert table["columns"]["id"][hovered] in page.locator("[data-view=projection] .tooltip").inner_text()
    page.mouse.down()
    page.mouse.up()
    page.wait_for_function("(b) => window.__modalensSelection.focused !== b", arg=before) if hovered != before else None
    focused = page.evaluate("() => window.__modalensSelection.focused")
    assert focused == hovered
    page.wait_for_function(
        "(id) => document.querySelector('[data-testid=instance-detail] h3')?.textContent.includes(id)",
        arg=table["columns"]["id"][focused],
    )

    # Compare tab: the disagreement count matches the API; a row shows both runs' Shapley values
    page.locator("[data-tab=compare]").click()
    page.wait_for_selector("[data-testid=n-disagree]")
    comp = api(live, "api/compare/late-fusion/early-fusion")
    assert page.locator("[data-testid=n-disagree]").inner_text().replace(",", "") == str(comp["n_disagree"])
    page.locator(".compare-table tbody tr").first.click()
    assert page.locator("[data-testid=pair-shapley]").is_visible()
    page.locator("[data-testid=instance-detail]").wait_for()
    page.screenshot(path=str(shots / "05-compare.png"), full_page=True)
    assert not errors, errors


def test_instance_media(browser, live: LiveServer, shots: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    page = open_app(browser, live, errors)
    # the instance list sorted by error shows instances from the whole run; focus the first with media via a point
    page.locator("[data-view=summary] [data-type=dominance]").click()
    rows = page.locator(".instance-row")
    ids = rows.evaluate_all("els => els.map(e => Number(e.dataset.instance))")
    assert ids
    # media exist for the first 24 instances of the fixture; select them through the template API path
    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    target = next((i for i in ids if i < 24), None)
    assert target is not None, "the fixture's seed puts media instances among the listed ones"
    rows.nth(ids.index(target)).click()
    detail = page.locator("[data-testid=instance-detail]")
    detail.wait_for()
    img = detail.locator("img.thumb")
    img.wait_for()
    assert page.evaluate("(el) => el.complete && el.naturalWidth", img.element_handle()) == 48
    assert detail.locator("audio").count() == 1
    detail.screenshot(path=str(shots / "06-instance-media.png"))
    assert not errors, errors


def test_error_state_says_what_to_do(browser, tmp_path: Path, shots: Path) -> None:  # noqa: ANN001
    from app.fixtures import write_interaction_run

    run = write_interaction_run(tmp_path / "broken", 20)
    manifest = json.loads((run / "manifest.json").read_text())
    (run / manifest["tables"]["instances"]["file"]).write_bytes(b"not parquet")
    with LiveServer([run]) as server:
        errors: list[str] = []
        page = watch(browser.new_page(viewport={"width": 1200, "height": 700}), errors)
        page.goto(server.url)
        alert = page.get_by_role("alert")
        alert.wait_for(timeout=20_000)
        text = alert.inner_text()
        assert "cannot be read" in text and "instances" in text
        assert str(tmp_path) not in text  # the server's message names the run, not its path on the server
        page.screenshot(path=str(shots / "07-error.png"))
        # the failed request itself is the one console error; the page breaks no policy
        assert not [e for e in errors if "CSP" in e or "Content Security Policy" in e], errors


def test_keyboard_focus_reaches_controls(browser, live: LiveServer) -> None:  # noqa: ANN001
    page = open_app(browser, live, [])
    seen = set()
    for _ in range(40):
        page.keyboard.press("Tab")
        seen.add(page.evaluate("() => { const e = document.activeElement; return e ? e.className : ''; }"))
    # Tab alone reaches the interaction-type rows, the projection's controls and the template rows
    assert any("bar-row" in s for s in seen) and any("template-row" in s for s in seen)
    # Enter on a focused interaction-type row selects it
    page.locator("[data-view=summary] [data-type=dominance]").focus()
    page.keyboard.press("Enter")
    assert "type: dominance" in count_text(page)


@pytest.fixture(scope="module")
def feature_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app.fixtures import write_feature_run

    return write_feature_run(tmp_path_factory.mktemp("feature-run") / "clip-features")


def test_features_view(browser, feature_run: Path, shots: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    with LiveServer([feature_run]) as server:
        page = watch(browser.new_page(viewport={"width": 1500, "height": 1000}), errors)
        page.goto(server.url)
        page.wait_for_selector("[data-testid=mds-histogram]", timeout=30_000)
        doc = api(server, "api/runs/clip-features/features")
        mds = np.array(doc["columns"]["mds"], dtype=float)
        live = np.isfinite(mds)
        rows = page.locator("[data-testid=feature-table] .feature-row[data-feature]")
        assert rows.count() == min(len(mds), 520 // 26 + 8)  # virtualised: only the rows in view + overscan exist
        assert f"{len(mds):,} features shown" in page.locator("[data-view=features]").inner_text()
        # filter by category: the note counts exactly that category's features
        page.get_by_test_id("feature-category").select_option("vision")
        n_vision = sum(c == "vision" for c in doc["columns"]["category"])
        assert f"{n_vision:,} features shown" in page.locator("[data-view=features]").inner_text()
        page.get_by_test_id("feature-category").select_option("all")
        # click the tallest histogram bin: the table keeps only the features in that MDS range
        counts = np.histogram(mds[live], bins=40, range=(0, 1))[0]
        b = int(np.argmax(counts))
        page.locator("[data-testid=mds-histogram] g").nth(b).click()
        assert f"{counts[b]:,} features shown" in page.locator("[data-view=features]").inner_text()
        rows.first.click()
        card = page.locator("[data-testid=feature-card]")
        card.wait_for()
        img = page.locator("[data-view=feature-card] .top-samples img").first
        img.wait_for()
        page.wait_for_function("(el) => el.complete && el.naturalWidth > 0", arg=img.element_handle())
        page.screenshot(path=str(shots / "08-features.png"), full_page=True)
    assert not errors, errors


def test_exported_html_works_without_a_server(
    browser, browser_runs: dict[str, Path], tmp_path: Path, shots: Path
) -> None:  # noqa: ANN001
    from modalens.app.export import export_html

    out = export_html([browser_runs["a"], browser_runs["b"]], tmp_path / "export.html", max_instances=40)
    errors: list[str] = []
    page = watch(browser.new_page(viewport={"width": 1500, "height": 1000}), errors)
    # no network at all: any request the page makes would fail this test
    page.route(
        "**/*",
        lambda route: route.abort() if not route.request.url.startswith(("file:", "data:")) else route.continue_(),
    )
    page.goto(out.as_uri())
    page.wait_for_selector(".template-row", timeout=30_000)
    page.locator(".template-row").first.click()
    assert "template #" in count_text(page)
    page.locator(".instance-row").first.click()
    page.locator("[data-testid=instance-detail]").wait_for()
    page.locator("[data-tab=compare]").click()
    page.wait_for_selector("[data-testid=n-disagree]")
    page.screenshot(path=str(shots / "09-export.png"), full_page=True)
    assert not errors, errors


class NotebookPage:
    """A page served from its own origin, as Jupyter serves a notebook (``http://<host>:<port>/notebook.html``)."""

    def __init__(self, host: str, html: str) -> None:
        import http.server

        from .conftest import free_port

        body = html.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, free_port()), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/notebook.html"

    def __enter__(self) -> NotebookPage:
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_notebook_embeds_render(browser, browser_runs: dict[str, Path], shots: Path) -> None:  # noqa: ANN001
    """What a notebook cell shows: the inline (srcdoc) frame and the background-server frame both run the app, the
    latter inside a page from a loopback origin (as Jupyter's), which the app's frame-ancestors policy allows."""
    from modalens.app.notebook import show

    for mode in ("inline", "server"):
        view = show(browser_runs["a"], mode=mode, height=700, max_instances=10)
        errors: list[str] = []
        page = watch(browser.new_page(viewport={"width": 1400, "height": 800}), errors)
        html = f"<html><body><h1>notebook output</h1>{view._repr_html_()}</body></html>"
        with NotebookPage("127.0.0.1", html) as notebook:
            page.goto(notebook.url)
            frame = page.frame_locator("iframe")
            frame.locator(".template-row").first.wait_for(timeout=30_000)
            frame.locator("[data-view=summary] [data-type=conflict]").click()
            assert "selected" in frame.locator("[data-testid=selection-count]").inner_text()
            page.screenshot(path=str(shots / f"10-notebook-{mode}.png"))
        assert not errors, errors
        page.close()


def test_other_origins_cannot_frame_the_app(browser, browser_runs: dict[str, Path]) -> None:  # noqa: ANN001
    """A page from an origin that is not in frame-ancestors (127.0.0.2 here, as any web site) gets no app."""
    from modalens.app.notebook import show

    view = show(browser_runs["a"], mode="server", height=400)
    errors: list[str] = []
    page = watch(browser.new_page(viewport={"width": 1000, "height": 600}), errors)
    with NotebookPage("127.0.0.2", f"<html><body>{view._repr_html_()}</body></html>") as other:
        page.goto(other.url)
        page.wait_for_timeout(2500)
        frame = page.frames[1]
        assert frame.locator(".template-row").count() == 0
    assert any("frame-ancestors" in e for e in errors), errors
    page.close()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run over the embedded demo set: the MulT reference model on the first 96 test utterances."""
    import modalens as ml
    from modalens.data.demo import load_demo
    from modalens.models.training import load_pretrained

    data = load_demo()
    predictor = load_pretrained("mult").to_predictor()
    predictor.masker = ml.Masker("mean").fit(data.split("train"))
    test = data.split("test").take(range(96))
    explanation = ml.explain(predictor, test, n_permutations=2, projection="pca", progress=False)
    return explanation.save(tmp_path_factory.mktemp("demo") / "demo")


def test_demo_run_end_to_end(browser, demo_run: Path, shots: Path) -> None:  # noqa: ANN001
    errors: list[str] = []
    with LiveServer([demo_run]) as server:
        page = open_app(browser, server, errors)
        table = api(server, "api/runs/demo/instances")
        assert table["n"] == 96 and "All 96 instances" in count_text(page)
        label, pred = np.array(table["columns"]["label"]), np.array(table["columns"]["prediction"])
        mae = page.locator("[data-view=summary] .metric").nth(1).locator(".metric-value").inner_text()
        assert float(mae) == pytest.approx(np.mean(np.abs(pred - label)), abs=0.006)
        # the type bar with the most instances selects exactly them
        types = table["columns"]["interaction_type"]
        top = max(set(types), key=types.count)
        kind = "dominance" if top.startswith("dominance") else top
        page.locator(f"[data-view=summary] [data-type={kind}]").click()
        assert selection(page) == [i for i, t in enumerate(types) if t.split(":")[0] == kind]
        # open an instance: its words, the face thumbnail and the synthesised speech (test split keeps the clips)
        page.locator(".instance-row").first.click()
        detail = page.locator("[data-testid=instance-detail]")
        detail.wait_for()
        first = int(page.locator(".instance-row").first.get_attribute("data-instance"))
        doc = api(server, f"api/runs/demo/instances/{first}")
        assert detail.locator(".word").count() == len(doc["words"]["text"]) > 0
        img = detail.locator("img.thumb")
        img.wait_for()
        assert page.evaluate("(el) => el.complete && el.naturalWidth", img.element_handle()) == 48
        assert detail.locator("audio").count() == 1
        page.screenshot(path=str(shots / "07-demo-run.png"), full_page=True)
    assert not errors, errors

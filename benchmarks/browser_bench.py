"""Browser benchmark of the modalens app on a large interaction run (default 50,000 instances).

Drives Debian's headless Chromium (software WebGL, no GPU) through Playwright against a live server and reports,
as JSON on stdout (and in ``--out``):

- ``server_instances_s``: first ``/api/runs/{run}/instances`` response (builds and caches the columnar document)
- ``load_s``: navigation until the projection, summary and templates are all on screen (median of warm loads;
  ``load_first_s``: the first, which also waits for the server to build each document once)
- ``lasso_ms``: pointer-up of a lasso until the selection bar shows the new count (all views re-rendered)
- ``color_by_ms``: switching the colour-by channel until the next frame is painted
- ``hover_ms``: median pointer move over the scatter until the hovered point is in the shared state
- ``zoom_frame_ms``: median time of a wheel-zoom step (WebGL redraw of every point)
- ``instance_open_ms``: clicking an instance until its detail view is shown, cold: the page's cache of detail
  documents is emptied before each click, and Playwright's click moves the pointer and presses at once, so the
  ~80 ms hover prefetch never starts first (``instance_open_first_ms``: the first one, which also builds the
  server's per-instance indexes)
- ``instance_open_hovered_ms``: the same click after the pointer has rested 300 ms on the row (the app fetches
  the hovered instance's detail after 80 ms, so the click renders from memory); ``instance_arrow_ms``: ArrowDown
  in the list 300 ms after the previous open (its neighbours are fetched ahead). Both with the cache emptied first.
  ``inpage`` has the three in the page (``instance_open_ms``, ``instance_open_hovered_ms``, ``instance_arrow_ms``:
  event to the header shown plus one frame), without the Playwright click's own checks and polling.

The ``*_ms`` figures above are wall time seen by Playwright (each includes its round trips and two animation frames,
about 35 ms, so none can read below that). The ``inpage`` figures time the same interactions inside the page, from
the moment the event reaches the page (a capturing listener) until the next frame has been produced
(two ``requestAnimationFrame`` and a task): what the app itself costs, with 17-33 ms of frame alignment included.
``<interaction>_settled_ms``: from the same moment until the page is next idle (``requestIdleCallback``), i.e. every
view has caught up, including those that large runs update in a deferred render after the first frames.

Run: ``.venv/bin/python benchmarks/browser_bench.py --n 50000 --json`` (``--n 500000`` builds a half-million
instance run first: a few minutes). Reuse a run with ``--run DIR``; A/B another build with ``--static DIR``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="instances in the synthetic run")
    parser.add_argument("--run", type=Path, default=None, help="an existing run directory instead of a synthetic one")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--static", type=Path, default=None, help="serve this built web bundle instead of the package's (A/B runs)"
    )
    parser.add_argument(
        "--json",
        nargs="?",
        const="",
        default=None,
        metavar="LABEL",
        help="also record the result in benchmarks/results/browser-<n>[-LABEL].json",
    )
    args = parser.parse_args()
    if args.static is not None:
        import modalens.app.server as server_module

        if not (args.static / "index.html").is_file():
            parser.error(f"--static {args.static}: no index.html (build with vite build --outDir)")
        server_module.STATIC_DIR = args.static.resolve()

    from playwright.sync_api import sync_playwright

    from app.fixtures import write_interaction_run
    from browser.conftest import CHROMIUM, CHROMIUM_ARGS, LiveServer

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = args.run or write_interaction_run(Path(tmp) / "bench", args.n, media_count=50)
        build_s = time.perf_counter() - t0
        with LiveServer([run]) as server, sync_playwright() as p:
            rid = json.loads(urllib.request.urlopen(server.url + "api/runs").read())[0]["id"]  # noqa: S310
            t0 = time.perf_counter()
            body = urllib.request.urlopen(server.url + f"api/runs/{rid}/instances").read()  # noqa: S310
            server_s = time.perf_counter() - t0
            n = json.loads(body)["n"]
            json_mb = len(body) / 1e6
            del body
            t0 = time.perf_counter()
            binary = urllib.request.urlopen(server.url + f"api/runs/{rid}/instances?format=binary").read()  # noqa: S310
            binary_s = time.perf_counter() - t0
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            results = {
                "n_instances": n,
                "fixture_build_s": round(build_s, 2),
                # first request of each form (the server builds and caches the document): JSON (which also
                # reads the run's tables), then the binary form the app loads
                "server_instances_s": round(server_s, 3),
                "server_instances_binary_s": round(binary_s, 3),
                "instances_json_mb": round(json_mb, 2),
                "instances_binary_mb": round(len(binary) / 1e6, 2),
            }
            loads, slow = [], []
            page.on(
                "requestfinished", lambda r: slow.append((len(loads), r.timing["responseEnd"], r.url.split("/", 3)[-1]))
            )
            # the first load also waits for the server to build each document once; the rest are warm
            for _ in range(1 + max(1, args.repeats // 2)):
                t0 = time.perf_counter()
                page.goto(server.url)
                page.wait_for_selector("[data-view=projection] canvas", timeout=300_000)
                page.wait_for_selector(".template-row", timeout=300_000)
                page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                loads.append(time.perf_counter() - t0)
            results["load_first_s"] = round(loads[0], 3)
            results["load_s"] = round(statistics.median(loads[1:]), 3)
            for name, which in (("first", 0), ("last", len(loads) - 1)):
                top = sorted((ms, u) for k, ms, u in slow if k == which)[::-1][:5]
                results[f"{name}_load_slowest_requests_ms"] = {u: round(ms) for ms, u in top}
            box = page.locator("[data-testid=scatter-overlay]").bounding_box()
            cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            results["lasso_ms"], results["lasso_selected"] = _lasso(page, cx, cy, box, args.repeats)
            results["color_by_ms"] = _color_by(page, args.repeats)
            results["hover_ms"] = _hover(page, cx, cy, box)
            results["zoom_frame_ms"] = _zoom(page, cx, cy)
            results["instance_open_first_ms"], results["instance_open_ms"] = _open_instance(page, args.repeats)
            results["instance_open_hovered_ms"] = _open_instance(page, args.repeats, dwell_ms=300)[1]
            results["instance_arrow_ms"] = _arrow_instance(page, args.repeats)
            page.keyboard.press("Escape")
            results["inpage"] = _inpage(page)
            results["page_fetch_decode_ms"] = page.evaluate("() => window.__modalensLoadMs ?? null")
            browser.close()
    results["device"] = "headless Chromium, SwiftShader WebGL (CPU), " + f"{_cpus()} CPUs"
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.json is not None:
        label = f"-{args.json}" if args.json else ""
        (ROOT / "benchmarks" / "results" / f"browser-{n}{label}.json").write_text(text + "\n")


# In-page timing: a capturing listener on window sees the event before the app does and stops the clock when the
# second frame after it has been produced (so a redraw React defers past the first frame is counted).
ARM = """
([type, key]) => {
  const d = (window.__benchDurations ??= {});
  window.addEventListener(type, () => {
    const t0 = performance.now();
    // two frames: the app draws the scatter in an effect, which React may run after the first frame
    const done = () => (d[key] ??= []).push(performance.now() - t0);
    requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(done, 0)));
    // settled: every view has caught up (deferred renders included) once the page is next idle
    const settled = () => (d[key + "_settled"] ??= []).push(performance.now() - t0);
    requestAnimationFrame(() => requestAnimationFrame(() => requestIdleCallback(settled, { timeout: 5000 })));
  }, { capture: true, once: true });
}
"""


def _arm(page, event: str, key: str) -> None:  # noqa: ANN001
    page.evaluate(ARM, [event, key])


def _inpage(page) -> dict:  # noqa: ANN001
    durations = page.evaluate("() => window.__benchDurations ?? {}")
    return {f"{k}_ms": round(statistics.median(v), 1) for k, v in durations.items()} | {
        f"{k}_max_ms": round(max(v), 1) for k, v in durations.items() if k == "lasso"
    }


def _frame(page) -> None:  # noqa: ANN001
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def _lasso(page, cx: float, cy: float, box: dict, repeats: int) -> tuple[float, int]:  # noqa: ANN001
    times, count = [], 0
    for k in range(repeats):
        r = min(box["width"], box["height"]) * (0.15 + 0.03 * k)
        page.keyboard.press("Escape")
        page.mouse.move(cx + r, cy)
        page.mouse.down()
        for j in range(1, 41):
            a = 2 * math.pi * j / 40
            page.mouse.move(cx + r * math.cos(a), cy + r * math.sin(a))
        prev = page.locator("[data-testid=selection-count]").inner_text()
        _arm(page, "pointerup", "lasso")
        t0 = time.perf_counter()
        page.mouse.up()
        page.wait_for_function(
            "(p) => document.querySelector('[data-testid=selection-count]').innerText !== p", arg=prev
        )
        _frame(page)
        times.append((time.perf_counter() - t0) * 1000)
        count = len(page.evaluate("() => Array.from(window.__modalensSelection.selected || [])"))
    return round(statistics.median(times), 1), count


def _color_by(page, repeats: int) -> float:  # noqa: ANN001
    times = []
    for k in range(repeats):
        value = ["abs_error", "type", "prediction", "dominant", "error"][k % 5]
        _arm(page, "change", "color_by")
        t0 = time.perf_counter()
        page.get_by_test_id("color-by").select_option(value)
        _frame(page)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


def _hover(page, cx: float, cy: float, box: dict) -> float:  # noqa: ANN001
    times = []
    for k in range(30):
        x = cx + (k - 15) * box["width"] / 60
        _arm(page, "pointermove", "hover")
        t0 = time.perf_counter()
        page.mouse.move(x, cy + 5 * math.sin(k))
        _frame(page)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


def _zoom(page, cx: float, cy: float) -> float:  # noqa: ANN001
    page.mouse.move(cx, cy)
    times = []
    for k in range(12):
        _arm(page, "wheel", "zoom_frame")
        t0 = time.perf_counter()
        page.mouse.wheel(0, -120 if k < 6 else 120)
        _frame(page)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


CLEAR_DETAILS = "() => window.__modalensDetailCache?.clear()"
SHOWN = "(i) => document.querySelector('[data-testid=instance-detail] .sub')?.textContent === '#' + i"
# in-page open: from the event reaching the page until instance `i`'s header is in the detail view and the next
# frame has been produced (no Playwright round trips; the wall figure includes the click's actionability checks)
ARM_OPEN = """
([type, key, i]) => {
  const d = (window.__benchDurations ??= {});
  window.addEventListener(type, () => {
    const t0 = performance.now();
    const shown = () => document.querySelector('[data-testid=instance-detail] .sub')?.textContent === '#' + i;
    const done = () => requestAnimationFrame(() => setTimeout(() => (d[key] ??= []).push(performance.now() - t0), 0));
    if (shown()) return done();
    const mo = new MutationObserver(() => shown() && (mo.disconnect(), done()));
    mo.observe(document.body, { subtree: true, childList: true, characterData: true });
  }, { capture: true, once: true });
}
"""


def _open_instance(page, repeats: int, dwell_ms: int = 0) -> tuple[float, float]:  # noqa: ANN001
    """(first open, median of the next ``repeats``): the first builds the server's per-instance indexes. The detail
    cache is emptied before each click; with ``dwell_ms`` the pointer rests on the row that long before the click
    (the clock starts at the click)."""
    times = []
    rows = page.locator(".instance-row")
    for k in range(repeats + 1):
        row = rows.nth(k + 1)
        iid = row.get_attribute("data-instance")
        page.evaluate(CLEAR_DETAILS)
        if dwell_ms:
            row.hover()
            page.wait_for_timeout(dwell_ms)
        if k:
            page.evaluate(ARM_OPEN, ["click", "instance_open_hovered" if dwell_ms else "instance_open", iid])
        t0 = time.perf_counter()
        row.click()
        page.wait_for_function(SHOWN, arg=iid, timeout=300_000)
        times.append((time.perf_counter() - t0) * 1000)
    return round(times[0], 1), round(statistics.median(times[1:]), 1)


def _arrow_instance(page, repeats: int) -> float:  # noqa: ANN001
    """Median ArrowDown in the list until the next row's detail is shown, 300 ms after the previous open."""
    rows = page.locator(".instance-row")
    page.evaluate(CLEAR_DETAILS)
    first = rows.nth(1)
    first.click()
    page.wait_for_function(SHOWN, arg=first.get_attribute("data-instance"), timeout=300_000)
    times = []
    for k in range(repeats):
        nxt = rows.nth(k + 2).get_attribute("data-instance")
        page.wait_for_timeout(300)
        page.evaluate(ARM_OPEN, ["keydown", "instance_arrow", nxt])
        t0 = time.perf_counter()
        page.keyboard.press("ArrowDown")
        page.wait_for_function(SHOWN, arg=nxt, timeout=300_000)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


def _cpus() -> int:
    return os.cpu_count() or 1


if __name__ == "__main__":
    main()

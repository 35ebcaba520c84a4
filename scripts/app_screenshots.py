"""Screenshots of every view of the app for docs/app.md, taken in headless Chromium against a live server.

Usage (the runs are whatever you want pictured; docs/app.md was made with these)::

    modalens demo --no-serve --out runs/demo
    modalens explain src/modalens/data/demo/demo.npz --model demo:late_lstm --name "late-fusion LSTM" \\
        --n-permutations 4 --out runs/demo-late
    python scripts/app_screenshots.py runs/demo runs/demo-late --model demo --measures runs/emap-pid --out docs/img

``--measures`` names a run explained with ``--emap --pid`` (the Summary's EMAP and PID panels); the long
instance is a 100-step synthetic run built here (tests/app/fixtures.py). Images are JPEG to keep the repository
small. Nothing is written into the runs.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="interaction runs; the first is pictured, all are compared")
    parser.add_argument("--model", default=None, help="model spec for the live what-if (serve --model)")
    parser.add_argument("--measures", type=Path, default=None, help="a run with EMAP and PID")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from app.fixtures import write_interaction_run
    from browser.conftest import CHROMIUM, CHROMIUM_ARGS

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        main_run = args.runs[0].resolve()
        with served(args.runs, args.model) as url:
            rid = main_run.name
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            shoot_explore(page, url, rid, args.out)
            shoot_instance(page, url, rid, args.out, live=bool(args.model))
            shoot_glyphs(page, url, rid, args.out)
            if len(args.runs) > 1:
                shoot_compare(page, url, rid, args.out)
            page.close()
        if args.measures:
            with served([args.measures]) as url:
                page = browser.new_page(viewport={"width": 1280, "height": 2300})
                page.goto(f"{url}?run={args.measures.resolve().name}")
                summary = page.locator("[data-view=summary]")
                summary.locator("text=redundancy").first.wait_for(timeout=60_000)
                save(summary, args.out / "app-summary-measures.jpg")
                page.close()
        long_run = write_interaction_run(Path(tmp) / "long", 40, steps=100, min_words=90, media_count=40)
        with served([long_run]) as url:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{url}?run=long&open=0")
            detail = page.locator("[data-testid=instance-detail]")
            detail.wait_for(timeout=60_000)
            page.locator("[data-testid=tracks]").wait_for()
            save(page.locator("[data-view=instance]"), args.out / "app-instance-100-steps.jpg")
            page.close()
        export = Path(tmp) / "export.html"
        subprocess.run(  # noqa: S603 - our own CLI on our own files
            [sys.executable, "-m", "modalens", "export", str(main_run), "--html", str(export)], check=True
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(export.as_uri())
        page.locator("[data-view=projection] canvas").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(args.out / "app-export-file.jpg"), type="jpeg", quality=80)
        browser.close()
    for f in sorted(args.out.glob("app-*.jpg")):
        print(f"{f.relative_to(ROOT) if f.is_relative_to(ROOT) else f}  {f.stat().st_size / 1e3:.0f} kB")


@contextlib.contextmanager
def served(runs: list[Path], model: str | None = None) -> Iterator[str]:
    """``modalens serve`` (the real command, with ``--model`` when given) on a free port; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "modalens", "serve", *map(str, runs), "--no-open", "--port", str(port)]
    proc = subprocess.Popen([*cmd, *(["--model", model] if model else [])])  # noqa: S603 - our own CLI
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(url + "api/runs", timeout=2).read()  # noqa: S310 - loopback
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"modalens serve did not start: {' '.join(cmd)}") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def save(locator, path: Path) -> None:  # noqa: ANN001 - a Playwright locator
    # its top just below the sticky selection bar, so the bar does not cover the panel's title
    locator.evaluate("el => window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - 48)")
    locator.page.wait_for_timeout(600)
    locator.screenshot(path=str(path), type="jpeg", quality=80)


def settle(page) -> None:  # noqa: ANN001
    page.locator("[data-view=projection] canvas").first.wait_for(timeout=60_000)
    page.locator(".template-row").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1200)


def shoot_explore(page, url: str, rid: str, out: Path) -> None:  # noqa: ANN001
    page.goto(f"{url}?run={rid}")
    settle(page)
    page.screenshot(path=str(out / "app-explore.jpg"), type="jpeg", quality=80)
    # a slice from a link: conflicts with an absolute error of at least 1
    page.goto(f"{url}?run={rid}&slice=interaction_type%3Dconflict%2C%3Babs_error%3A1..")
    settle(page)
    page.screenshot(path=str(out / "app-slice.jpg"), type="jpeg", quality=80)
    save(page.locator("[data-view=templates]"), out / "app-templates-in-slice.jpg")


def shoot_instance(page, url: str, rid: str, out: Path, *, live: bool) -> None:  # noqa: ANN001
    page.goto(f"{url}?run={rid}&open=5")
    settle(page)
    page.locator("[data-testid=instance-detail]").wait_for(timeout=60_000)
    save(page.locator("[data-view=instance]"), out / "app-instance.jpg")
    if live:
        page.locator("[data-testid=keep-audio]").uncheck()
        page.locator("[data-testid=whatif-prediction]").wait_for(timeout=30_000)
        page.wait_for_timeout(800)
        save(page.locator("[data-testid=whatif-live]"), out / "app-whatif.jpg")


def shoot_glyphs(page, url: str, rid: str, out: Path) -> None:  # noqa: ANN001
    page.goto(f"{url}?run={rid}")
    settle(page)
    box = page.locator("[data-testid=scatter-overlay]").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.45)
    for _ in range(3):  # about 100 points in view: glyphs
        page.mouse.wheel(0, -240)
        page.wait_for_timeout(300)
    page.wait_for_timeout(1500)
    save(page.locator("[data-view=projection]"), out / "app-glyphs.jpg")


def shoot_compare(page, url: str, rid: str, out: Path) -> None:  # noqa: ANN001
    page.goto(f"{url}?run={rid}")
    settle(page)
    page.locator("[data-tab=compare]").click()
    page.locator("[data-testid=transition-matrix]").wait_for(timeout=60_000)
    page.wait_for_timeout(800)
    save(page.locator("[data-testid=compare-many]"), out / "app-compare.jpg")


if __name__ == "__main__":
    main()

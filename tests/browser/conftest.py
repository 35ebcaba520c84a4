"""Fixtures for the browser tests: a live modalens server on a free port and a headless Debian Chromium page.

Chromium comes from Debian (``apt-get install -y chromium``), driven by the Python ``playwright`` package; the
tests are skipped, with the reason, when either is missing. Screenshots go to ``$MODALENS_SCREENSHOTS`` when set,
else to the test's tmp dir.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHROMIUM = os.environ.get("MODALENS_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # WebGL through SwiftShader (software) when there is no GPU
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
]


CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`));
"""


def watch(page, errors: list[str]):  # noqa: ANN001, ANN201 - a Playwright page
    """Collect the page's uncaught errors, console errors and Content-Security-Policy violations (in every frame)."""
    page.add_init_script(CSP_WATCH)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return page


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving :func:`modalens.app.server.create_app` in a background thread."""

    def __init__(self, run_dirs: list[Path]) -> None:
        import uvicorn

        from modalens.app.server import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        config = uvicorn.Config(create_app(run_dirs), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("modalens test server did not start within 20 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    # On CI the browser is a requirement (make test installs it): a missing one fails instead of skipping.
    missing = pytest.fail if os.environ.get("CI") else pytest.skip
    try:
        import playwright.sync_api
    except ImportError:
        missing("pip install playwright (the Python package; make test installs it)")
    if not Path(CHROMIUM).exists():
        missing(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (make test installs it)")
    playwright = playwright.sync_api
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("MODALENS_SCREENSHOTS", tmp_path / "screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="session")
def browser_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two runs of two models on the same dataset, plus one written without a projection table."""
    from app.fixtures import write_interaction_run

    root = tmp_path_factory.mktemp("browser-runs")
    return {
        "a": write_interaction_run(root / "late-fusion", 1500, model_seed=0, model_name="late-fusion"),
        "b": write_interaction_run(root / "early-fusion", 1500, model_seed=1, model_name="early-fusion"),
    }


@pytest.fixture
def live(browser_runs: dict[str, Path]) -> Iterator[LiveServer]:
    with LiveServer([browser_runs["a"], browser_runs["b"]]) as server:
        yield server

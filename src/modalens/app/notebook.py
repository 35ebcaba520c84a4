"""Show the app inside a Jupyter notebook (JupyterLab, classic, VS Code) without any notebook extension.

Two ways, both plain HTML output:

- ``mode="server"`` (default): a uvicorn server in a daemon thread of the kernel, bound to 127.0.0.1 on a free
  port, shown in an ``<iframe>``. Every instance is available. Needs the browser to reach the kernel's machine
  (true for local Jupyter and VS Code; through SSH use port forwarding or ``mode="inline"``).
- ``mode="inline"``: the self-contained export (:func:`modalens.app.export.export_html`) in an ``<iframe srcdoc>``;
  no server, survives in the saved notebook, but holds instance details only for ``max_instances`` instances.
"""

from __future__ import annotations

import html
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from modalens._core.errors import ConfigurationError
from modalens.interactions.explanation import set_viewer

_SERVERS: dict[tuple[str, ...], tuple[object, int]] = {}
_LOCK = threading.Lock()


@dataclass
class AppView:
    """What :func:`show` returns: renders as the app in a notebook (``_repr_html_``); ``url`` in server mode."""

    html: str
    url: str | None = None

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"AppView(url={self.url!r})" if self.url else "AppView(inline export)"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_background_server(run_dirs: Sequence[str | os.PathLike], port: int | None = None) -> str:
    """Serve these runs from a daemon thread (once per set of runs) and return the URL."""
    import uvicorn

    from modalens.app.server import create_app

    key = tuple(str(Path(p).resolve()) for p in run_dirs)
    with _LOCK:
        if key in _SERVERS:
            server, bound = _SERVERS[key]
            if not getattr(server, "should_exit", True):
                return f"http://127.0.0.1:{bound}/"
        bound = port or _free_port()
        config = uvicorn.Config(create_app(run_dirs), host="127.0.0.1", port=bound, log_level="warning")
        server = uvicorn.Server(config)
        threading.Thread(target=server.run, daemon=True, name=f"modalens-app-{bound}").start()
        deadline = time.time() + 15
        while not server.started:
            if time.time() > deadline:
                raise RuntimeError(f"the modalens app server did not start on 127.0.0.1:{bound} within 15 s")
            time.sleep(0.05)
        _SERVERS[key] = (server, bound)
    return f"http://127.0.0.1:{bound}/"


def show(
    run_dir: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    mode: Literal["server", "inline"] = "server",
    height: int = 900,
    port: int | None = None,
    max_instances: int = 300,
) -> AppView:
    """Embed the app for one run (or several, for Compare) in the notebook output.

    Parameters
    ----------
    run_dir
        A run directory, or a list of them.
    mode
        ``"server"``: background server + iframe (all instances); ``"inline"``: self-contained, no server.
    height
        Height of the frame in pixels.
    port
        Port of the background server (default: a free one).
    max_instances
        Inline mode: instances whose details are embedded.

    Returns
    -------
    AppView
        Displays itself as the app when it is the value of a notebook cell.
    """
    runs = [run_dir] if isinstance(run_dir, (str, os.PathLike)) else list(run_dir)
    if mode == "server":
        url = start_background_server(runs, port)
        frame = (
            f'<iframe src="{html.escape(url)}" width="100%" height="{int(height)}" '
            'style="border:1px solid #ddd;border-radius:6px" title="modalens"></iframe>'
        )
        return AppView(frame, url)
    if mode == "inline":
        from modalens.app.export import bundle_html, export_documents

        page = bundle_html({"documents": export_documents(runs, max_instances=max_instances)})
        frame = (
            f'<iframe srcdoc="{html.escape(page, quote=True)}" width="100%" height="{int(height)}" '
            'style="border:1px solid #ddd;border-radius:6px" title="modalens" '
            'sandbox="allow-scripts allow-same-origin"></iframe>'
        )
        return AppView(frame)
    raise ConfigurationError(f"mode must be 'server' or 'inline', got {mode!r}")


set_viewer(show)  # Explanation.show() (in the engine, below the app) opens explanations through this function

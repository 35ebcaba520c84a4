"""``modalens export --html``: the app and its data in one self-contained HTML file (no server, no network).

The web bundle reads its data through the same API paths whether it talks to a server or to an export: here
every document the app would ask for is computed up front and embedded as JSON under those paths. Instance
details (and their media, as data: URIs) are embedded for a bounded number of instances -- those the instance
list shows first (largest errors, strongest interactions) -- so that a 50,000-instance run still exports to a
file a browser opens; the app tells the reader when an instance was left out.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modalens._core.atomic import write_atomically
from modalens.app.data import NotFound, RunSource, compare
from modalens.app.importance import importance
from modalens.app.server import STATIC_DIR, open_runs


def _doc(data: bytes) -> Any:
    return json.loads(data)


def _detail_instances(source: RunSource, max_instances: int) -> list[int]:
    """The instances the app lists first: largest absolute error, then strongest interaction, then the rest."""
    inst = source.table("instances")
    order: list[int] = []
    for col in ("abs_error", "interaction_strength"):
        if col in inst.columns:
            ranked = inst.sort_values(col, ascending=False, kind="stable")["instance"].to_numpy()
            order.extend(int(i) for i in ranked[: max_instances // 2 + 1])
    order.extend(range(min(source.n, max_instances)))
    seen: dict[int, None] = {}
    for i in order:
        seen.setdefault(i, None)
    return list(seen)[:max_instances]


def export_documents(run_dirs: Sequence[str | os.PathLike], max_instances: int = 400) -> dict[str, Any]:
    """Every API document the app needs for these runs, keyed by the path the app requests.

    Parameters
    ----------
    run_dirs
        Run directories to include.
    max_instances
        Instance details (words, tracks, media) are embedded for at most this many instances per run.
    """
    runs = open_runs(run_dirs)
    docs: dict[str, Any] = {"api/runs": [r.info() for r in runs.values()]}
    for rid, source in runs.items():
        base = f"api/runs/{rid}"
        docs[base] = source.manifest()
        if source.run.kind != "interaction":
            _feature_documents(source, docs)
            continue
        docs[f"{base}/instances"] = _doc(source.instances())
        with contextlib.suppress(NotFound):  # a run without templates: the view says so itself
            docs[f"{base}/templates"] = _doc(source.templates())
        with contextlib.suppress(NotFound):  # no feature attributions: the view says so itself
            docs[f"{base}/feature-importance"] = importance(source)
        for i in _detail_instances(source, max_instances):
            detail = source.instance_detail(i)
            docs[f"{base}/instances/{i}"] = detail
            for m in detail["media"]:
                path = source.media_path(m["key"], m["file"])
                payload = base64.b64encode(path.read_bytes()).decode()
                url = f"{base}/media/{_quote(m['key'])}/{_quote(m['file'])}"
                docs[url] = f"data:{m['mime']};base64,{payload}"
    interaction = [s for s in runs.values() if s.run.kind == "interaction"]
    for a in interaction:
        for b in interaction:
            if a is not b:
                with contextlib.suppress(NotFound):  # different datasets: the Compare view explains that itself
                    docs[f"api/compare/{a.run_id}/{b.run_id}"] = compare(a, b)
    return docs


def _feature_documents(source: RunSource, docs: dict[str, Any]) -> None:
    from modalens.app.features import feature_documents

    docs.update(feature_documents(source))


def _quote(text: str) -> str:
    # the same escaping as the front end's encodeURIComponent for the characters ids contain
    from urllib.parse import quote

    return quote(text, safe="-_.!~*'()")


def export_html(
    run_dirs: Sequence[str | os.PathLike] | str | os.PathLike,
    out_file: str | os.PathLike,
    *,
    max_instances: int = 400,
    title: str | None = None,
) -> Path:
    """Write one self-contained HTML file: the web app with these runs' data inlined.

    Parameters
    ----------
    run_dirs
        One run directory or several (e.g. two models for Compare).
    out_file
        The HTML file to write.
    max_instances
        Per run, how many instances keep their full detail (words, tracks, media) in the file.
    title
        Page title; defaults to the run names.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = [run_dirs]
    docs = export_documents(run_dirs, max_instances=max_instances)
    note = (
        f"This export holds instance details for up to {max_instances} instances per run (largest errors and "
        "strongest interactions first). Serve the run with `modalens serve RUN_DIR` to open any instance."
    )
    html = bundle_html({"documents": docs, "note": note}, title or " · ".join(Path(p).name for p in run_dirs))
    return write_atomically(out_file, lambda tmp: Path(tmp).write_text(html, encoding="utf-8"))


def bundle_html(data: dict[str, Any], title: str = "modalens") -> str:
    """The built index.html with its CSS and JS inlined and ``data`` embedded as JSON."""
    index = STATIC_DIR / "index.html"
    if not index.is_file():
        raise FileNotFoundError(
            f"the web bundle is missing ({index}); build it with `cd web && npm ci && npm run build`"
        )
    html = index.read_text(encoding="utf-8")

    def inline_css(match: re.Match[str]) -> str:
        css = (STATIC_DIR / match.group(1).lstrip("./")).read_text(encoding="utf-8")
        return f"<style>{css}</style>"

    def inline_js(match: re.Match[str]) -> str:
        js = (STATIC_DIR / match.group(1).lstrip("./")).read_text(encoding="utf-8")
        return f'<script type="module">{_script_safe(js)}</script>'

    html = re.sub(r'<link rel="stylesheet"[^>]*href="([^"]+)"[^>]*>', inline_css, html)
    html = re.sub(r'<script type="module"[^>]*src="([^"]+)"[^>]*></script>', inline_js, html)
    # "<" escaped as \u003c: valid JSON that can never close the <script> element
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False, default=_default).replace("<", "\\u003c")
    html = html.replace("<title>modalens</title>", f"<title>modalens · {_escape(title)}</title>")
    return html.replace(
        "</head>", f'<script id="modalens-data" type="application/json">{payload}</script>\n  </head>', 1
    )


def _script_safe(text: str) -> str:
    """JavaScript that cannot close the <script> element it is placed in."""
    return text.replace("</script", "<\\/script")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot embed {type(value).__name__} in the export")

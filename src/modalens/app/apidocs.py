"""``/api/docs``: the API reference as one page generated from the OpenAPI schema, with nothing loaded from elsewhere.

FastAPI's own docs pages load Swagger UI or ReDoc from a CDN, so they are blank offline and would need the CDN in the
Content-Security-Policy. This page is plain HTML written on the server from ``/api/openapi.json``: every route with
its parameters and response, every schema with its fields. Its stylesheet is ``/api/docs.css`` (no inline style).
"""

from __future__ import annotations

from html import escape
from typing import Any

CSS = """
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;margin-top:2.2rem}
.route{border:1px solid #ddd;border-radius:6px;margin:.8rem 0;padding:.6rem .9rem}
.method{font:600 13px monospace;background:#0072B2;color:#fff;border-radius:4px;padding:.1rem .4rem}
code,.path{font-family:ui-monospace,monospace}.path{font-weight:600;margin-left:.4rem}
table{border-collapse:collapse;margin:.4rem 0}td,th{border:1px solid #e3e3e3;padding:.2rem .5rem;text-align:left}
.muted{color:#666}
""".strip()


def docs_html(spec: dict[str, Any]) -> str:
    """The reference page for an OpenAPI 3 schema."""
    info = spec.get("info", {})
    groups: dict[str, list[str]] = {}
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            tag = (op.get("tags") or ["other"])[0]
            groups.setdefault(tag, []).append(_route(method, path, op))
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(info.get('title', 'API'))} API</title>",
        "<link rel='stylesheet' href='docs.css'><link rel='icon' href='data:,'></head><body>",
        f"<h1>{escape(info.get('title', 'API'))} API</h1>",
        f"<p class='muted'>{escape(info.get('summary', ''))} · version {escape(str(info.get('version', '')))} · "
        "machine-readable: <a href='openapi.json'>openapi.json</a></p>",
    ]
    for tag, routes in groups.items():
        parts.append(f"<h2>{escape(tag)}</h2>")
        parts.extend(routes)
    schemas = spec.get("components", {}).get("schemas", {})
    if schemas:
        parts.append("<h2>Schemas</h2>")
        for name, schema in schemas.items():
            parts.append(f"<div class='route' id='schema-{escape(name)}'><b>{escape(name)}</b>")
            parts.append(_fields(schema))
            parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _route(method: str, path: str, op: dict[str, Any]) -> str:
    out = [
        f"<div class='route'><span class='method'>{escape(method.upper())}</span>"
        f"<span class='path'>{escape(path)}</span>",
        f"<p>{escape(op.get('description') or op.get('summary') or '')}</p>",
    ]
    params = op.get("parameters", [])
    if params:
        out.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th></tr>")
        for p in params:
            out.append(
                f"<tr><td><code>{escape(p.get('name', ''))}</code></td><td>{escape(p.get('in', ''))}</td>"
                f"<td>{escape(_type(p.get('schema', {})))}</td><td>{'yes' if p.get('required') else 'no'}</td></tr>"
            )
        out.append("</table>")
    for status, resp in op.get("responses", {}).items():
        kinds = ", ".join(
            f"{escape(mime)} {escape(_type(body.get('schema', {})))}".strip()
            for mime, body in resp.get("content", {}).items()
        )
        out.append(f"<div class='muted'>{escape(str(status))}: {escape(resp.get('description', ''))} {kinds}</div>")
    out.append("</div>")
    return "".join(out)


def _fields(schema: dict[str, Any]) -> str:
    props = schema.get("properties", {})
    if not props:
        return f"<div class='muted'>{escape(_type(schema))}</div>"
    required = set(schema.get("required", []))
    rows = "".join(
        f"<tr><td><code>{escape(k)}</code></td><td>{escape(_type(v))}</td><td>{'yes' if k in required else 'no'}</td>"
        f"<td>{escape(v.get('description', ''))}</td></tr>"
        for k, v in props.items()
    )
    return f"<table><tr><th>field</th><th>type</th><th>required</th><th>content</th></tr>{rows}</table>"


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"{_type(schema.get('items', {}))}[]"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"Record<string, {_type(schema['additionalProperties'])}>"
    return str(kind)

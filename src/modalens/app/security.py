"""What guards every request of the app server, in one ASGI middleware (:class:`Guard`), outermost but one.

- **Host allow-list** (against DNS rebinding: a web page whose name resolves to 127.0.0.1 would otherwise read every
  served run): the ``Host`` header must name this machine by a loopback name (``127.0.0.1``, ``localhost``,
  ``[::1]``) or a name the server was told to answer to, with the port the request came in on (or none). Anything
  else is answered ``421 Misdirected Request`` before any route runs.
- **Access token** (when the server is reachable from other machines, ``modalens serve --allow-remote``): every
  request carries it as ``Authorization: Bearer <token>``, as the cookie the server sets, or once as ``?token=`` in
  the URL (the URL ``modalens serve`` prints); without it, ``401``.
- **Security headers** on every response, errors included: a Content-Security-Policy that allows only this server's
  own scripts, styles, data and media (no CDN, no inline script) and lets only the listed origins frame the app
  (``frame-ancestors``: the app itself and loopback origins, where Jupyter and VS Code notebooks run), plus
  ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and
  ``Cross-Origin-Resource-Policy: same-origin``.
- **No empty 500**: an exception no route handled is logged with its traceback and answered as JSON
  ``{"error": ...}`` naming the request and the kind of failure, with no server paths.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
from collections.abc import Iterable, Sequence
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from modalens._core.errors import ConfigurationError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
DEFAULT_FRAME_ANCESTORS = (
    "'self'",
    "http://127.0.0.1:*",
    "http://localhost:*",
    "https://127.0.0.1:*",
    "https://localhost:*",
    "vscode-webview:",  # VS Code notebooks render outputs in webviews inside the workbench (vscode-file:)
    "vscode-file:",
)
FRAME_ANCESTORS_ENV = "MODALENS_FRAME_ANCESTORS"
TOKEN_COOKIE = "modalens-token-{port}"  # one per port: cookies are not told apart by port
_ORIGIN = re.compile(r"^('self'|'none'|\*|[a-z][a-z0-9+.-]*:(//[A-Za-z0-9.*-]+(:(\d+|\*))?)?/?)$")

log = logging.getLogger("modalens.app")


def content_security_policy(frame_ancestors: Sequence[str]) -> str:
    """The Content-Security-Policy of every response: what the built app needs and nothing from elsewhere.

    The bundle is one module script and one stylesheet from ``/assets``; React sets styles through the DOM (allowed
    without ``'unsafe-inline'``); images and audio come from the API or, in exports, from ``data:`` URIs; the
    WebGL scatter needs no worker.
    """
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' data: blob:",
            "connect-src 'self'",
            "font-src 'self'",
            "worker-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            f"frame-ancestors {' '.join(frame_ancestors)}",
        ]
    )


def frame_ancestors(extra: Iterable[str] | None = None) -> list[str]:
    """The default frame ancestors plus ``extra`` and those in ``$MODALENS_FRAME_ANCESTORS`` (space-separated);
    each must be a CSP source (``https://jupyter.example:8888``, ``'self'``, ``*``)."""
    out = list(DEFAULT_FRAME_ANCESTORS)
    for origin in [*(extra or []), *os.environ.get(FRAME_ANCESTORS_ENV, "").split()]:
        if not _ORIGIN.match(origin):
            raise ConfigurationError(
                f"frame ancestor {origin!r} is not an origin such as https://jupyter.example:8888 or 'self'"
            )
        if origin not in out:
            out.append(origin)
    return out


def is_loopback(host: str) -> bool:
    """Whether a bind address or host name stays on this machine."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_names(bound: str) -> set[str]:
    """Names a browser may use for this machine when the server binds ``bound`` (beyond the loopback names)."""
    names = set()
    if bound in ("0.0.0.0", "::", ""):
        for name in (socket.gethostname(), socket.getfqdn()):
            names.add(name)
            with contextlib.suppress(OSError):
                names.update(info[4][0] for info in socket.getaddrinfo(name, None))
    else:
        names.add(bound)
    return {_normal(n) for n in names if n}


def _normal(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def split_host(header: str) -> tuple[str, int | None] | None:
    """``Host`` header -> (name, port or None); None when it is not a host[:port]."""
    header = header.strip()
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?", header) or re.fullmatch(
        r"([A-Za-z0-9._-]+)(?::(\d{1,5}))?", header
    )
    if not m:
        return None
    return _normal(m[1]), int(m[2]) if m[2] else None


class Guard:
    """The ASGI middleware of this module's docstring: Host allow-list, token, security headers, JSON 500s."""

    def __init__(
        self,
        app,  # noqa: ANN001 - an ASGI application
        *,
        allowed_hosts: Iterable[str] | None,
        token: str | None,
        csp: str,
        scrub=None,  # noqa: ANN001 - message -> message without server paths
    ) -> None:
        self.app = app
        hosts = None if allowed_hosts is None else {_normal(h) for h in allowed_hosts}
        self.any_host = hosts is not None and "*" in hosts
        self.hosts = hosts
        self.token = token
        self.scrub = scrub or (lambda text: text)
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-resource-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        port = (scope.get("server") or (None, None))[1]
        extra: list[tuple[bytes, bytes]] = []

        async def send_guarded(message) -> None:  # noqa: ANN001
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        *((k, v) for k, v in self.headers if k not in present),
                        *extra,
                    ],
                }
                started[0] = True
            await send(message)

        started = [False]
        if not self._host_ok(headers.get("host", ""), port):
            await self._json(
                send_guarded,
                421,
                f"this server does not answer to host {headers.get('host', '')!r}; "
                f"open it as http://127.0.0.1:{port}/ (or start it with --allowed-host NAME)",
            )
            return
        if self.token is not None:
            verdict = self._authorize(scope, headers, port)
            if verdict == "refuse":
                await self._json(
                    send_guarded,
                    401,
                    "this server needs its access token: open the URL `modalens serve` printed (it ends in "
                    "?token=...), or send the header Authorization: Bearer <token>",
                    [(b"www-authenticate", b'Bearer realm="modalens"')],
                )
                return
            if verdict == "query":
                cookie = f"{TOKEN_COOKIE.format(port=port)}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                extra.append((b"set-cookie", cookie.encode()))
                if scope["method"] == "GET" and "text/html" in headers.get("accept", ""):
                    query = urlencode([(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode())
                                       if k != "token"])  # fmt: skip
                    location = scope.get("root_path", "") + scope["path"] + (f"?{query}" if query else "")
                    await send_guarded(
                        {"type": "http.response.start", "status": 303, "headers": [(b"location", location.encode())]}
                    )
                    await send_guarded({"type": "http.response.body", "body": b""})
                    return
        try:
            await self.app(scope, receive, send_guarded)
        except Exception as exc:
            log.exception("modalens app: %s %s failed", scope.get("method"), scope.get("path"))
            if started[0]:
                raise
            message = self.scrub(str(exc)) or "no message"
            await self._json(
                send_guarded,
                500,
                f"internal error while serving {scope.get('path')}: {type(exc).__name__}: {message}",
            )

    def _host_ok(self, header: str, port: int | None) -> bool:
        if self.hosts is None or self.any_host:
            return True
        parsed = split_host(header)
        if parsed is None:
            return False
        name, given = parsed
        return name in self.hosts and (given is None or port is None or given == port)

    def _authorize(self, scope, headers: dict[str, str], port: int | None) -> str:  # noqa: ANN001
        """'ok' (header or cookie), 'query' (first visit with ?token=) or 'refuse'."""
        assert self.token is not None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and secrets.compare_digest(auth[7:].strip(), self.token):
            return "ok"
        jar = SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is no credential
            jar = SimpleCookie()
        morsel = jar.get(TOKEN_COOKIE.format(port=port))
        if morsel is not None and secrets.compare_digest(morsel.value, self.token):
            return "ok"
        for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
            if key == "token" and secrets.compare_digest(value, self.token):
                return "query"
        return "refuse"

    @staticmethod
    async def _json(send, status: int, message: str, headers: list | None = None) -> None:  # noqa: ANN001
        body = json.dumps({"error": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                    *(headers or []),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


_ABS_PATH = re.compile(r"(?<![\w.~-])(?:/(?:[^/\s'\"`:;,()\[\]]+))+/?|\b[A-Za-z]:\\(?:[^\\\s'\"]+\\?)+")


def make_scrub(paths: dict[str, os.PathLike | str]):  # noqa: ANN201
    """A function that removes server paths from a message: each run directory becomes its run id, and any other
    absolute path its last component (``.../instances.parquet``)."""
    pairs: list[tuple[str, str]] = []
    for run_id, path in paths.items():
        for form in {str(path), os.path.realpath(path)}:
            pairs.append((form, run_id))
    pairs.sort(key=lambda p: -len(p[0]))

    def scrub(text: str) -> str:
        for form, run_id in pairs:
            text = text.replace(form, run_id)
        return _ABS_PATH.sub(lambda m: ".../" + re.split(r"[\\/]", m.group(0).rstrip("/\\"))[-1], text)

    return scrub

"""``modalens export --html``: the app and its data in one self-contained HTML file (no server, no network).

The web bundle reads its data through the same API paths whether it talks to a server or to an export: here
every document the app would ask for is computed up front and embedded under those paths. Instance details (and
their media) are embedded for a bounded number of instances -- those the instance list shows first (largest
errors, strongest interactions) -- so that a 50,000-instance run still exports to a file a browser opens; the app
tells the reader when an instance was left out.

What makes the file small (the demo run's 600 instances with their faces and speech fit in under 10 MB, where
plain JSON with data: URIs took 25 MB): see :func:`pack_documents`. Documents are stored as JSON text whose
floating-point numbers are taken out into a separate column of 4-significant-digit decimals (mantissa and
exponent planes, which compress far better than digits interleaved with text); media are stored once per
distinct file as raw bytes; the whole container is gzip-compressed and written into the page as bytes, one
character per byte (the page declares ``windows-1252``, so every byte is one character; the few bytes HTML would
alter or read as markup are escaped), instead of base64's 4 characters per 3 bytes. The page decompresses it with
the browser's ``DecompressionStream`` (``web/src/exportData.ts``) and decodes each document when it is first read.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import itertools
import json
import math
import os
import re
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modalens._core.atomic import write_atomically
from modalens.app.compare import compare, compare_many
from modalens.app.data import NotFound, RunSource
from modalens.app.glyphs import glyph_document, template_contributions
from modalens.app.importance import importance
from modalens.app.server import STATIC_DIR, open_runs
from modalens.app.slice_routes import text_document

MAX_INSTANCES = 1000  # instances per run whose detail is embedded: every instance of the demo run's 600


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


def export_documents(run_dirs: Sequence[str | os.PathLike], max_instances: int = MAX_INSTANCES) -> dict[str, Any]:
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
        # the projection's glyphs, the templates' per-modality bars and the word filter's texts: without them an
        # export draws plain dots, Shapley stand-ins and "texts cannot be loaded"
        docs[f"{base}/glyphs"] = glyph_document(source)
        docs[f"{base}/text"] = text_document(source)
        with contextlib.suppress(NotFound):
            docs[f"{base}/template-contributions"] = template_contributions(source)
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
    # N-run comparisons: the app asks for the chosen runs in served order; every choice up to 5 runs, else all
    sets = (
        [c for k in range(2, len(interaction) + 1) for c in itertools.combinations(interaction, k)]
        if len(interaction) <= 5
        else [tuple(interaction)]
    )
    for chosen in sets:
        if len(chosen) >= 2:
            with contextlib.suppress(NotFound):
                docs["api/compare?runs=" + ",".join(_quote(s.run_id) for s in chosen)] = compare_many(chosen)
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
    max_instances: int = MAX_INSTANCES,
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
    # one byte per character (see bundle_html): latin-1 writes each character below 256 as that byte
    return write_atomically(out_file, lambda tmp: Path(tmp).write_bytes(html.encode("latin-1")))


# -- the page ------------------------------------------------------------------------------------------------------
DATA_ELEMENT = '<script id="modalens-data" type="application/octet-stream" data-encoding="mlx1+gzip+bytes">'


def bundle_html(data: dict[str, Any], title: str = "modalens") -> str:
    """The built index.html with its CSS and JS inlined and ``data`` (``{"documents": {path: document}, ...}``)
    embedded packed (:func:`pack_documents`), gzip-compressed, one character per byte.

    Every character of the returned page is below U+0100 and the page declares ``windows-1252``: write it with
    ``page.encode("latin-1")`` (or embed the string itself, e.g. in an ``<iframe srcdoc>``).
    """
    index = STATIC_DIR / "index.html"
    if not index.is_file():
        raise FileNotFoundError(
            f"the web bundle is missing ({index}); build it with `cd web && npm ci && npm run build`"
        )
    html = index.read_text(encoding="utf-8")

    def inline_css(match: re.Match[str]) -> str:
        css = (STATIC_DIR / match.group(1).lstrip("./")).read_text(encoding="utf-8")
        return f"<style>{_ascii_css(css)}</style>"

    def inline_js(match: re.Match[str]) -> str:
        js = (STATIC_DIR / match.group(1).lstrip("./")).read_text(encoding="utf-8")
        return f'<script type="module">{_script_safe(_ascii_js(js))}</script>'

    html = re.sub(r'<link rel="stylesheet"[^>]*href="([^"]+)"[^>]*>', inline_css, html)
    html = re.sub(r'<script type="module"[^>]*src="([^"]+)"[^>]*></script>', inline_js, html)
    html = re.sub(r'<meta charset="[^"]*"\s*/?>', '<meta charset="windows-1252" />', html, count=1, flags=re.I)
    html = html.replace("<title>modalens</title>", f"<title>modalens · {_escape(title)}</title>")
    html = _ascii_html(html)
    payload = _stuff(gzip.compress(pack_documents(data), compresslevel=9, mtime=0)).decode("latin-1")
    return html.replace("</head>", f"{DATA_ELEMENT}{payload}</script>\n  </head>", 1)


def read_export(page: str | bytes | os.PathLike) -> dict[str, Any]:
    """The data embedded in an exported page (a path, or the page itself): ``{"documents": {...}, "note": ...}``,
    decoded as the browser decodes it (media as ``data:`` URIs)."""
    if isinstance(page, os.PathLike):
        page = Path(page).read_bytes()
    raw = page.encode("latin-1") if isinstance(page, str) else page
    start = raw.index(DATA_ELEMENT.encode()) + len(DATA_ELEMENT)
    end = raw.index(b"</script>", start)
    return unpack_documents(gzip.decompress(_unstuff(raw[start:end])))


# Bytes that cannot stand for themselves inside <script> text: NUL (replaced by U+FFFD), CR (newlines are
# normalised), "<" (could start "</script" or "<!--"); ESC introduces an escape, so it is escaped too.
_ESC = 0x01
_ESCAPED = {0x00: 0x02, _ESC: 0x03, 0x0D: 0x04, 0x3C: 0x05}
_UNESCAPED = {v: k for k, v in _ESCAPED.items()}


def _stuff(data: bytes) -> bytes:
    """``data`` with each byte HTML would alter written as two bytes: ESC, code (about 1.6 % longer)."""
    out = data.replace(bytes([_ESC]), bytes([_ESC, _ESCAPED[_ESC]]))
    for byte, code in _ESCAPED.items():
        if byte != _ESC:
            out = out.replace(bytes([byte]), bytes([_ESC, code]))
    return out


def _unstuff(data: bytes) -> bytes:
    parts = data.split(bytes([_ESC]))
    out = bytearray(parts[0])
    for part in parts[1:]:
        if not part or part[0] not in _UNESCAPED:
            raise ValueError("corrupt export payload: a bad escape")
        out.append(_UNESCAPED[part[0]])
        out += part[1:]
    return bytes(out)


def _ascii_js(text: str) -> str:
    r"""JavaScript with every non-ASCII character as a ``\uXXXX`` escape (valid in strings, templates, regular
    expressions and identifiers alike), so the page's one-byte encoding cannot change it."""
    return re.sub(r"[^\x00-\x7f]", lambda m: "".join(f"\\u{u:04x}" for u in _utf16(m.group())), text)


def _ascii_css(text: str) -> str:
    return re.sub(r"[^\x00-\x7f]", lambda m: f"\\{ord(m.group()):06x}", text)


def _ascii_html(text: str) -> str:
    return re.sub(r"[^\x00-\x7f]", lambda m: f"&#{ord(m.group())};", text)


def _utf16(char: str) -> list[int]:
    units = char.encode("utf-16-le")
    return [int.from_bytes(units[k : k + 2], "little") for k in range(0, len(units), 2)]


def _script_safe(text: str) -> str:
    """JavaScript that cannot close the <script> element it is placed in."""
    return text.replace("</script", "<\\/script")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- the container -------------------------------------------------------------------------------------------------
PACK_MAGIC = b"MLX1"
_NUMBER = "\x01"  # stands for the next packed number in a document's text: never valid JSON, so never ambiguous
_DIGITS = 4  # significant digits kept of each float (the app shows 3)
_DATA_URI = re.compile(r"data:([^;,]+);base64,(.*)", re.S)


def pack_documents(data: dict[str, Any]) -> bytes:
    """The container the page embeds (before compression), little-endian:

    ``b"MLX1"``, u32 header length, header JSON, then the document texts, the packed numbers (low bytes, high
    bytes of the int16 mantissas, then the int8 exponents) and the media bytes. The header holds ``meta`` (every
    key of ``data`` but ``documents``), ``docs`` (``[path, text start, text end, first number]``), ``media``
    (``[path, mime, blob]``), ``blobs`` (``[offset, length]``), ``numbers`` and ``text`` (section sizes).

    A document's text is its JSON with each non-integral float written as ``\x01``; the float is the next
    number of the column, ``mantissa`` ``e`` ``exponent`` (4 significant digits). Documents that are ``data:``
    URIs (media) are stored as bytes, each distinct file once.
    """
    documents: dict[str, Any] = data.get("documents", {})
    floats: list[float] = []
    texts: list[bytes] = []
    doc_index: list[list[Any]] = []
    media: list[list[Any]] = []
    blobs: list[bytes] = []
    blob_of: dict[bytes, int] = {}
    offset = 0
    for path, doc in documents.items():
        uri = _DATA_URI.fullmatch(doc) if isinstance(doc, str) else None
        if uri is not None:
            raw = base64.b64decode(uri.group(2))
            digest = hashlib.sha256(raw).digest()
            if digest not in blob_of:
                blob_of[digest] = len(blobs)
                blobs.append(raw)
            media.append([path, uri.group(1), blob_of[digest]])
            continue
        first = len(floats)
        text = json.dumps(
            _take_floats(doc, floats), separators=(",", ":"), allow_nan=False, ensure_ascii=False, default=_default
        )
        encoded = text.replace('"\\u0001"', _NUMBER).encode("utf-8")
        texts.append(encoded)
        doc_index.append([path, offset, offset + len(encoded), first])
        offset += len(encoded)
    mantissa, exponent = _decimals(floats)
    blob_index, at = [], 0
    for b in blobs:
        blob_index.append([at, len(b)])
        at += len(b)
    header = {
        "meta": {k: v for k, v in data.items() if k != "documents"},
        "docs": doc_index,
        "media": media,
        "blobs": blob_index,
        "numbers": len(floats),
        "text": offset,
    }
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=False, default=_default).encode("utf-8")
    m16 = mantissa.astype("<i2").view(np.uint8).reshape(-1, 2)
    return b"".join(
        [PACK_MAGIC, struct.pack("<I", len(head)), head, *texts]
        + [m16[:, 0].tobytes(), m16[:, 1].tobytes(), exponent.astype(np.int8).tobytes(), *blobs]
    )


def unpack_documents(blob: bytes) -> dict[str, Any]:
    """The inverse of :func:`pack_documents` (floats to 4 significant digits; media as ``data:`` URIs)."""
    if blob[:4] != PACK_MAGIC:
        raise ValueError("not a modalens export container")
    (size,) = struct.unpack_from("<I", blob, 4)
    header = json.loads(blob[8 : 8 + size])
    at = 8 + size
    text = blob[at : at + header["text"]]
    k = header["numbers"]
    planes = np.frombuffer(blob, np.uint8, 3 * k, at + header["text"])
    mantissa = (planes[:k].astype(np.int32) | (planes[k : 2 * k].astype(np.int32) << 8)).astype(np.int16)
    exponent = planes[2 * k :].view(np.int8)
    media_at = at + header["text"] + 3 * k
    docs: dict[str, Any] = {}
    for path, start, end, first in header["docs"]:
        pieces = text[start:end].decode("utf-8").split(_NUMBER)
        out = [pieces[0]]
        for j, piece in enumerate(pieces[1:]):
            out.append(_number_text(int(mantissa[first + j]), int(exponent[first + j])))
            out.append(piece)
        docs[path] = json.loads("".join(out))
    for path, mime, b in header["media"]:
        off, length = header["blobs"][b]
        raw = blob[media_at + off : media_at + off + length]
        docs[path] = f"data:{mime};base64,{base64.b64encode(raw).decode()}"
    return {**header["meta"], "documents": docs}


def _number_text(mantissa: int, exponent: int) -> str:
    return f"{mantissa}e{exponent}" if exponent else str(mantissa)


def _take_floats(value: Any, floats: list[float]) -> Any:
    """``value`` with each float that packs (finite, not integral, within int8 exponents) replaced by the
    placeholder and appended to ``floats``; integral floats become ints (exact, and the app reads them alike)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot embed {value} in the export")
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        if 1e-120 < abs(value) < 1e120:
            floats.append(value)
            return _NUMBER
        return value
    if isinstance(value, dict):
        return {k: _take_floats(v, floats) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_take_floats(v, floats) for v in value]
    if isinstance(value, str):
        return value.replace(_NUMBER, "\ufffd") if _NUMBER in value else value
    if isinstance(value, np.generic):
        return _take_floats(value.item(), floats)
    return value


def _decimals(values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Each value as ``mantissa * 10**exponent`` with ``1000 <= |mantissa| <= 9999`` (4 significant digits)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return np.zeros(0, np.int16), np.zeros(0, np.int8)
    exponent = np.floor(np.log10(np.abs(v))).astype(np.int64) - (_DIGITS - 1)
    mantissa = _round_at(v, exponent)
    # log10 can land one off at exact powers of ten, and rounding can carry into a fifth digit
    low = np.abs(mantissa) < 10 ** (_DIGITS - 1)
    exponent[low] -= 1
    high = np.abs(mantissa) >= 10**_DIGITS
    exponent[high] += 1
    mantissa[low | high] = _round_at(v[low | high], exponent[low | high])
    return mantissa.astype(np.int16), exponent.astype(np.int8)


def _round_at(v: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    # dividing by an exact power of ten (10**k with k <= 22 is exact) rounds once, as decimal rounding does
    scale = np.power(10.0, np.abs(exponent))
    return np.rint(np.where(exponent >= 0, v / scale, v * scale)).astype(np.int64)


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot embed {type(value).__name__} in the export")

"""The HTML export stays small: a 600-instance run with a face and a speech clip per instance fits in 10 MB with
every instance openable, and what the page decodes equals the documents (floats to 4 significant digits)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from modalens.app.export import export_documents, export_html, pack_documents, read_export, unpack_documents

from .fixtures import write_interaction_run

LIMIT = 10_000_000


@pytest.fixture(scope="module")
def run600(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_interaction_run(tmp_path_factory.mktemp("export-size") / "r600", 600, media_count=600)


def test_600_instances_with_media_fit_in_10_mb(run600: Path, tmp_path: Path) -> None:
    out = export_html(run600, tmp_path / "r600.html")
    size = out.stat().st_size
    assert size <= LIMIT, f"export of 600 instances is {size / 1e6:.1f} MB"
    docs = read_export(out)["documents"]
    details = [k for k in docs if re.fullmatch(r"api/runs/r600/instances/\d+", k)]
    assert len(details) == 600  # every instance opens
    media = [k for k in docs if "/media/" in k]
    assert len(media) == 1200 and all(docs[k].startswith("data:") for k in media)
    # the same bytes as the run's files
    one = docs["api/runs/r600/media/speech/7.wav"]
    import base64

    assert base64.b64decode(one.split(",", 1)[1]) == (run600 / "media" / "speech" / "7.wav").read_bytes()


def test_decoded_documents_equal_the_originals_to_4_digits(run600: Path) -> None:
    docs = export_documents([run600], max_instances=30)
    back = unpack_documents(pack_documents({"documents": docs, "note": "n"}))
    assert back["note"] == "n" and set(back["documents"]) == set(docs)

    def same(a: object, b: object, where: str) -> None:
        if isinstance(a, float) and not a.is_integer():
            assert math.isclose(a, b, rel_tol=5.001e-4), where  # 4 significant digits: half a unit of the 4th
        elif isinstance(a, dict):
            assert list(a) == list(b), where
            for k in a:
                same(a[k], b[k], f"{where}/{k}")
        elif isinstance(a, list):
            assert len(a) == len(b), where
            for k, (x, y) in enumerate(zip(a, b, strict=True)):
                same(x, y, f"{where}[{k}]")
        else:
            assert a == b, where

    for path in docs:
        same(docs[path], back["documents"][path], path)


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.23456, 1.235), (-0.000123456, -0.0001235), (98765.4321, 98770.0), (9.99996, 10.0), (1e-3, 0.001), (0.1, 0.1)],
)
def test_floats_keep_four_significant_digits(value: float, text: float) -> None:
    back = unpack_documents(pack_documents({"documents": {"d": {"v": value, "i": 7, "f": 3.0}}}))["documents"]["d"]
    assert back == {"v": text, "i": 7, "f": 3}
    assert isinstance(back["f"], int)  # an integral float is written exactly, as an int


def test_non_finite_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="nan"):
        pack_documents({"documents": {"d": [np.nan]}})


def test_glyphs_template_contributions_and_texts_are_embedded(tmp_path: Path) -> None:
    """The projection's glyph inputs, the templates' per-modality contributions and the word filter's texts travel
    with the export, equal (to 4 digits) to what the server's routes answer, and the file stays small."""
    from modalens.app.data import RunSource
    from modalens.app.glyphs import glyph_document, template_contributions
    from modalens.app.slice_routes import text_document

    from .glyph_fixtures import write_glyph_run

    run = write_glyph_run(tmp_path / "g600", 600, seed=3)
    out = export_html(run, tmp_path / "g600.html")
    assert out.stat().st_size <= LIMIT
    docs = read_export(out)["documents"]
    source = RunSource.open("g600", run)
    for path, want in [
        ("api/runs/g600/glyphs", glyph_document(source)),
        ("api/runs/g600/template-contributions", template_contributions(source)),
        ("api/runs/g600/text", text_document(source)),
    ]:
        assert path in docs, path
        got = docs[path]
        flat_want, flat_got = _leaves(want), _leaves(got)
        assert len(flat_want) == len(flat_got), path
        for (kw, a), (kg, b) in zip(flat_want, flat_got, strict=True):
            assert kw == kg
            if isinstance(a, float) and not a.is_integer():
                assert math.isclose(a, b, rel_tol=5.001e-4), (path, kw)
            else:
                assert a == b, (path, kw)
    assert docs["api/runs/g600/glyphs"]["face"] is not None and docs["api/runs/g600/glyphs"]["rose"] is not None
    texts = docs["api/runs/g600/text"]["text"]
    assert len(texts) == 600 and all(isinstance(t, str) and t for t in texts)
    assert len(docs["api/runs/g600/template-contributions"]["templates"]) > 0


def _leaves(value: object, at: str = "") -> list[tuple[str, object]]:
    if isinstance(value, dict):
        return [leaf for k in value for leaf in _leaves(value[k], f"{at}/{k}")]
    if isinstance(value, list):
        return [leaf for k, v in enumerate(value) for leaf in _leaves(v, f"{at}[{k}]")]
    return [(at, value)]

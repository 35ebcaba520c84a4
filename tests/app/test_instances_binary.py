"""The binary instance table (``/api/runs/{run}/instances?format=binary``, :mod:`modalens.app.coltable`).

It must carry exactly what the JSON document carries: the same numbers (float64, so bit for bit), ``null`` where JSON
has ``null`` (NaN and infinities included), the same strings, booleans and integers. Also writes/checks the small
fixture ``web/src/coltableFixture.ts`` that the front end's decoder test (``web/src/loadTable.test.ts``) reads, so
the two sides are tested against one Python-encoded file: regenerate it with
``.venv/bin/python tests/app/test_instances_binary.py``.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.fixtures import write_interaction_run  # noqa: E402
from modalens.app import coltable  # noqa: E402
from modalens.app.data import column  # noqa: E402
from modalens.app.server import create_app  # noqa: E402
from modalens.runs import read_run  # noqa: E402

FIXTURE_TS = Path(__file__).resolve().parents[2] / "web" / "src" / "coltableFixture.ts"
BASE = "http://127.0.0.1"


def _client(path: Path) -> TestClient:
    return TestClient(create_app([path]), base_url=BASE)


def test_binary_document_decodes_to_the_json_document(tmp_path: Path) -> None:
    run = write_interaction_run(tmp_path / "r", 300)
    c = _client(run)
    rid = c.get("/api/runs").json()[0]["id"]
    as_json = c.get(f"/api/runs/{rid}/instances").json()
    r = c.get(f"/api/runs/{rid}/instances?format=binary")
    assert r.status_code == 200
    assert r.headers["content-type"] == coltable.MEDIA_TYPE
    assert r.content[:4] == b"MLCT"
    decoded = coltable.decode(r.content)
    assert decoded == as_json
    # and with numpy straight from the buffers: the label column is bit-identical to the table on disk
    header_len = struct.unpack_from("<I", r.content, 8)[0]
    header = json.loads(r.content[12 : 12 + header_len])
    base = 12 + header_len + (-(12 + header_len) % 8)
    spec = next(s for s in header["columns"] if s["name"] == "label")
    assert spec["dtype"] == "f64"
    label = np.frombuffer(r.content, "<f8", count=spec["count"], offset=base + spec["offset"])
    on_disk = read_run(run).table("instances").sort_values("instance")["label"].to_numpy()
    np.testing.assert_array_equal(label, on_disk)
    assert len(r.content) < len(c.get(f"/api/runs/{rid}/instances", headers={"accept-encoding": "identity"}).content)


def test_nulls_nans_strings_and_booleans_survive(tmp_path: Path) -> None:
    run = write_interaction_run(tmp_path / "r", 40)
    manifest = json.loads((run / "manifest.json").read_text())
    inst = read_run(run).table("instances")
    label = inst["label"].to_numpy().copy()
    label[[1, 5]] = np.nan
    label[7] = np.inf
    dominant = inst["dominant_modality"].to_numpy(dtype=object).copy()
    dominant[[0, 2, 3]] = None
    inst = inst.assign(
        label=label,
        dominant_modality=dominant,
        id=[f'é-{i} "quoted" ✓' for i in range(len(inst))],
        meta_flag=pd.array([True, False, None] * 13 + [True], dtype="boolean"),
        meta_big=np.arange(len(inst), dtype=np.int64) * (1 << 40),
    )
    inst.to_parquet(run / manifest["tables"]["instances"]["file"], index=False)
    c = _client(run)
    rid = c.get("/api/runs").json()[0]["id"]
    as_json = c.get(f"/api/runs/{rid}/instances").json()
    decoded = coltable.decode(c.get(f"/api/runs/{rid}/instances?format=binary").content)
    assert decoded == as_json
    cols = decoded["columns"]
    assert cols["label"][1] is None and cols["label"][5] is None and cols["label"][7] is None
    assert cols["label"][0] == pytest.approx(label[0])
    assert cols["dominant_modality"][:4] == [None, cols["dominant_modality"][1], None, None]
    assert cols["id"][3] == 'é-3 "quoted" ✓'
    assert cols["meta_flag"][:3] == [True, False, None]
    assert cols["meta_big"][3] == 3 << 40  # beyond int32: sent as float64, exact


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    run = write_interaction_run(tmp_path / "r", 20)
    c = _client(run)
    r = c.get("/api/runs/r/instances?format=xml")
    assert r.status_code == 422
    assert "format" in r.json()["error"]


def test_decoder_refuses_foreign_bytes() -> None:
    with pytest.raises(ValueError, match="magic"):
        coltable.decode(b"PK\x03\x04" + b"\0" * 20)
    good = coltable.encode({"n": 1}, [("columns", "a", np.array([1.5]))])
    bumped = good[:4] + struct.pack("<I", 99) + good[8:]
    with pytest.raises(ValueError, match="version 99"):
        coltable.decode(bumped)


def _fixture_document() -> tuple[bytes, dict]:
    """A small table with every column kind, for the front end's decoder test."""
    frame = pd.DataFrame(
        {
            "instance": np.arange(5),
            "label": [0.5, np.nan, -1.25, np.inf, 1e-300],
            "id": ["a", None, "ß ✓", "a", '"q"'],
            "flag": pd.array([True, None, False, True, False], dtype="boolean"),
            "big": np.array([0, 1, -(1 << 40), 7, 2**53], dtype=np.int64),
            "lists": pd.Series([[1, 2], None, [], [3], [4, 5]], dtype=object),
        }
    )
    xy = np.array([[0.1, -0.2], [np.nan, 1.0], [3.0, 4.0], [5.0, -np.inf], [0.0, 0.0]])
    meta = {"n": 5, "modalities": ["text", "audio"], "projection_method": "pca"}
    cols = [("columns", c, frame[c]) for c in frame.columns]
    cols += [("shapley", "text", np.array([0.1, 0.2, np.nan, -0.4, 0.5])), ("shapley", "audio", np.zeros(5))]
    cols += [("", "x", xy[:, 0]), ("", "y", xy[:, 1])]
    expected = dict(meta)
    for group, name, values in cols:
        target = expected.setdefault(group, {}) if group else expected
        target[name] = column(values)
    return coltable.encode(meta, cols), expected


def _fixture_source() -> str:
    data, expected = _fixture_document()
    return (
        "// Generated by tests/app/test_instances_binary.py (python tests/app/test_instances_binary.py): a binary\n"
        "// instance table encoded by modalens.app.coltable and the JSON document it must decode to.\n"
        f'export const ENCODED_BASE64 = "{base64.b64encode(data).decode()}";\n'
        f"export const EXPECTED = {json.dumps(expected)};\n"
    )


def test_front_end_fixture_is_what_the_encoder_writes() -> None:
    data, expected = _fixture_document()
    assert coltable.decode(data) == expected
    assert FIXTURE_TS.read_text() == _fixture_source(), "regenerate: python tests/app/test_instances_binary.py"


if __name__ == "__main__":
    FIXTURE_TS.write_text(_fixture_source())
    print(f"wrote {FIXTURE_TS}")

"""Run directories are complete or absent, and refuse what they cannot read."""

import json

import pandas as pd
import pytest

from modalens.runs import RunError, read_run, write_run


def test_round_trip_and_files(tmp_path):
    target = tmp_path / "run"
    write_run(
        target,
        kind="interaction",
        manifest={"x": 1.5},
        tables={"t": pd.DataFrame({"a": [1, 2]})},
        files={"media/f.bin": b"xy"},
    )
    run = read_run(target)
    assert run.kind == "interaction" and run.manifest["x"] == 1.5
    assert run.table("t")["a"].tolist() == [1, 2]
    assert run.file("media/f.bin").read_bytes() == b"xy"
    with pytest.raises(RunError, match="outside the run"):
        run.file("../secret")
    with pytest.raises(RunError, match="no table 'u'"):
        run.table("u")


def test_failed_write_leaves_nothing(tmp_path):
    class Boom(pd.DataFrame):
        def to_parquet(self, *a, **k):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_run(tmp_path / "run", kind="interaction", manifest={}, tables={"t": Boom({"a": [1]})})
    assert list(tmp_path.iterdir()) == []


def test_existing_run_is_kept_unless_overwrite(tmp_path):
    target = tmp_path / "run"
    write_run(target, kind="interaction", manifest={"v": 1}, tables={})
    with pytest.raises(RunError, match="exists"):
        write_run(target, kind="interaction", manifest={"v": 2}, tables={})
    assert read_run(target).manifest["v"] == 1
    write_run(target, kind="interaction", manifest={"v": 2}, tables={}, overwrite=True)
    assert read_run(target).manifest["v"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_unknown_schema_and_missing_pieces_are_refused(tmp_path):
    target = tmp_path / "run"
    write_run(target, kind="interaction", manifest={}, tables={"t": pd.DataFrame({"a": [1]})})
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError, match="schema version 99 is not supported"):
        read_run(target)
    manifest["schema_version"] = 1
    (target / "manifest.json").write_text(json.dumps(manifest))
    (target / "t.parquet").unlink()
    with pytest.raises(RunError, match="t.parquet is missing"):
        read_run(target)
    with pytest.raises(RunError, match="not a modalens run directory"):
        read_run(tmp_path)
    (target / "manifest.json").write_text("{not json")
    with pytest.raises(RunError, match="not valid JSON"):
        read_run(target)

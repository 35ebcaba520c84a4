"""Run directories are complete or absent, and refuse what they cannot read."""

import json

import pytest

from modalens.runs import SCHEMA_VERSION, RunError, read_run, write_run

from .helpers import copy_run, parts


def test_round_trip_and_files(interaction_run, tmp_path):
    m, tables = parts(read_run(interaction_run))
    target = write_run(tmp_path / "run", kind="interaction", manifest=m, tables=tables, files={"media/f.bin": b"xy"})
    run = read_run(target)
    assert run.kind == "interaction" and run.schema_version == SCHEMA_VERSION
    assert run.manifest.modalities == ["text", "audio", "vision"]
    assert run.table("instances")["instance"].tolist() == list(range(40))
    assert run.rows("instances") == 40 and run.has_table("projection")
    assert run.file("media/f.bin").read_bytes() == b"xy"
    with pytest.raises(RunError, match="outside the run"):
        run.file("../secret")
    with pytest.raises(RunError, match="no table 'u'"):
        run.table("u")
    assert run.optional_table("u") is None


def test_failed_write_leaves_nothing(interaction_run, tmp_path, monkeypatch):
    import modalens.runs.store as store

    def boom(*args, **kwargs):
        raise OSError("disk full")

    m, tables = parts(read_run(interaction_run))
    monkeypatch.setattr(store.pq, "write_table", boom)
    with pytest.raises(OSError, match="disk full"):
        write_run(tmp_path / "run", kind="interaction", manifest=m, tables=tables)
    assert list(tmp_path.iterdir()) == []


def test_a_refused_run_writes_nothing(interaction_run, tmp_path):
    m, tables = parts(read_run(interaction_run))
    tables["instances"]["label"] = "x"
    with pytest.raises(RunError):
        write_run(tmp_path / "run", kind="interaction", manifest=m, tables=tables)
    assert list(tmp_path.iterdir()) == []


def test_existing_run_is_kept_unless_overwrite(interaction_run, tmp_path):
    m, tables = parts(read_run(interaction_run))
    target = tmp_path / "run"
    write_run(target, kind="interaction", manifest={**m, "timings": {"v": 1.0}}, tables=tables)
    with pytest.raises(RunError, match="exists"):
        write_run(target, kind="interaction", manifest={**m, "timings": {"v": 2.0}}, tables=tables)
    assert read_run(target).manifest.timings == {"v": 1.0}
    write_run(target, kind="interaction", manifest={**m, "timings": {"v": 2.0}}, tables=tables, overwrite=True)
    assert read_run(target).manifest.timings == {"v": 2.0}
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_unknown_schema_and_missing_pieces_are_refused(interaction_run, tmp_path):
    target = copy_run(interaction_run, tmp_path / "run")
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError, match=r"schema version 99 is not supported; this modalens \(run schema version 2\)"):
        read_run(target)
    manifest["schema_version"] = SCHEMA_VERSION
    (target / "manifest.json").write_text(json.dumps(manifest))
    (target / "coalitions.parquet").unlink()
    with pytest.raises(RunError, match="coalitions.parquet is missing"):
        read_run(target)
    with pytest.raises(RunError, match="not a modalens run directory"):
        read_run(tmp_path)
    (target / "manifest.json").write_text("{not json")
    with pytest.raises(RunError, match="not valid JSON"):
        read_run(target)


def test_version_1_runs_are_read(interaction_run, tmp_path):
    """Version 1 stored the projection as a bare method name; it reads as {"method": name}."""
    from modalens.interactions.explanation import load_run

    target = copy_run(interaction_run, tmp_path / "run")
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["schema_version"] = 1
    manifest["projection"] = "tsne"
    (target / "manifest.json").write_text(json.dumps(manifest))
    run = read_run(target)
    assert run.schema_version == 1 and run.manifest.projection.method == "tsne"
    assert len(load_run(target)) == 40


def test_table_checks_can_wait_for_first_use(interaction_run, tmp_path):
    """The server opens runs with check_tables=False: a broken table is reported by the request that reads it."""
    target = copy_run(interaction_run, tmp_path / "run")
    (target / "outputs.parquet").write_bytes(b"not parquet")
    with pytest.raises(RunError, match=r"table 'outputs' \(outputs.parquet\) cannot be read"):
        read_run(target)
    run = read_run(target, check_tables=False)
    assert len(run.table("instances")) == 40
    with pytest.raises(RunError, match=r"table 'outputs' \(outputs.parquet\) cannot be read"):
        run.table("outputs")

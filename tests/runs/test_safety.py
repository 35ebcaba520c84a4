"""Run directories: names from data never become paths unchecked, the target is checked before any computation,
``overwrite`` keeps the old run until the new one is in place, and killed writers leave nothing that stays."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from modalens.runs import RunError, RunWarning, check_target, read_run, recover, safe_name, write_run
from modalens.runs.paths import exchange

from .helpers import parts

ROOT = Path(__file__).resolve().parents[2]


def said(result) -> str:  # noqa: ANN001 - a click Result; its error box wrapped and framed by rich
    import re

    return re.sub(r"[\s│╭╮╰╯─]+", " ", result.output)


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# -- names ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["../../x", "..", ".", "a/b", "a\\b", ".hidden", "", "a\x00b", "tab\tx", "a..b", "x" * 121, "CON", "nul.png",
     "a:b", "trailing.", "trailing ", None, 3],
)  # fmt: skip
def test_unsafe_names_are_refused_naming_them(name: object) -> None:
    with pytest.raises(RunError, match="media key") as info:
        safe_name(name, "media key")
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", ["face", "speech", "0.png", "clip-1_a.wav", "émotion", "x" * 120])
def test_safe_names_pass_unchanged(name: str) -> None:
    assert safe_name(name) == name


def test_extra_files_cannot_leave_the_run(interaction_run: Path, tmp_path: Path) -> None:
    m, tables = parts(read_run(interaction_run))
    out = tmp_path / "a" / "b"
    for rel in ["media/../../../escaped", "../escaped", "/abs/escaped", "media/face/../../../escaped", "media//x",
                "manifest.json", "instances.parquet", "media/.x", "media\\..\\x"]:  # fmt: skip
        with pytest.raises(RunError):
            write_run(out / "run", kind="interaction", manifest=m, tables=tables, files={rel: b"data"})
    assert tree(tmp_path) == set()  # not even the parent folders


def test_a_symlink_cannot_carry_a_file_out(interaction_run: Path, tmp_path: Path) -> None:
    from modalens.runs.paths import inside

    (tmp_path / "run").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "run" / "media")
    with pytest.raises(RunError, match="outside"):
        inside(tmp_path / "run", "media/x.png")


def test_media_key_from_data_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """The audit's case: a dataset media key `../../../escaped` made `modalens explain` write outside --out."""
    from modalens import explain
    from modalens.data.dataset import MediaColumn
    from modalens.data.synthetic import make_synthetic
    from modalens.models.glass_box import glass_box_model

    data = make_synthetic(12)
    expl = explain(glass_box_model(), data, n_permutations=2, feature_method=None, templates=False,
                   projection=None, progress=False)  # fmt: skip
    expl.dataset.media = {"../../../escaped": MediaColumn("image/png", [b"\x89PNG"] * len(expl.dataset))}
    out = tmp_path / "deep" / "er" / "run"
    with pytest.raises(RunError, match=r"media key '\.\./\.\./\.\./escaped'"):
        expl.save(out)
    assert tree(tmp_path) == set()
    expl.dataset.media = {"face": MediaColumn("image/png", [b"\x89PNG"] * len(expl.dataset))}
    expl.save(out)
    assert (out / "media" / "face" / "0.png").is_file() and not list(tmp_path.rglob("*escaped*"))


def test_a_manifest_media_key_that_leaves_the_run_is_refused_on_read(interaction_run: Path, tmp_path: Path) -> None:
    import shutil

    run = Path(shutil.copytree(interaction_run, tmp_path / "run"))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["media"] = {"../../..": "image/png"}
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError, match="media key"):
        read_run(run)


# -- the target, before any computation ---------------------------------------------------------------------------
def test_target_checks(interaction_run: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match="is a file"):
        check_target(tmp_path / "file" / "run")
    with pytest.raises(RunError, match="not writable"):
        check_target("/proc/modalens-test/run")  # root writes anywhere else; /proc takes no folders
    with pytest.raises(RunError, match="exists; pass overwrite"):
        check_target(interaction_run)
    assert check_target(interaction_run, overwrite=True) == interaction_run
    other = tmp_path / "home"
    other.mkdir()
    (other / "notes.txt").write_text("precious")
    with pytest.raises(RunError, match="not a modalens run"):
        check_target(other, overwrite=True)  # --overwrite replaces runs, never a folder of other files
    with pytest.raises(RunError, match="not a run directory"):
        check_target(tmp_path / "file", overwrite=True)
    assert check_target(tmp_path / "new" / "deeper" / "run") == tmp_path / "new" / "deeper" / "run"
    assert not (tmp_path / "new").exists() and [p.name for p in tmp_path.iterdir()] == ["file", "home"]


def test_unwritable_out_is_refused_by_the_cli_before_computing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from modalens.cli.main import app

    runner = CliRunner()
    data = tmp_path / "never-read.npz"  # does not exist: the output check comes first
    result = runner.invoke(app, ["explain", str(data), "--model", "x:y", "--out", "/proc/modalens-test/run"])
    assert result.exit_code == 2 and "not writable" in said(result)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("x")
    result = runner.invoke(app, ["explain", str(data), "--model", "x:y", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "exists" in said(result)


def test_features_study_checks_out_before_computing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from modalens.cli.main import app

    result = CliRunner().invoke(app, ["features", "study", str(tmp_path / "missing.npz"), "/proc/modalens-test/x"])
    assert result.exit_code == 2 and "not writable" in said(result)


# -- overwrite ------------------------------------------------------------------------------------------------------
def _timings(run: Path) -> dict:
    return read_run(run).manifest.timings


@pytest.mark.parametrize("swap", ["exchange", "two renames"])
def test_overwrite_keeps_the_old_run_readable_until_the_swap(
    interaction_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str
) -> None:
    import modalens.runs.store as store

    m, tables = parts(read_run(interaction_run))
    target = write_run(tmp_path / "run", kind="interaction", manifest={**m, "timings": {"v": 1.0}}, tables=tables)
    if swap == "two renames":
        monkeypatch.setattr(store, "exchange", lambda a, b: False)
    seen = []
    real = store.pq.write_table

    def watching(*args, **kwargs):  # while the new run is written, the old one is whole and readable
        seen.append(_timings(target))
        return real(*args, **kwargs)

    monkeypatch.setattr(store.pq, "write_table", watching)
    write_run(target, kind="interaction", manifest={**m, "timings": {"v": 2.0}}, tables=tables, overwrite=True)
    assert seen and all(t == {"v": 1.0} for t in seen)
    assert _timings(target) == {"v": 2.0}
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_exchange_swaps_two_folders(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    if not exchange(a, b):
        pytest.skip("no renameat2(RENAME_EXCHANGE) here: writers use two renames")
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"


# -- killed writers -------------------------------------------------------------------------------------------------
WRITER = """
import os, sys, time
sys.path.insert(0, {root!r})
import modalens.runs.store as store
from modalens.runs import read_run, write_run
from tests.runs.helpers import parts

stage = {stage!r}
m, tables = parts(read_run({source!r}))
if stage == "tables":
    real = store.pq.write_table
    calls = []
    def pausing(*args, **kwargs):
        real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            print("PAUSED", flush=True)
            time.sleep(120)
    store.pq.write_table = pausing
else:  # between moving the old run aside and moving the new one in
    store.exchange = lambda a, b: False
    real_rename = os.rename
    def pausing_rename(src, dst):
        real_rename(src, dst)
        if ".old-" in os.fspath(dst):
            print("PAUSED", flush=True)
            time.sleep(120)
    store.os.rename = pausing_rename
write_run({target!r}, kind="interaction", manifest={{**m, "timings": {{"v": 2.0}}}}, tables=tables, overwrite=True)
print("DONE", flush=True)
"""


def _kill_mid_write(source: Path, target: Path, stage: str) -> None:
    code = WRITER.format(root=str(ROOT), stage=stage, source=str(source), target=str(target))
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == "PAUSED", line
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()


def test_kill_while_writing_tables_leaves_the_old_run_and_the_temp_folder_is_cleaned(
    interaction_run: Path, tmp_path: Path
) -> None:
    m, tables = parts(read_run(interaction_run))
    target = write_run(tmp_path / "run", kind="interaction", manifest={**m, "timings": {"v": 1.0}}, tables=tables)
    _kill_mid_write(interaction_run, target, "tables")
    assert _timings(target) == {"v": 1.0}  # the old run, whole
    left = [p.name for p in tmp_path.iterdir() if p.name != "run"]
    assert len(left) == 1 and left[0].startswith(".run.tmp-")
    assert recover(target) == []  # the writer is gone: its folder is removed, nothing to report
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_the_next_writer_cleans_what_a_killed_one_left(interaction_run: Path, tmp_path: Path) -> None:
    m, tables = parts(read_run(interaction_run))
    target = write_run(tmp_path / "run", kind="interaction", manifest={**m, "timings": {"v": 1.0}}, tables=tables)
    _kill_mid_write(interaction_run, target, "tables")
    write_run(target, kind="interaction", manifest={**m, "timings": {"v": 3.0}}, tables=tables, overwrite=True)
    assert _timings(target) == {"v": 3.0} and [p.name for p in tmp_path.iterdir()] == ["run"]


def test_kill_between_the_two_renames_is_recovered_on_the_next_read(interaction_run: Path, tmp_path: Path) -> None:
    m, tables = parts(read_run(interaction_run))
    target = write_run(tmp_path / "run", kind="interaction", manifest={**m, "timings": {"v": 1.0}}, tables=tables)
    _kill_mid_write(interaction_run, target, "renames")
    assert not target.exists()  # the one moment without a run: the writer died in it
    names = sorted(p.name for p in tmp_path.iterdir())
    assert any(n.startswith(".run.old-") for n in names) and any(n.startswith(".run.tmp-") for n in names)
    with pytest.warns(RunWarning, match="restored"):
        run = read_run(target)
    assert run.manifest.timings == {"v": 1.0}
    # the next writer removes the killed writer's finished-but-never-moved folder
    write_run(target, kind="interaction", manifest={**m, "timings": {"v": 4.0}}, tables=tables, overwrite=True)
    assert _timings(target) == {"v": 4.0} and [p.name for p in tmp_path.iterdir()] == ["run"]


def test_leftovers_of_a_live_or_foreign_writer_are_left_alone_and_reported(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.mkdir()
    (target / "manifest.json").write_text("{}")
    live = tmp_path / f".run.tmp-{'0' * 8}-{os.getpid()}-ab12"  # another host's writer: pid means nothing here
    live.mkdir()
    old = time.time() - 3600
    os.utime(live, (old, old))
    mine = tmp_path / ".run.tmp-x"  # not a writer's name: not touched, not reported
    mine.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        notes = recover(target)
    assert len(notes) == 1 and "another machine" in notes[0] and live.exists() and mine.exists()

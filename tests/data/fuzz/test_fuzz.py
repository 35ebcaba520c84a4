"""Every loader against hostile and corrupt files: a clear modalens error or a faithful load, never anything else.

Each file is loaded in a child process under a 2 GiB address-space cap and a 20 s timeout (``harness.py``), many files
per child; a crash (negative return code), a hang, an exception other than a ``ModalensError``, an error that does
not name the file, or a load that an independent reader of the same file contradicts fails the test. The crafted
cases (``hostile.py``) reproduce code execution, memory-unsafe reconstruction, C-stack exhaustion, size bombs, HDF5
files that read other files and ragged or null Parquet rows; the mutations (``mutate.py``) are seeded byte flips,
truncations, splices, repeats and size-field inflations of small valid files in all four formats.

``MODALENS_FUZZ_CASES`` sets the number of mutations per format (default 60; ``MODALENS_FUZZ_CASES=20000`` for a long
run); ``MODALENS_FUZZ_START`` the first case number.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .harness import Case, failures, run_cases, summary
from .hostile import MARKER, write_hostile
from .mutate import write_mutations
from .seeds import write_seeds

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the harness caps memory with POSIX setrlimit")

CASES = int(os.environ.get("MODALENS_FUZZ_CASES", "60"))
START = int(os.environ.get("MODALENS_FUZZ_START", "0"))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every hostile case, its CLI runs and the mutations, run in one pass of child processes."""
    folder = tmp_path_factory.mktemp("fuzz")
    seeds = write_seeds(folder / "seeds")
    hostile = write_hostile(folder / "hostile")
    mutations = [Case(fmt, path, label) for fmt, path, label in write_mutations(seeds, folder / "mut", CASES, START)]
    cases = hostile + mutations
    results = run_cases(cases)
    print(summary(cases, results))
    return folder, list(zip(cases, results, strict=True))


def _failed(pairs, allowed):
    cases = [c for c, _ in pairs]
    results = [r if r["outcome"] in allowed else {**r, "outcome": "failed:" + r["outcome"]} for _, r in pairs]
    return [line for line in failures(cases, results) if " failed:" in line]


def test_hostile_files_end_in_a_clear_error(outcomes):
    folder, pairs = outcomes
    hostile = [(c, r) for c, r in pairs if not c.label.startswith("cli:") and c.path.parent.name == "hostile"]
    assert len(hostile) >= 85
    # a valid load of a hostile file is a failure too: each of them is refused, but for the few whose damage leaves
    # the data intact, which must load and agree with an independent reading
    bad = _failed([p for p in hostile if p[0].expect == "error"], ("error",))
    bad += _failed([p for p in hostile if p[0].expect == "ok"], ("ok",))
    assert not bad, "\n".join(bad)
    assert not (folder / "hostile" / MARKER).exists()  # no pickle ran a command


def test_bad_files_through_the_cli_give_one_error_line(outcomes):
    _, pairs = outcomes
    cli = [(c, r) for c, r in pairs if c.mode.startswith("cli")]
    assert len(cli) == 17  # 16 files, and the first again under --debug
    bad = _failed(cli, ("error",))
    assert not bad, "\n".join(bad)


def test_mutations_end_in_a_clear_error_or_a_faithful_load(outcomes):
    _, pairs = outcomes
    mutated = [(c, r) for c, r in pairs if c.path.parent.name == "mut"]
    assert len(mutated) == 4 * CASES
    bad = _failed(mutated, ("error", "ok"))
    assert not bad, "\n".join(bad)
    formats = {c.format for c, r in mutated if r["outcome"] == "ok"}
    assert formats == {"mmsa", "native", "parquet", "csd"} or CASES < 20  # some mutations only change values


def test_cli_prints_one_line_and_exits_2(tmp_path):
    """The real command line, as a user runs it, on one bad file (nested past the depth limit)."""
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"\x80\x02" + b"(" * 200 + b"t" * 200 + b".")
    args = ["explain", str(bad), "--model", "modalens.models.glass_box:glass_box_model", "--out", str(tmp_path / "r")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("MODALENS_DEBUG", None)
    run = subprocess.run([sys.executable, "-m", "modalens", *args], capture_output=True, text=True, env=env)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2, run.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and "bad.pkl" in lines[0], run.stderr
    assert "nests containers more than 100 deep" in lines[0] and "Traceback" not in run.stderr

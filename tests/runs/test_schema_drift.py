"""The files generated from the run schema match it: the front end's run types and docs/run-format.md.

When this fails, the schema changed (or a generated file was edited by hand): run
``python scripts/gen_run_schema.py`` and commit the files it writes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modalens.runs.codegen import COMMAND, DOC_FILE, TS_FILE, render_doc, typescript

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("path", "render"),
    [(TS_FILE, lambda current: typescript()), (DOC_FILE, render_doc)],
    ids=["typescript", "docs"],
)
def test_generated_file_matches_the_schema(path, render):
    current = (ROOT / path).read_text(encoding="utf-8")
    assert render(current) == current, f"{path} differs from src/modalens/runs/schema.py: run `{COMMAND}`"


def test_the_front_end_takes_its_run_types_from_the_generated_file():
    types = (ROOT / "web/src/types.ts").read_text(encoding="utf-8")
    assert 'from "./runTypes"' in types
    assert "interface Manifest" not in types and "error_by_type" not in types

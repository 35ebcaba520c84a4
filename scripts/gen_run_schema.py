"""Write the files generated from the run schema (src/modalens/runs/schema.py).

    python scripts/gen_run_schema.py          # writes web/src/runTypes.ts and the tables of docs/run-format.md
    python scripts/gen_run_schema.py --check  # exit 1 when either file differs from the schema

tests/runs/test_schema_drift.py runs the same check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modalens.runs.codegen import DOC_FILE, TS_FILE, render_doc, typescript

ROOT = Path(__file__).resolve().parents[1]


def generated() -> dict[Path, str]:
    """Each generated file's path and the content the schema gives it."""
    doc = ROOT / DOC_FILE
    return {ROOT / TS_FILE: typescript(), doc: render_doc(doc.read_text(encoding="utf-8"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report files that differ; write nothing")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generated().items():
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.write_text(text, encoding="utf-8")
    verb = "differ from the schema" if args.check else "written"
    for path in stale:
        print(f"{path}: {verb}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())

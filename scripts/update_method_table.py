"""Regenerate the method table of ``docs/attribution.md`` from the method registry.

    python scripts/update_method_table.py              # docs/attribution.md
    python scripts/update_method_table.py other.md     # any Markdown file with the two marker comments

The table sits between the markers ``modalens.interactions.methods.TABLE_START`` and ``TABLE_END``;
``tests/interactions/test_methods.py`` fails when the committed table differs from the registry.
"""

from __future__ import annotations

import sys
from pathlib import Path

from modalens.interactions.methods import write_method_table

DEFAULT = Path(__file__).resolve().parents[1] / "docs" / "attribution.md"


def main(paths: list[str]) -> None:
    for doc in paths or [str(DEFAULT)]:
        print(f"{doc}: {'updated' if write_method_table(doc) else 'up to date'}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""The visual analytics app: a read-only FastAPI server over run directories, the built web bundle (package
data under ``static/``), notebook embedding and self-contained HTML export.

Names are imported lazily so that ``import modalens.interactions.projection`` does not pull in the web stack.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "create_app": "modalens.app.server",
    "serve": "modalens.app.server",
    "show": "modalens.app.notebook",
    "export_html": "modalens.app.export",
    "project": "modalens.interactions.projection",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'modalens.app' has no attribute {name!r}")

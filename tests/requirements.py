"""Optional test requirements: skipped on a developer's partial install, required under CI (make test installs them).

A real-model or real-data test that silently skips on CI would report a requirement as met that never ran.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest


def _missing(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"required on CI: {reason}")
    pytest.skip(reason, allow_module_level=True)  # also from a module-level require_module


def require_module(name: str) -> ModuleType:
    """Import ``name``, or skip (fail on CI) naming the package to install."""
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing(f"module {name} is not installed (pip install -e '.[test]')")


def require_path(path: Path, install_hint: str) -> Path:
    """Return ``path`` if it exists, or skip (fail on CI) with how to install it."""
    if not path.exists():
        _missing(f"{path} is missing: {install_hint}")
    return path

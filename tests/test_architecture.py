"""The architecture's promises (docs/architecture.md): importable rooms, no shadowing, one error base, layers kept."""

import importlib
import importlib.util
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import grimp

import modalens
from modalens._core.errors import ModalensError

ROOT = Path(__file__).resolve().parents[1]
# the entry points run the command line when imported; InterruptedExplanation is a KeyboardInterrupt on purpose
SKIPPED_MODULES = {"modalens.__main__", "modalens.cli.__main__"}
NOT_MODALENS_ERRORS = {"InterruptedExplanation"}


def all_modules() -> list[str]:
    names = ["modalens"]
    for info in pkgutil.walk_packages(modalens.__path__, "modalens."):
        if info.name not in SKIPPED_MODULES:
            names.append(info.name)
    return names


def test_every_module_imports_by_its_dotted_path():
    for name in all_modules():
        importlib.import_module(name)


def test_the_verb_is_not_shadowed_by_a_package():
    importlib.import_module("modalens.interactions.pid")  # a submodule import must not rebind modalens.explain
    assert inspect.isfunction(modalens.explain)
    assert importlib.util.find_spec("modalens.explain") is None  # no module or package of that name


def test_no_room_imports_the_root_package():
    graph = grimp.build_graph("modalens")
    importers = {m for m in graph.find_modules_that_directly_import("modalens") if m != "modalens"}
    assert importers == set(), f"these modules import the root package (use modalens._core instead): {importers}"


def test_every_error_class_derives_from_modalens_error():
    for name in all_modules():
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if not (inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == name):
                continue
            if attr in NOT_MODALENS_ERRORS:
                continue
            assert issubclass(obj, ModalensError), f"{name}.{attr} does not derive from ModalensError"


def test_layering_contracts_are_kept():
    tool = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(tool)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "broken" in result.stdout and " 0 broken" in result.stdout

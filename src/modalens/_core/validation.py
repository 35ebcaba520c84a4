"""Checks shared by the config objects: each error names the field, what it holds and what was expected."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, TypeVar

from modalens._core.errors import ConfigurationError

C = TypeVar("C")


def check_int(name: str, value: Any, *, minimum: int | None = None) -> None:
    """``value`` must be an int (not a bool), at least ``minimum`` when one is given."""
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        expected = "an int" if minimum is None else f"an int >= {minimum}"
        raise ConfigurationError(f"{name}: expected {expected}, got {value!r}")


def updated(config: C, what: str, options: dict[str, Any]) -> C:
    """A copy of the dataclass ``config`` with ``options`` changed; unknown names are refused, listing valid ones."""
    valid = sorted(f.name for f in fields(config))  # type: ignore[arg-type]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigurationError(f"unknown {what} option(s) {unknown}; valid: {valid}")
    return replace(config, **options)  # type: ignore[type-var]


def option(help: str, *, cli: bool = True, choices: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Metadata of a config field for the command line (``modalens.cli.options``): its help text, whether it is an
    option, and its fixed choices (choices that live in a registry are supplied by the command)."""
    return {"help": help, "cli": cli, "choices": choices}

"""Command-line options derived from the engines' config dataclasses, so each setting is declared once.

A config field becomes an option when its metadata says ``cli=True``: its name (``n_permutations`` becomes
``--n-permutations``), help text, default and fixed choices come from the field; choices that live in a registry
(the explanation methods) are supplied by the command. :func:`with_config` adds those options to a typer command
and hands the command one config object.
"""

from __future__ import annotations

import enum
import functools
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field, fields
from typing import Annotated, Any

import typer

ChoiceMap = dict[str, Callable[[], Sequence[str]]]

# how a config field type reads on the command line; "none" spells None for optional strings
_SCALARS = (bool, int, float, str)


def cli_fields(config_cls: type) -> list[Field]:
    """The fields of a config dataclass that the command line exposes."""
    return [f for f in fields(config_cls) if f.metadata.get("cli")]


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    raise TypeError(f"config field {f.name} has no default; it cannot be an option")


def _cli_type(f: Field, hints: dict[str, Any]) -> tuple[Any, Any]:
    """(the option's Python type, its default as the command line shows it)."""
    hint = hints[f.name]
    default = _default(f)
    if hint in _SCALARS:
        return hint, default
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType) and len(args) == 1 and args[0] is str:
        return str, "none" if default is None else default  # the config reads "none" as None
    if origin in (typing.Union, types.UnionType) and len(args) == 1 and args[0] in _SCALARS:
        return args[0] | None, default
    if origin is tuple and args and args[0] is str:
        return list[str], list(default)
    raise TypeError(f"config field {f.name}: type {hint} has no command-line form")


def config_parameters(config_cls: type, choices: ChoiceMap | None = None) -> list[inspect.Parameter]:
    """One keyword parameter per exposed field, annotated for typer; ``choices`` adds choices read from registries."""
    hints = typing.get_type_hints(config_cls)
    params = []
    for f in cli_fields(config_cls):
        py_type, default = _cli_type(f, hints)
        listed = (choices or {}).get(f.name)
        options = listed() if listed is not None else f.metadata.get("choices")
        if options:  # typer lists an Enum's values as the option's choices and refuses others
            py_type = enum.Enum(f"{f.name}_choice", {str(c): str(c) for c in options}, type=str)
            default = py_type(str(default))
        annotation = Annotated[py_type, typer.Option(help=f.metadata["help"])]
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation))
    return params


def with_config(
    config_cls: type, *, fixed: dict[str, Any] | None = None, choices: ChoiceMap | None = None
) -> Callable[[Callable], Callable]:
    """Give a command the options of ``config_cls``; the command receives ``config=config_cls(...)``.

    ``fixed`` sets fields the command decides itself (they get no option); ``choices`` maps field names to functions
    listing their valid values (from a registry). The command's own parameters keep their
    typer annotations; it must take a ``config`` keyword.
    """
    fixed = fixed or {}

    def decorate(command: Callable) -> Callable:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "config"]
        derived = [p for p in config_parameters(config_cls, choices) if p.name not in fixed]
        names = {p.name for p in derived}

        @functools.wraps(command)
        def run(**kwargs: Any) -> Any:
            values = {name: _from_cli(kwargs.pop(name)) for name in names}
            return command(config=config_cls(**values, **fixed), **kwargs)

        ordered = _ordered([*own, *derived])
        run.__signature__ = inspect.Signature(ordered)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in ordered}
        del run.__wrapped__  # typer must read the new signature, not the command's
        return run

    return decorate


def _ordered(params: Sequence[inspect.Parameter]) -> list[inspect.Parameter]:
    """Positional arguments first, then every option as keyword-only (a valid signature in any order)."""
    positional = [p for p in params if p.default is inspect.Parameter.empty]
    rest = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params if p.default is not inspect.Parameter.empty]
    return [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in positional] + rest


def _from_cli(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    return tuple(value) if isinstance(value, list) else value

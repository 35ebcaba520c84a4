"""One registry helper for every pluggable family: explanation methods, dataset loaders, feature extractors and
reference architectures.

A :class:`Registry` maps names (and aliases) to entries; entries can be registered by call or by decorator, may be
filled lazily by importing the modules that define them, and every lookup of an unknown name raises a
:class:`~modalens._core.errors.ConfigurationError` that lists the valid names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from modalens._core.errors import ConfigurationError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind.

    Parameters
    ----------
    kind
        What the entries are, for messages ("feature method", "loader", ...).
    providers
        Dotted module names imported on first lookup; importing them registers the built-in entries. This keeps the
        registry in a low layer while the entries live where they belong.
    """

    def __init__(self, kind: str, providers: Sequence[str] = ()) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._providers = list(providers)

    def register(self, name: str, entry: T, *, aliases: Sequence[str] = (), replace: bool = False) -> T:
        """Add ``entry`` under ``name`` (and ``aliases``); a taken name is refused unless ``replace``."""
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"{self.kind} names must be non-empty strings, got {name!r}")
        for key in (name, *aliases):
            if not replace and (key in self._entries or key in self._aliases):
                raise ConfigurationError(f"{self.kind} {key!r} is already registered")
        self._entries[name] = entry
        for alias in aliases:
            self._aliases[alias] = name
        return entry

    def decorator(self, name: str, *, aliases: Sequence[str] = ()) -> Callable[[T], T]:
        """``@registry.decorator("name")`` registers the decorated object."""

        def add(entry: T) -> T:
            return self.register(name, entry, aliases=aliases)

        return add

    def unregister(self, name: str) -> T:
        """Remove ``name`` (a registered name, not an alias) and its aliases; returns the entry."""
        entry = self._entries.pop(self.canonical(name))
        self._aliases = {a: n for a, n in self._aliases.items() if n != name}
        return entry

    def _load(self) -> None:
        while self._providers:
            importlib.import_module(self._providers.pop(0))

    def canonical(self, name: str) -> str:
        """The registered name behind ``name`` (itself or the name it is an alias of)."""
        self._load()
        key = self._aliases.get(name, name)
        if key not in self._entries:
            raise ConfigurationError(f"unknown {self.kind} {name!r}; choose from {self.names()}")
        return key

    def get(self, name: str) -> T:
        """The entry registered as ``name``; an unknown name raises an error listing the choices."""
        return self._entries[self.canonical(name)]

    def names(self) -> list[str]:
        """Registered names, sorted (aliases not included)."""
        self._load()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        self._load()
        return iter(sorted(self._entries.items()))

    def __iter__(self) -> Iterator[str]:
        """The registered names, sorted (so ``list(registry)`` and ``", ".join(registry)`` read like a dict's keys)."""
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries or name in self._aliases

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

"""What every command shares: the stderr console, the one-line error and the command line's own input error."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from modalens._core.errors import ModalensError

console = Console(stderr=True, soft_wrap=True)  # paths in errors stay whole, never wrapped


class UsageError(ModalensError, ValueError):
    """A command-line argument names something that does not exist or cannot be used."""


def error_exit(exc: BaseException) -> typer.Exit:
    """Say what was wrong in one line on stderr; the caller raises the returned exit (status 2)."""
    console.print(f"[red]error:[/red] {escape(str(exc))}")
    return typer.Exit(2)

"""What every command shares: the stderr console, the one-line error and the command line's own input error."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

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


def run_explain(
    predictor: Any,
    dataset: Any,
    out: Path,
    config: Any,
    *,
    overwrite: bool,
    unit: str = "instances",
    name: str | None = None,
    record: dict[str, Any] | None = None,
) -> Any:
    """Explain, save the run and say where it went; Ctrl-C ends with status 130 and writes nothing.

    ``name`` becomes the manifest's ``model.name`` (the model's display name); ``record`` its ``config.predictor``
    (how ``modalens serve --model`` rebuilds the predictor: :func:`modalens.cli.live_model.predictor_record`).
    """
    from modalens.interactions import InterruptedExplanation, explain

    clock = time.perf_counter()
    try:
        explanation = explain(predictor, dataset, config)
    except InterruptedExplanation as exc:
        Console().print(f"[red]interrupted[/red] after {len(exc.finished)} finished {unit}; nothing was written")
        raise typer.Exit(130) from None
    if name is not None:
        explanation.model["name"] = name
    if record is not None:
        explanation.config["predictor"] = record
    path = explanation.save(out, overwrite=overwrite)
    seconds = time.perf_counter() - clock
    Console().print(f"explained {len(dataset)} {unit} in {seconds:.1f} s -> [bold]{path}[/bold]")
    return explanation

"""The command line, one package: ``modalens`` and its subcommands, over the engines' public functions."""

from modalens.cli.main import app, main

__all__ = ["app", "main"]

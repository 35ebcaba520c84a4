"""Run directories: the one on-disk format between computation and every view."""

from modalens.runs.store import SCHEMA_VERSION, Run, RunError, read_run, write_run

__all__ = ["SCHEMA_VERSION", "Run", "RunError", "read_run", "write_run"]

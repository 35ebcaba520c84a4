"""Run directories: the one on-disk format between computation and every view.

The schema (:mod:`modalens.runs.schema`) declares each run kind's manifest and tables once; :func:`write_run` is the
one writer and :func:`read_run` the one reader, and both check runs against it. Names that come from data become
paths only through :func:`safe_name`; :func:`check_target` checks an output path before any computation.
"""

from modalens.runs.paths import RunWarning, check_target, recover, safe_name
from modalens.runs.schema import (
    KINDS,
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    FeatureManifest,
    InteractionManifest,
    RunError,
    RunManifest,
)
from modalens.runs.store import Run, RunLimits, read_run, write_run

__all__ = [
    "KINDS",
    "READABLE_VERSIONS",
    "SCHEMA_VERSION",
    "FeatureManifest",
    "InteractionManifest",
    "Run",
    "RunError",
    "RunLimits",
    "RunManifest",
    "RunWarning",
    "check_target",
    "read_run",
    "recover",
    "safe_name",
    "write_run",
]

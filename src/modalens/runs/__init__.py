"""Run directories: the one on-disk format between computation and every view.

The schema (:mod:`modalens.runs.schema`) declares each run kind's manifest and tables once; :func:`write_run` is the
one writer and :func:`read_run` the one reader, and both check runs against it.
"""

from modalens.runs.schema import (
    KINDS,
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    FeatureManifest,
    InteractionManifest,
    RunError,
    RunManifest,
)
from modalens.runs.store import Run, read_run, write_run

__all__ = [
    "KINDS",
    "READABLE_VERSIONS",
    "SCHEMA_VERSION",
    "FeatureManifest",
    "InteractionManifest",
    "Run",
    "RunError",
    "RunManifest",
    "read_run",
    "write_run",
]

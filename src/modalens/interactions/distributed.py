"""Spread the per-instance stages of :func:`~modalens.interactions.explain` over a Ray cluster.

Every per-instance stage of ``explain`` (coalition values, feature attributions) is a function
``fn(dataset, index)`` of the dataset and an array of dataset row numbers, whose result for an instance depends on
that instance only (permutation orders are drawn from ``(seed, dataset row)``). So the rows can be cut into chunks,
each chunk evaluated on any worker, and the chunk results joined in row order: the result is the one the local
backend computes.

``pip install modalens[ray]`` installs Ray. With no ``address`` a local Ray instance is started on this machine
(and left running for the stages that follow; it stops when the Python process exits, or on ``ray.shutdown()``);
``address="auto"`` or ``"ray://head:10001"`` joins an existing cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from modalens._core.errors import ModalensError
from modalens.data.dataset import MultimodalDataset

# Chunks per CPU of the cluster when n_chunks is not given: a few per worker evens out uneven chunk costs
# (instances differ in length) without paying Ray's per-task overhead too often.
CHUNKS_PER_CPU = 2


class DistributedError(ModalensError, RuntimeError):
    """Ray is missing, or the distributed backend was given bad options; the message says which."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DistributedError(
            "backend='ray' needs Ray, which is not installed: pip install modalens[ray] (or pip install ray)"
        ) from None
    return ray


def _ensure_ray(ray: Any, address: str | None, num_cpus: int | None) -> None:
    """Start a local Ray instance or connect to ``address``, unless Ray is already initialised."""
    if ray.is_initialized():
        return
    if address is not None:
        if num_cpus is not None:
            raise DistributedError("num_cpus sizes a local Ray instance; leave it out when joining a cluster (address)")
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)


def _chunk_rows(n: int, n_chunks: int) -> list[np.ndarray]:
    """Row numbers ``0 .. n-1`` cut into ``n_chunks`` consecutive, nearly equal, non-empty chunks."""
    return [c for c in np.array_split(np.arange(n, dtype=np.int64), min(n_chunks, n)) if len(c)]


def _concatenate(parts: list[Any]) -> Any:
    """Join chunk results in order: arrays along axis 0, DataFrames row-wise."""
    first = parts[0]
    if isinstance(first, np.ndarray):
        return np.concatenate(parts, axis=0)
    if isinstance(first, pd.DataFrame):
        frame = pd.concat(parts, ignore_index=True)
        if "instance" in frame.columns:
            # Rows of one instance keep the order fn gave them; a stable sort on the instance is the one order that
            # does not depend on where the chunk borders fell.
            frame = frame.sort_values("instance", kind="stable", ignore_index=True)
        return frame
    raise DistributedError(
        f"a per-instance stage returned {type(first).__name__}; expected a numpy array (first axis = instances) "
        "or a pandas DataFrame"
    )


def _run_chunk(fn: Callable[[MultimodalDataset, np.ndarray], Any], dataset: MultimodalDataset, rows: np.ndarray) -> Any:
    return fn(dataset, rows)


def map_instances(
    fn: Callable[[MultimodalDataset, np.ndarray], Any],
    dataset: MultimodalDataset,
    *,
    n_chunks: int | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
) -> Any:
    """Evaluate ``fn(dataset, rows)`` on chunks of the dataset's rows as Ray tasks and join the results in order.

    Parameters
    ----------
    fn
        A per-instance stage: ``fn(dataset, rows)`` returns either an array whose first axis follows ``rows``, or
        a DataFrame whose rows name their instance by dataset row number. Its result for an instance must not
        depend on the other rows of the chunk. It is pickled (cloudpickle) once and shipped to the workers.
    dataset
        The full dataset; it is put in the Ray object store once and shared by every task.
    n_chunks
        Number of tasks (at most one per instance); by default twice the CPUs of the cluster.
    address
        A Ray cluster to join (``"auto"``, ``"ray://host:10001"``); None starts a local instance when Ray is not
        initialised yet. An already initialised Ray is used as it is.
    num_cpus
        CPUs of the local instance started when ``address`` is None (Ray's default: all of this machine's).

    Returns
    -------
    np.ndarray | pandas.DataFrame
        The chunk results concatenated in row order: the array ``fn(dataset, np.arange(len(dataset)))`` returns;
        for a DataFrame, its rows stably sorted by ``instance`` (the rows of each instance in the order ``fn`` gives
        them), which does not depend on the chunking.

    Raises
    ------
    DistributedError
        When Ray is not installed or an option is invalid.
    """
    if n_chunks is not None and (isinstance(n_chunks, bool) or not isinstance(n_chunks, int) or n_chunks < 1):
        raise DistributedError(f"backend_options n_chunks must be a positive int, got {n_chunks!r}")
    if num_cpus is not None and (isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1):
        raise DistributedError(f"backend_options num_cpus must be a positive int, got {num_cpus!r}")
    n = len(dataset)
    if n == 0:  # nothing to spread; keeps the result's type and trailing shape
        return fn(dataset, np.arange(0, dtype=np.int64))
    ray = _import_ray()
    _ensure_ray(ray, address, num_cpus)
    if n_chunks is None:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n_chunks = max(1, CHUNKS_PER_CPU * cpus)
    data_ref = ray.put(dataset)
    fn_ref = ray.put(fn)
    task = ray.remote(num_cpus=1)(_run_chunk)
    refs = [task.remote(fn_ref, data_ref, rows) for rows in _chunk_rows(n, n_chunks)]
    try:
        parts = ray.get(refs)
    except KeyboardInterrupt:
        for ref in refs:  # stop the remaining work on the cluster, not just the wait here
            ray.cancel(ref, force=True)
        raise
    return _concatenate(parts)

"""The one training loop of modalens, with hooks.

Every trainer (the reference models, the sparse autoencoders, the NCL head, the two-tower projections) runs
:func:`fit`; what differs between them is the loss of a batch and a few hooks.

The contract of :func:`fit`, per epoch ``e`` (counted from 0):

1. ``module.train()``; the epoch's batches are ``batches(e)`` when ``batches`` is callable (so it can reshuffle),
   else ``batches`` iterated afresh.
2. For each batch: ``step_loss(batch)`` gives the loss tensor, or ``(loss, logs)`` with a dict of floats to report;
   then ``optimizer.zero_grad()``, ``loss.backward()``, gradient clipping (``clip_grad_norm``),
   ``optimizer.step()``, ``scheduler.step()`` (when given), and every hook's :meth:`Hook.after_step`.
3. ``state.row`` becomes ``{"epoch": e, **means}``: the means over the epoch's steps of the logs (a bare loss is
   logged as ``"loss"``), weighted by ``batch_weight(batch)`` (default: every step counts once). Every hook's
   :meth:`Hook.end_epoch` runs in order; it may add entries to ``state.row`` (validation metrics) and may set
   ``state.stop`` (early stopping, a time limit). The row then joins ``state.history``.
4. Training ends after ``epochs`` epochs or when ``state.stop`` is set.

Ctrl-C (:class:`KeyboardInterrupt`, raised in a step or a hook) ends training early: the optimiser steps taken so
far stay in the module, the unfinished epoch is left out of ``state.history``, ``state.interrupted`` is set and a
warning says how many epochs finished. In every case (finished, stopped or interrupted) every hook's
:meth:`Hook.end` then runs (e.g. :class:`EarlyStopping` restores the best weights) and the module is left in eval
mode. Any other exception propagates as it is.

The loop draws no random numbers of its own: seeding the weights, dropout (``torch.manual_seed``) and the batch
order (the generator given to :func:`shuffled_batches`) is the caller's, which is what makes a trainer reproducible.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from modalens._core.errors import ConfigurationError

__all__ = ["Callback", "EarlyStopping", "FitState", "Hook", "TimeLimit", "fit", "shuffled_batches"]

StepLoss = Callable[[Any], "torch.Tensor | tuple[torch.Tensor, Mapping[str, float]]"]


@dataclass
class FitState:
    """What the loop knows, shared with the hooks while it runs and returned by :func:`fit`.

    ``epoch`` is the current epoch (from 0), ``step`` the number of optimiser steps taken, ``batch`` and ``logs`` the
    last step's batch and logged floats, ``row`` the current epoch's row (see :func:`fit`), ``history`` the rows of
    the finished epochs. Hooks set ``stop`` (and ``stop_reason``) to end training after the current epoch.
    ``started`` and ``epoch_started`` are :func:`time.perf_counter` readings; ``seconds`` is the loop's duration.
    """

    module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    epochs: int
    epoch: int = 0
    step: int = 0
    batch: Any = None
    logs: dict[str, float] = field(default_factory=dict)
    row: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    stop: bool = False
    stop_reason: str | None = None
    interrupted: bool = False
    started: float = 0.0
    epoch_started: float = 0.0
    seconds: float = 0.0

    @property
    def epochs_completed(self) -> int:
        """Epochs that ran to their end (an interrupted epoch does not count)."""
        return len(self.history)


class Hook:
    """Base of the loop's hooks; override any of the three methods (each gets the :class:`FitState`)."""

    def after_step(self, state: FitState) -> None:
        """After each optimiser step (and scheduler step), e.g. to renormalise weights."""

    def end_epoch(self, state: FitState) -> None:
        """After each finished epoch: add entries to ``state.row``, or set ``state.stop``."""

    def end(self, state: FitState) -> None:
        """Once when training ends, finished, stopped or interrupted (``state.interrupted``)."""


class Callback(Hook):
    """A hook from plain functions of the state, for any of the three moments."""

    def __init__(
        self,
        *,
        after_step: Callable[[FitState], None] | None = None,
        end_epoch: Callable[[FitState], None] | None = None,
        end: Callable[[FitState], None] | None = None,
    ) -> None:
        self._after_step, self._end_epoch, self._end = after_step, end_epoch, end

    def after_step(self, state: FitState) -> None:
        if self._after_step is not None:
            self._after_step(state)

    def end_epoch(self, state: FitState) -> None:
        if self._end_epoch is not None:
            self._end_epoch(state)

    def end(self, state: FitState) -> None:
        if self._end is not None:
            self._end(state)


class EarlyStopping(Hook):
    """Stop after ``patience`` epochs without a better score, and restore the weights of the best epoch.

    Parameters
    ----------
    monitor
        The score: a key of ``state.row`` (put there by an earlier hook, e.g. a validation metric) or a function
        of the state. NaN never counts as better.
    patience
        Epochs without improvement after which training stops (``state.stop_reason = "early_stopping"``).
    mode
        ``"min"`` (lower is better) or ``"max"``.
    restore_best
        At the end (also after an interrupt) load the module's state from the best epoch.
    on_improve
        Called with the state at every improvement, after the best weights were copied (e.g. to checkpoint).

    ``best_epoch`` (from 0) and ``best_score`` tell what was kept.
    """

    def __init__(
        self,
        monitor: str | Callable[[FitState], float],
        patience: int,
        *,
        mode: str = "min",
        restore_best: bool = True,
        on_improve: Callable[[FitState], None] | None = None,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ConfigurationError(f"EarlyStopping: patience must be a positive int, got {patience!r}")
        if mode not in ("min", "max"):
            raise ConfigurationError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.patience, self.mode = monitor, patience, mode
        self.restore_best, self.on_improve = restore_best, on_improve
        self.best_score = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.waited = 0

    def end_epoch(self, state: FitState) -> None:
        score = float(state.row[self.monitor] if isinstance(self.monitor, str) else self.monitor(state))
        better = score < self.best_score if self.mode == "min" else score > self.best_score
        if better:
            self.best_score, self.best_epoch, self.waited = score, state.epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in state.module.state_dict().items()}
            if self.on_improve is not None:
                self.on_improve(state)
        else:
            self.waited += 1
            if self.waited >= self.patience:
                state.stop, state.stop_reason = True, "early_stopping"

    def end(self, state: FitState) -> None:
        if self.restore_best and self.best_state is not None:
            state.module.load_state_dict(self.best_state)


class TimeLimit(Hook):
    """Start no new epoch once training has run ``seconds`` (``state.stop_reason = "time_limit"``).

    Only says so when it is what ended training: an earlier stop, or the last epoch, is left alone.
    """

    def __init__(self, seconds: float) -> None:
        if not seconds >= 0:
            raise ConfigurationError(f"TimeLimit: seconds must be >= 0, got {seconds!r}")
        self.seconds = seconds

    def end_epoch(self, state: FitState) -> None:
        last = state.epoch + 1 >= state.epochs
        if not state.stop and not last and time.perf_counter() - state.started >= self.seconds:
            state.stop, state.stop_reason = True, "time_limit"


def shuffled_batches(
    items: int | np.ndarray | torch.Tensor,
    batch_size: int,
    generator: torch.Generator | np.random.Generator,
    *,
    min_size: int = 1,
    sort: bool = False,
) -> Callable[[int], list[Any]]:
    """A ``batches`` argument for :func:`fit`: every epoch a new permutation of ``items``, cut into batches.

    Parameters
    ----------
    items
        ``n`` (the indices ``0 .. n-1``) or a 1-D array of indices.
    batch_size
        Indices per batch; the last batch holds the rest.
    generator
        A :class:`torch.Generator` (``torch.randperm``; batches are index tensors) or a numpy
        :class:`~numpy.random.Generator` (``Generator.permutation``; batches are index arrays). Each epoch draws one
        permutation from it, so a seeded generator gives the same batches run after run.
    min_size
        Batches smaller than this are left out (a contrastive loss needs at least two pairs).
    sort
        Sort the indices inside each batch (cheaper gathers from memory-mapped arrays; same rows).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ConfigurationError(f"batch_size must be a positive int, got {batch_size!r}")

    def draw(epoch: int) -> list[Any]:
        if isinstance(generator, np.random.Generator):
            order = generator.permutation(items)
        else:
            n = items if isinstance(items, int | np.integer) else len(items)
            order = torch.randperm(int(n), generator=generator)
            if not isinstance(items, int | np.integer):
                order = torch.as_tensor(items)[order]
        cut = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        if sort:
            cut = [np.sort(b) if isinstance(b, np.ndarray) else b.sort().values for b in cut]
        return [b for b in cut if len(b) >= min_size]

    return draw


def fit(
    module: torch.nn.Module,
    batches: Callable[[int], Iterable[Any]] | Iterable[Any],
    step_loss: StepLoss,
    *,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    hooks: Sequence[Hook] = (),
    scheduler: Any | None = None,
    clip_grad_norm: float | None = None,
    batch_weight: Callable[[Any], float] | None = None,
    warn_interrupted: bool = True,
    progress: bool = False,
    desc: str = "train",
    show: Sequence[str] = ("loss",),
) -> FitState:
    """Train ``module`` for ``epochs`` passes over ``batches``, minimising ``step_loss``; see the module docstring.

    Parameters
    ----------
    module
        The model; its parameters are those the optimiser updates (set up on the right device by the caller).
    batches
        ``epoch -> iterable of batches`` (e.g. :func:`shuffled_batches`), or a re-iterable of batches.
    step_loss
        ``batch -> loss`` or ``batch -> (loss, logs)``; ``logs`` maps names to floats averaged per epoch.
    optimizer
        A torch optimiser over the module's trainable parameters.
    epochs
        Planned passes (0 trains nothing).
    hooks
        :class:`Hook` objects, called in this order at each moment.
    scheduler
        A learning-rate scheduler stepped after every optimiser step.
    clip_grad_norm
        Clip the gradients of ``module.parameters()`` to this total norm before each step.
    batch_weight
        Weight of a batch in the epoch means (e.g. ``len`` to average per row); default 1 per step.
    warn_interrupted
        Warn (:class:`UserWarning`) when Ctrl-C ends training; callers that report it themselves pass False.
    progress, desc, show
        A tqdm bar over epochs named ``desc``, showing these entries of each epoch's row.

    Returns
    -------
    FitState
        ``history`` (a row per finished epoch), ``interrupted``, ``stop_reason``, ``step``, ``seconds`` ...
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 0:
        raise ConfigurationError(f"epochs must be a non-negative int, got {epochs!r}")
    state = FitState(module=module, optimizer=optimizer, epochs=int(epochs), started=time.perf_counter())
    bar = tqdm(range(int(epochs)), desc=desc, unit="epoch", disable=not progress)
    try:
        for epoch in bar:
            state.epoch, state.epoch_started = epoch, time.perf_counter()
            module.train()
            sums: dict[str, float] = {}
            weight = 0
            for batch in batches(epoch) if callable(batches) else batches:
                out = step_loss(batch)
                loss, logs = out if isinstance(out, tuple) else (out, None)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if clip_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(module.parameters(), clip_grad_norm)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                state.step += 1
                state.batch = batch
                state.logs = dict(logs) if logs is not None else {"loss": float(loss.detach())}
                for hook in hooks:
                    hook.after_step(state)
                w = 1 if batch_weight is None else batch_weight(batch)
                for key, value in state.logs.items():
                    sums[key] = sums.get(key, 0.0) + value * w
                weight += w
            state.row = {"epoch": epoch, **({k: v / weight for k, v in sums.items()} if weight else {})}
            for hook in hooks:
                hook.end_epoch(state)
            state.history.append(state.row)
            bar.set_postfix({k: f"{state.row[k]:.3f}" for k in show if isinstance(state.row.get(k), float)})
            if state.stop:
                break
    except KeyboardInterrupt:
        state.interrupted = True
        if warn_interrupted:
            _warn_from_caller(
                f"training interrupted after {state.epochs_completed} of {state.epochs} epochs; "
                "keeping the model trained so far"
            )
    finally:
        bar.close()
    for hook in hooks:
        hook.end(state)
    module.eval()
    state.seconds = time.perf_counter() - state.started
    return state


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _warn_from_caller(message: str) -> None:
    """Warn, attributing the warning to the first frame outside modalens (the user's call of a trainer)."""
    level, frame = 1, sys._getframe(0)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)

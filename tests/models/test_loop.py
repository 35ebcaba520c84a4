"""The one training loop (modalens.models.loop), on problems whose answers are known in advance."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from modalens._core.errors import ModalensError
from modalens.models.loop import Callback, EarlyStopping, TimeLimit, fit, shuffled_batches


class Scalar(torch.nn.Module):
    """One parameter ``p``; with SGD at lr 1 and the loss ``-p`` every step adds exactly 1 to it."""

    def __init__(self, value: float = 0.0) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.tensor(value))


def climb(module: Scalar):
    """A step loss whose gradient is -1: each optimiser step (SGD, lr 1) adds 1 to ``p``."""
    return lambda batch: -module.p


def sgd(module: torch.nn.Module, lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD(module.parameters(), lr=lr)


def test_one_parameter_regression_converges_to_least_squares():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=64).astype(np.float32))
    y = 2.5 * x + torch.from_numpy(rng.normal(scale=0.3, size=64).astype(np.float32))
    slope = float((x * y).sum() / (x * x).sum())  # the least-squares answer
    module = Scalar()
    first_loss = float(((0.0 * x - y) ** 2).mean())  # the loss of the first (full) batch, before any step
    state = fit(
        module,
        [torch.arange(64)],  # a re-iterable of batches: one full batch per epoch
        lambda i: ((module.p * x[i] - y[i]) ** 2).mean(),
        optimizer=sgd(module, lr=0.2),
        epochs=100,
    )
    assert module.p.item() == pytest.approx(slope, abs=1e-5)
    assert state.history[0]["loss"] == pytest.approx(first_loss, rel=1e-6)
    assert [row["epoch"] for row in state.history] == list(range(100))
    assert state.step == 100 and state.epochs_completed == 100 and state.stop_reason is None
    assert not state.interrupted and not module.training  # left in eval mode


def test_early_stopping_waits_patience_epochs_and_restores_the_best():
    scores = [3.0, 2.0, 2.5, 1.5, 1.8, float("nan"), 1.6, 0.1, 0.0, 0.0]
    module = Scalar()
    improved: list[int] = []
    stopper = EarlyStopping("score", 3, on_improve=lambda state: improved.append(state.epoch))
    score = Callback(end_epoch=lambda state: state.row.update(score=scores[state.epoch]))
    state = fit(module, [0], climb(module), optimizer=sgd(module), epochs=10, hooks=[score, stopper])
    # best at epoch 3 (1.5); epochs 4, 5 (NaN is never better) and 6 do not improve: stop after epoch 6
    assert improved == [0, 1, 3]
    assert state.stop_reason == "early_stopping" and len(state.history) == 7
    assert stopper.best_epoch == 3 and stopper.best_score == 1.5
    assert module.p.item() == 4.0  # one step per epoch: the weights after epoch 3, not the 7 taken
    assert [row["score"] for row in state.history][:4] == scores[:4]


def test_early_stopping_can_maximise_and_keep_the_last_weights():
    module = Scalar()
    stopper = EarlyStopping(lambda state: -abs(state.epoch - 1), 2, mode="max", restore_best=False)
    state = fit(module, [0], climb(module), optimizer=sgd(module), epochs=10, hooks=[stopper])
    assert stopper.best_epoch == 1 and len(state.history) == 4 and module.p.item() == 4.0


def test_a_keyboard_interrupt_keeps_the_finished_steps_and_warns():
    module = Scalar()
    ended: list[bool] = []

    def interrupt(state):
        if state.step == 7:  # three steps an epoch: the 7th is the first of epoch 2
            raise KeyboardInterrupt

    hooks = [Callback(after_step=interrupt, end=lambda state: ended.append(state.interrupted))]
    with pytest.warns(UserWarning, match="interrupted after 2 of 5 epochs; keeping the model trained so far") as rec:
        state = fit(module, [0, 1, 2], climb(module), optimizer=sgd(module), epochs=5, hooks=hooks)
    assert rec[0].filename == __file__  # attributed to the caller, not to the loop
    assert module.p.item() == 7.0  # the interrupted step was already taken
    assert state.interrupted and state.epochs_completed == 2 and state.step == 7
    assert ended == [True] and not module.training


def test_an_interrupt_in_an_epoch_hook_restores_the_best_without_a_warning_when_asked():
    module = Scalar()

    def score(state):
        if state.epoch == 3:
            raise KeyboardInterrupt
        state.row["score"] = [1.0, 0.5, 0.7][state.epoch]

    stopper = EarlyStopping("score", 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state = fit(
            module,
            [0],
            climb(module),
            optimizer=sgd(module),
            epochs=9,
            hooks=[Callback(end_epoch=score), stopper],
            warn_interrupted=False,
        )
    assert state.interrupted and len(state.history) == 3 and module.p.item() == 2.0


def test_after_step_hooks_run_once_per_step_and_see_the_stepped_weights():
    module = Scalar()
    seen: list[tuple[int, float]] = []
    hook = Callback(after_step=lambda state: seen.append((state.step, module.p.item())))
    batches = shuffled_batches(10, 4, torch.Generator().manual_seed(0), min_size=3)  # 4, 4 (the 2 left out)
    state = fit(module, batches, climb(module), optimizer=sgd(module), epochs=3, hooks=[hook, hook])
    assert state.step == 6
    assert seen == [(s, float(s)) for s in range(1, 7) for _ in range(2)]  # each hook once per step


def test_epoch_means_are_weighted_by_batch_weight():
    module = Scalar()
    sizes = [torch.arange(4), torch.arange(4), torch.arange(2)]

    def step(batch):
        return -module.p, {"size": float(len(batch))}

    per_step = fit(module, sizes, step, optimizer=sgd(module), epochs=1)
    per_row = fit(module, sizes, step, optimizer=sgd(module), epochs=1, batch_weight=len)
    assert per_step.history[0]["size"] == pytest.approx(10 / 3)
    assert per_row.history[0]["size"] == pytest.approx((16 + 16 + 4) / 10)
    assert "loss" not in per_step.history[0]  # only what step_loss logs
    empty = fit(module, [], step, optimizer=sgd(module), epochs=2)
    assert empty.history == [{"epoch": 0}, {"epoch": 1}]


def test_clipping_scheduler_and_train_mode():
    module = Scalar()
    modes: list[bool] = []

    def steep(batch):
        modes.append(module.training)
        return -100.0 * module.p  # gradient -100, clipped to norm 1

    opt = sgd(module)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5**step)
    fit(module, [0, 1], steep, optimizer=opt, epochs=2, clip_grad_norm=1.0, scheduler=sched)
    assert module.p.item() == pytest.approx(1 + 0.5 + 0.25 + 0.125)
    assert sched.get_last_lr() == [0.5**4]
    assert modes == [True] * 4 and not module.training


def test_time_limit_stops_after_the_epoch_that_ran_out():
    module = Scalar()
    state = fit(module, [0], climb(module), optimizer=sgd(module), epochs=4, hooks=[TimeLimit(0.0)])
    assert state.stop_reason == "time_limit" and len(state.history) == 1
    state = fit(module, [0], climb(module), optimizer=sgd(module), epochs=1, hooks=[TimeLimit(0.0)])
    assert state.stop_reason is None  # the last epoch ended training, not the limit


@pytest.mark.parametrize("make", [lambda: torch.Generator().manual_seed(3), lambda: np.random.default_rng(3)])
def test_shuffled_batches_cover_every_item_once_per_epoch_and_are_seeded(make):
    items = np.array([5, 7, 9, 11, 13, 15, 17])
    draw = shuffled_batches(items, 3, make(), sort=True)
    first, second = draw(0), draw(1)
    assert [len(b) for b in first] == [3, 3, 1]
    for epoch in (first, second):
        assert sorted(np.concatenate([np.asarray(b) for b in epoch]).tolist()) == items.tolist()
        assert all((np.diff(np.asarray(b)) > 0).all() for b in epoch)
    again = shuffled_batches(items, 3, make(), sort=True)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(again(0), first, strict=True))


def test_bad_settings_are_refused():
    module = Scalar()
    with pytest.raises(ModalensError, match="epochs must be a non-negative int"):
        fit(module, [0], climb(module), optimizer=sgd(module), epochs=-1)
    with pytest.raises(ValueError, match="patience must be a positive int"):
        EarlyStopping("loss", 0)
    with pytest.raises(ModalensError, match="batch_size"):
        shuffled_batches(10, 0, torch.Generator())
    state = fit(module, [0], climb(module), optimizer=sgd(module), epochs=0)
    assert state.history == [] and module.p.item() == 0.0

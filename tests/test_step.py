"""The owned step on a fake trainer: steps only where the cadence says, writes the plan's LR, clips like the host."""

from __future__ import annotations

import types

import pytest
import torch
from torch import nn

from yolo_gd.inject.host import Host
from yolo_gd.inject.run import RunState, StepCounters
from yolo_gd.inject.step import observed_step, owned_step
from yolo_gd.optim.plan import HyperPlan
from yolo_gd.optim.progress import Cadence
from yolo_gd.optim.schedules import linear


class FakeEMA:
    def __init__(self):
        self.updates = 0

    def update(self, model):
        self.updates += 1


def _trainer():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD([{"params": list(model.parameters()), "initial_lr": 0.1, "param_group": "weight"}],
                                lr=0.1, momentum=0.9)
    return types.SimpleNamespace(model=model, optimizer=optimizer, ema=FakeEMA(), device=torch.device("cpu"),
                                 scaler=torch.amp.GradScaler("cpu", enabled=False))


def _backward(trainer, scale=100.0, x=None):
    loss = trainer.model(torch.randn(8, 4) if x is None else x).square().sum() * scale
    loss.backward()


def test_owned_step_follows_the_cadence_and_the_plan():
    trainer = _trainer()
    cadence = Cadence(batches_per_epoch=4, epochs=2, accumulate=2)  # steps at batches 1, 3, 5, 7
    run = RunState(cadence, StepCounters(), HyperPlan(linear()), clip=1.0, batches_per_epoch=4)
    lrs, norms = [], []
    for ni in range(8):
        run.batch = ni
        _backward(trainer)
        grads_before = [p.grad.clone() for p in trainer.model.parameters()]
        owned_step(Host(trainer), run)
        stepped = trainer.model.weight.grad is None
        assert stepped == (ni in cadence.step_batches)
        if stepped:
            lrs.append(trainer.optimizer.param_groups[0]["lr"])
            norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads_before])).item())
    assert run.counters.steps == trainer.ema.updates == 4 and run.counters.last_step_batch == 7
    assert lrs == [0.1 * (1 - k / 4) for k in range(4)]
    assert all(n > 1.0 for n in norms)  # every window's accumulated gradient was above the clip


def test_clip_none_leaves_gradients_unscaled():
    trainer = _trainer()
    seen = {}

    class Recorder:
        def before_step(self, tr, progress, norm, clip):
            seen.update(norm=norm, clip=clip, grad=tr.model.weight.grad.clone())

        def after_step(self, tr):
            pass

    run = RunState(Cadence(4, 1, 1), StepCounters(), HyperPlan(linear()), clip=None, recorder=Recorder())
    run.batch = 0
    _backward(trainer)
    expected = trainer.model.weight.grad.clone()
    owned_step(Host(trainer), run)
    assert seen["norm"] is None and seen["clip"] is None and torch.equal(seen["grad"], expected)


def test_observed_step_is_the_hosts_step_with_the_norm_kept():
    a, b = _trainer(), _trainer()
    x = torch.randn(8, 4)
    _backward(a, x=x)
    _backward(b, x=x)
    # the host's own optimizer_step on the fake trainer; its clip's return value (the pre-clip norm) is caught
    from ultralytics.engine.trainer import BaseTrainer

    norms, clip = [], torch.nn.utils.clip_grad_norm_

    def spy(*args, **kwargs):
        norms.append(clip(*args, **kwargs))
        return norms[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.nn.utils, "clip_grad_norm_", spy)
        BaseTrainer.optimizer_step(a)
    (host_norm,) = norms
    seen = {}
    recorder = types.SimpleNamespace(before_step=lambda tr, p, norm, clip: seen.update(norm=norm, clip=clip),
                                     after_step=lambda tr: None)
    run = RunState(Cadence(4, 1, 1), StepCounters(), None, clip=10.0, recorder=recorder)
    run.batch = 0
    observed_step(Host(b), run)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert torch.equal(seen["norm"], host_norm) and seen["clip"] == 10.0 and b.ema.updates == 1


@pytest.mark.parametrize("key", ["momentum"])
def test_plan_momentum_written(key):
    trainer = _trainer()
    run = RunState(Cadence(4, 1, 1), StepCounters(), HyperPlan(linear(), momentum=0.5, momentum_key=key), clip=None)
    run.batch = 0
    _backward(trainer)
    owned_step(Host(trainer), run)
    assert trainer.optimizer.param_groups[0]["momentum"] == 0.5

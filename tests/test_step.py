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
from yolo_gd.telemetry.norms import read_grads


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
    grads = [p.grad.clone() for p in trainer.model.parameters()]
    owned_step(Host(trainer), run)
    read = seen["norm"]  # the step's one read of the gradients: no clip coefficient, grads untouched
    assert read.coef is None and seen["clip"] is None and torch.equal(seen["grad"], expected)
    assert torch.equal(read.total, torch.nn.utils.get_total_norm(grads))


def _host_step_spied(trainer):
    """The host's own optimizer_step on the fake trainer, with its clip's return value (the pre-clip norm) and
    the gradients as the clip left them caught."""
    from ultralytics.engine.trainer import BaseTrainer

    caught, clip = {}, torch.nn.utils.clip_grad_norm_

    def spy(*args, **kwargs):
        caught["norm"] = clip(*args, **kwargs)
        caught["grads"] = [p.grad.clone() for p in trainer.model.parameters()]
        return caught["norm"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.nn.utils, "clip_grad_norm_", spy)
        BaseTrainer.optimizer_step(trainer)
    return caught


@pytest.mark.parametrize("scale", [100.0, 1e-3])  # clipped (coefficient < 1) and not clipped (coefficient 1)
def test_observed_step_is_the_hosts_step_with_one_read(scale):
    a, b = _trainer(), _trainer()
    x = torch.randn(8, 4)
    _backward(a, scale=scale, x=x)
    _backward(b, scale=scale, x=x)
    host = _host_step_spied(a)
    seen = {}

    def before(tr, p, read, clip):
        seen.update(read=read, clip=clip, grads=[q.grad.clone() for q in tr.model.parameters()])

    recorder = types.SimpleNamespace(before_step=before, after_step=lambda tr: None)
    run = RunState(Cadence(4, 1, 1), StepCounters(), None, clip=10.0, recorder=recorder)
    run.batch = 0
    observed_step(Host(b), run)
    read = seen["read"]
    # the same numbers as the host's clip_grad_norm_: total norm (value and dtype), coefficient, clipped grads
    assert torch.equal(read.total, host["norm"]) and read.total.dtype == host["norm"].dtype
    assert torch.equal(read.coef, torch.clamp(10.0 / (host["norm"] + 1e-6), max=1.0))
    assert (read.coef < 1).item() == (scale == 100.0)
    assert all(torch.equal(g, h) for g, h in zip(seen["grads"], host["grads"]))
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert seen["clip"] == 10.0 and b.ema.updates == 1


def test_the_read_orders_mixed_dtypes_like_the_params():
    """Grads of two dtypes: torch buckets them, the read gives the norms back in the parameters' order."""
    params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3, dtype=torch.float64)),
              torch.nn.Parameter(torch.zeros(1))]
    for p, g in zip(params, ([3.0, 4.0], [1.0, 2.0, 2.0], [12.0])):
        p.grad = torch.tensor(g, dtype=p.dtype)
    read = read_grads(params)
    assert read.norms.tolist() == [5.0, 3.0, 12.0]
    assert torch.equal(read.total, torch.nn.utils.get_total_norm([p.grad for p in params]))


@pytest.mark.parametrize("key", ["momentum"])
def test_plan_momentum_written(key):
    trainer = _trainer()
    run = RunState(Cadence(4, 1, 1), StepCounters(), HyperPlan(linear(), momentum=0.5, momentum_key=key), clip=None)
    run.batch = 0
    _backward(trainer)
    owned_step(Host(trainer), run)
    assert trainer.optimizer.param_groups[0]["momentum"] == 0.5

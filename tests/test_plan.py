"""HyperPlan writes exactly the values Ultralytics' warmup and schedule would."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from yolo_gd.errors import UserError
from yolo_gd.optim.plan import HyperPlan, WarmupPlan
from yolo_gd.optim.progress import Progress
from yolo_gd.optim.schedules import constant, linear, ul_linear, wsd


def _p(step, batch, nb=6, epochs=3, total=12):
    return Progress(step, total, batch, nb, epochs)


def test_batch_warmup_is_the_hosts_np_interp():
    nw, lrf, epochs, lr0 = 12, 0.01, 3, 0.01
    plan = HyperPlan(ul_linear(lrf=lrf), WarmupPlan(nw, "batch", "linear", bias_lr=0.1, momentum=0.8), 0.937, "momentum")

    def lf(e):
        return max(1 - e / epochs, 0) * (1.0 - lrf) + lrf

    for ni in range(18):
        p = _p(step=ni, batch=ni)
        target = lr0 * lf(p.epoch)
        if ni <= nw:
            assert plan.lr(p, lr0, "bias") == float(np.interp(ni, [0, nw], [0.1, target]))
            assert plan.lr(p, lr0, "weight") == float(np.interp(ni, [0, nw], [0.0, target]))
            assert plan.momentum_at(p) == float(np.interp(ni, [0, nw], [0.8, 0.937]))
        else:
            assert plan.lr(p, lr0, "bias") == plan.lr(p, lr0, "weight") == target
            assert plan.momentum_at(p) == 0.937


def test_step_warmup_exp_reaches_target_and_rises():
    plan = HyperPlan(constant(), WarmupPlan(10, "step", "exp"))
    values = [plan.lr(_p(step=k, batch=0), 1.0, "weight") for k in range(12)]
    assert values[0] == 0.0 and values[10] == pytest.approx(1.0, abs=1e-15) and values[11] == 1.0
    assert all(a < b for a, b in zip(values[:10], values[1:11]))


def test_exp_warmup_hand_value_and_range():
    # WarmupPlan's exp kind: (1 - exp(-5 x / length)) / (1 - exp(-5)), exactly 1 at x == length, from any start.
    plan = HyperPlan(constant(), WarmupPlan(10, "step", "exp", bias_lr=0.1))
    assert plan.lr(_p(step=5, batch=0), 1.0, "weight") == pytest.approx(
        (1 - math.exp(-2.5)) / (1 - math.exp(-5)), abs=1e-15
    )
    bias = [plan.lr(_p(step=k, batch=0), 1.0, "bias") for k in range(12)]
    assert bias[0] == 0.1 and bias[10] == 1.0 and bias[11] == 1.0
    assert all(a < b for a, b in zip(bias[:10], bias[1:11])) and all(0.1 <= v <= 1.0 for v in bias)


def test_warmup_blend_is_np_interp_bit_for_bit():
    # The host computes np.interp(ni, [0, nw], [start, target]); the textbook start + ni / nw * (target - start)
    # differs from it in the last bit for some inputs, so WarmupPlan must call np.interp the same way.
    rng = random.Random(0)
    naive_differs = 0
    for nw in range(1, 80):
        for ni in range(0, nw + 3):
            p = Progress(step=0, total_steps=1, batch=ni, batches_per_epoch=1000, epochs=1)
            for start in (0.0, 0.1, 0.8):
                target = 0.937 if start == 0.8 else rng.uniform(0.0, 0.02)
                expected = float(np.interp(ni, [0, nw], [start, target]))
                warmup = WarmupPlan(nw, "batch", "linear", bias_lr=start, momentum=start)
                assert warmup.blend(p, start, target) == expected, (ni, nw, start, target)
                lr_plan = HyperPlan(constant(), warmup)  # target LR = initial_lr * 1.0
                assert lr_plan.lr(p, target, "bias") == expected, (ni, nw, start, target)
                momentum_plan = HyperPlan(constant(), warmup, momentum=target, momentum_key="momentum")
                assert momentum_plan.momentum_at(p) == expected, (ni, nw, start, target)
                if ni <= nw and start + (ni / nw) * (target - start) != expected:
                    naive_differs += 1
    assert naive_differs > 0  # the np.interp route matters


def test_zero_length_warmup_is_no_warmup():
    plan = HyperPlan(constant(), WarmupPlan(0, "step", bias_lr=0.1, momentum=0.5), 0.9, "momentum")
    assert plan.lr(_p(step=0, batch=0), 0.01, "bias") == 0.01 and plan.momentum_at(_p(step=0, batch=0)) == 0.9


def test_batch_clock_uses_the_batch_index():
    # Step 6 taken on batch 9 (gradient accumulation): the batch clock is 9/10 of the way, the step clock 6/10.
    p = _p(step=6, batch=9, nb=10, epochs=3, total=12)
    assert HyperPlan(constant(), WarmupPlan(10, "batch")).lr(p, 1.0, "weight") == float(np.interp(9, [0, 10], [0, 1]))
    assert HyperPlan(constant(), WarmupPlan(10, "step")).lr(p, 1.0, "weight") == float(np.interp(6, [0, 10], [0, 1]))


def test_warmup_target_is_the_schedules_value_at_that_step():
    # As Ultralytics ramps towards lr0 * lf(epoch), not towards lr0.
    plan = HyperPlan(linear(), WarmupPlan(4, "step"))
    progress = [Progress(step=k, total_steps=100, batch=k, batches_per_epoch=25, epochs=4) for k in range(100)]
    values = [plan.lr(p, 1.0, "weight") for p in progress]
    assert values[2] == float(np.interp(2, [0, 4], [0.0, linear()(progress[2])]))
    assert values[4:] == [linear()(p) for p in progress[4:]]


def test_wsd_after_warmup_is_non_increasing():
    plan = HyperPlan(wsd(decay=0.3, shape="cosine"), WarmupPlan(10, "step"))
    progress = [Progress(step=k, total_steps=100, batch=k, batches_per_epoch=25, epochs=4) for k in range(100)]
    v = [plan.lr(p, 1.0, "weight") for p in progress]
    assert v[:11] == pytest.approx([k / 10 for k in range(11)], abs=1e-15)
    assert all(b <= a for a, b in zip(v[10:], v[11:]))


def test_apply_writes_lr_momentum_and_beta1():
    groups = [{"initial_lr": 0.1, "param_group": "weight", "betas": (0.9, 0.999)},
              {"initial_lr": 0.2, "param_group": "bias", "betas": (0.9, 0.999)}]
    plan = HyperPlan(constant(), WarmupPlan(4, "step", "linear", bias_lr=0.5, momentum=0.5), 0.9, "betas")
    plan.apply(groups, _p(step=2, batch=0))
    assert groups[0]["lr"] == 0.05 and groups[1]["lr"] == 0.35
    assert groups[0]["betas"] == (0.7, 0.999)


def test_no_momentum_key_leaves_groups_alone():
    groups = [{"initial_lr": 0.1, "param_group": "weight"}]
    HyperPlan(constant(), momentum=0.9, momentum_key=None).apply(groups, _p(0, 0))
    assert groups == [{"initial_lr": 0.1, "param_group": "weight", "lr": 0.1}]


@pytest.mark.parametrize("kwargs, message", [(dict(length=-1), "length must be >= 0"),
                                             (dict(clock="epoch"), "clock must be"),
                                             (dict(kind="cos"), "kind must be"),
                                             (dict(bias_lr=-0.1), "bias LR must be >= 0")])
def test_warmup_validation(kwargs, message):
    with pytest.raises(UserError, match=message):
        WarmupPlan(**kwargs)

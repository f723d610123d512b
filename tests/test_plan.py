"""HyperPlan writes exactly the values Ultralytics' warmup and schedule would."""

from __future__ import annotations

import numpy as np
import pytest

from yolo_gd.errors import UserError
from yolo_gd.optim.plan import HyperPlan, WarmupPlan
from yolo_gd.optim.progress import Progress
from yolo_gd.optim.schedules import constant, ul_linear


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

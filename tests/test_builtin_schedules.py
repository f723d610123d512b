"""The built-in schedules' exact values at hand-computed steps, and one_cycle against torch's OneCycleLR."""

from __future__ import annotations

import math

import pytest
import torch

from test_schedules import PLAIN, RAMP, at
from yolo_gd.optim.progress import Cadence
from yolo_gd.optim.schedules import (
    bind,
    constant,
    cosine,
    cyclic,
    exponential,
    linear,
    multistep,
    one_cycle,
    polynomial,
    step,
    trace,
    wsd,
)

# ---------------------------------------------------------------------------------------------- exact values
# PLAIN: total_steps = 100, so fraction = step / 100.


def test_constant():
    assert [constant()(at(k)) for k in (0, 50, 99)] == [1.0, 1.0, 1.0]


def test_linear():
    assert linear()(at(50)) == 0.5
    assert linear(end=0.1)(at(50)) == pytest.approx(0.55, abs=1e-15)
    assert linear(end=0.1)(at(25)) == pytest.approx(0.775, abs=1e-15)
    assert linear()(at(99)) == pytest.approx(0.01, abs=1e-15)


def test_cosine():
    assert cosine()(at(50)) == pytest.approx(0.5, abs=1e-15)
    assert cosine(end=0.1)(at(50)) == pytest.approx(0.5 * (1 + 0.1), abs=1e-15)
    # 0.1 + 0.9 * (1 + cos(pi / 4)) / 2
    assert cosine(end=0.1)(at(25)) == pytest.approx(0.8681980515339464, abs=1e-15)


def test_exponential():
    assert exponential()(at(50)) == pytest.approx(0.1, abs=1e-15)  # sqrt(0.01)
    assert exponential()(at(25)) == pytest.approx(0.31622776601683794, abs=1e-15)  # 0.01 ** 0.25
    assert exponential(end=0.5)(at(50)) == pytest.approx(math.sqrt(0.5), abs=1e-15)


def test_polynomial():
    assert polynomial()(at(50)) == 0.25
    assert polynomial(power=2.0, end=0.1)(at(50)) == pytest.approx(0.325, abs=1e-15)
    assert polynomial(power=1.0)(at(30)) == linear()(at(30))
    assert polynomial(power=0.5)(at(75)) == 0.5


def test_one_cycle_hand_values():
    s = one_cycle(pct_start=0.25)  # rise ends at step 0.25 * 100 - 1 = 24
    assert s(at(0)) == pytest.approx(0.04, abs=1e-15)  # torch's 1 + (0.04 - 1) / 2 * 2: 0.040000000000000036
    assert s(at(12)) == pytest.approx(0.04 + (1 - 0.04) / 2, abs=1e-15)  # half way up
    assert s(at(24)) == 1.0  # peak
    assert s(at(24 + 75 // 2)) == pytest.approx(1e-4 + (1 - 1e-4) / 2 * (math.cos(math.pi * 37 / 75) + 1), abs=1e-15)
    assert s(at(99)) == 1e-4
    assert one_cycle(max_mult=2.0, start=0.1, end=0.0)(at(99)) == 0.0


@pytest.mark.parametrize(("total", "pct_start"), [(100, 0.3), (100, 0.25), (37, 0.4), (12, 0.3)])
def test_one_cycle_matches_torch(total, pct_start):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    ref = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=1.0, total_steps=total, pct_start=pct_start, div_factor=25.0, final_div_factor=400.0,
        anneal_strategy="cos", cycle_momentum=False,
    )  # initial = 1/25 = 0.04, min = 0.04 / 400 = 1e-4
    cadence = Cadence(batches_per_epoch=total, epochs=1, accumulate=1)
    ours = trace(one_cycle(pct_start=pct_start), cadence)
    theirs = []
    for _ in range(total):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)


def test_step():
    s = step(10, gamma=0.5)
    assert [s(at(k)) for k in (0, 9, 10, 19, 25, 99)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.5**9]
    by_epoch = bind(step("1ep"), PLAIN)  # 1 epoch = 25 steps here
    assert by_epoch == step(25) and repr(by_epoch) == "step(every='25it', gamma=0.1)"
    assert [by_epoch(at(k)) for k in (24, 25, 50)] == [1.0, 0.1, 0.1**2]
    assert step("0.25dur")(at(50)) == 0.1**2  # fractions work unbound: 25 steps


def test_step_on_ramped_run_uses_real_epochs():
    # RAMP: '1ep' is 7 steps (steps 0..6 happen on batches < 10).
    s = bind(step("1ep", gamma=0.5), RAMP)
    assert s == step(7, gamma=0.5)
    assert trace(s, RAMP) == [1.0] * 7 + [0.5] * 5


def test_multistep():
    s = bind(multistep(["1ep", 60], gamma=0.1), PLAIN)
    assert s == multistep([25, 60])
    assert [s(at(k)) for k in (0, 24, 25, 59, 60, 99)] == [1.0, 1.0, 0.1, 0.1, 0.1**2, 0.1**2]
    assert multistep([60, 25])(at(70)) == 0.1**2  # order does not matter
    assert multistep(["0.5dur", "0.75dur"], gamma=0.5)(at(75)) == 0.25


def test_wsd():
    s = wsd()  # decay over the last 20 %: steps 80..99
    assert [s(at(k)) for k in (0, 79, 80, 90)] == [1.0, 1.0, 1.0, 0.5]
    assert s(at(99)) == pytest.approx(0.05, abs=1e-15)
    assert wsd(shape="cosine")(at(90)) == pytest.approx(0.5, abs=1e-15)
    assert wsd(shape="sqrt")(at(90)) == pytest.approx(1 - math.sqrt(0.5), abs=1e-15)
    assert wsd(end=0.1)(at(90)) == pytest.approx(0.55, abs=1e-15)
    by_epoch = bind(wsd(decay="1ep"), PLAIN)  # 25 steps: decay from step 75
    assert by_epoch == wsd(decay=25)
    assert [by_epoch(at(k)) for k in (74, 75, 85)] == [1.0, 1.0, pytest.approx(0.6, abs=1e-15)]
    assert wsd(decay=0.0)(at(99)) == 1.0


def test_cyclic():
    s = cyclic(10)
    assert [s(at(k)) for k in (0, 5, 10, 15)] == [0.1, 1.0, 0.1, 1.0]
    assert s(at(2)) == pytest.approx(0.46, abs=1e-15)  # 0.1 + 0.9 * 0.4
    assert s(at(7)) == pytest.approx(0.64, abs=1e-15)  # 0.1 + 0.9 * (1 - |1.4 - 1|)
    c = cyclic(10, mode="cosine")
    assert c(at(0)) == 0.1 and c(at(5)) == 1.0
    assert c(at(2)) == pytest.approx(0.1 + 0.9 * (1 - math.cos(0.4 * math.pi)) / 2, abs=1e-15)
    assert trace(cyclic("0.1dur"), PLAIN) == trace(cyclic(10), PLAIN)
    assert bind(cyclic("1ep", low=0.0, high=2.0), PLAIN)(at(12)) == pytest.approx(2.0 * 24 / 25, abs=1e-15)

"""Stretching the rest of a schedule over an extended run: continuous at the switch, same final value."""

from __future__ import annotations

import math

import pytest

from yolo_gd.optim.progress import Cadence, Progress
from yolo_gd.optim.replan import PlanSegment, Stretched, chain
from yolo_gd.optim.schedule_base import bind
from yolo_gd.optim.schedule_registry import get_schedule

OLD = Cadence(batches_per_epoch=10, epochs=4, accumulate=1)
NEW = Cadence(batches_per_epoch=10, epochs=8, accumulate=1)


def _at(step: int, cadence: Cadence) -> Progress:
    return Progress(step, cadence.total_steps, cadence.step_batches[step], cadence.batches_per_epoch, cadence.epochs)


@pytest.mark.parametrize("name", ["cosine", "linear", "ul_cosine", "ul_linear"])
def test_continuous_at_the_switch_and_ends_at_the_old_final_value(name):
    sched = get_schedule(name)
    old = bind(sched, OLD)
    s0 = 25  # the run stopped after 25 of 40 steps and is extended to 80
    stretched = Stretched(old, s0, OLD.step_batches[s0], OLD, NEW)
    assert stretched(_at(s0, NEW)) == old(_at(s0, OLD))
    final_old = old(Progress(OLD.total_steps, OLD.total_steps, 40, 10, 4))
    assert stretched(Progress(NEW.total_steps, NEW.total_steps, 80, 10, 8)) == pytest.approx(final_old, abs=1e-12)
    values = [stretched(_at(s, NEW)) for s in range(s0, NEW.total_steps)]
    assert all(b <= a + 1e-15 for a, b in zip(values, values[1:]))  # still non-increasing


def test_exact_values_of_a_stretched_cosine():
    old = bind(get_schedule("cosine", end=0.0), OLD)
    s = Stretched(old, 20, 20, OLD, NEW)
    # new step 50 -> old step 20 + 30 * (40 - 20) / (80 - 20) = 30 of 40
    assert s(_at(50, NEW)) == pytest.approx(0.5 * (1 + math.cos(math.pi * 30 / 40)), abs=1e-15)


def test_a_chain_of_two_extensions():
    newer = Cadence(10, 12, 1)
    plans = [PlanSegment.of(OLD), PlanSegment.of(NEW, 20, 20), PlanSegment.of(newer, 60, 60)]
    sched = chain(get_schedule("linear", end=0.0), plans, bind)
    two = Stretched(Stretched(bind(get_schedule("linear", end=0.0), OLD), 20, 20, OLD, NEW), 60, 60, NEW, newer)
    for step in (60, 80, 119):
        assert sched(_at(step, newer)) == two(_at(step, newer))
    assert PlanSegment(**plans[1].plain()) == plans[1]


def test_an_extension_stretches_unfreeze_joins_and_never_refreezes_a_joined_stage():
    from yolo_gd.inject.config import InjectConfig
    from yolo_gd.inject.resolve import TrainerFacts, resolve
    from yolo_gd.inject.run import RunState, StepCounters
    from ultralytics.cfg import DEFAULT_CFG_DICT

    cfg = InjectConfig(optimizer="sgd", unfreeze=[["a*", "0.25dur"], ["b*", "0.75dur"]], unfreeze_ramp=0)
    old, new = Cadence(10, 4, 1, 0), Cadence(10, 8, 1, 0)  # 40 steps planned, extended to 80 at step 20
    facts = TrainerFacts(dict(DEFAULT_CFG_DICT), DEFAULT_CFG_DICT, 16, 10, 8, 0, 1)
    resolved = resolve(cfg, facts)
    assert resolved.plan.joins.steps == (20, 60)  # what the new length alone would give ('dur' of 80 steps)
    run = RunState(new, StepCounters(20, 199), resolved.plan, resolved=resolved)
    run.cfg = cfg
    assert run.adopt_plans([PlanSegment.of(old).plain()], 20, 20)
    # stage a joined at step 10 (before the switch) stays; stage b (step 30 of 40) stretches: 20 + 10 * 60/20
    assert run.plan.joins.steps == (10, 50)
    assert run.plan.joins.joined(0, 20) and not run.plan.joins.joined(1, 49)

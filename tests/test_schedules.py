"""LR schedules by name: every registered schedule's contract, import paths, option checks (warmup: test_plan.py)."""

from __future__ import annotations

import math
import pickle

import pytest

from conftest import require
from yolo_gd.errors import UserError
from yolo_gd.optim.progress import Cadence, Progress
from yolo_gd.optim.schedule_registry import SCHEDULES, get_schedule
from yolo_gd.optim.schedules import (
    bind,
    cosine,
    cyclic,
    exponential,
    linear,
    multistep,
    one_cycle,
    step,
    trace,
    wsd,
)

# A ramped run (12 steps, see test_durations) and a plain one: 100 steps, one per batch, 25 batches per epoch.
RAMP = Cadence(batches_per_epoch=10, epochs=3, accumulate=4, warmup_batches=20)
PLAIN = Cadence(batches_per_epoch=25, epochs=4, accumulate=1)


def at(k: int, cadence: Cadence = PLAIN) -> Progress:
    """Progress at optimizer step ``k`` of an uninterrupted run with ``cadence``."""
    return Progress(
        step=k,
        total_steps=cadence.total_steps,
        batch=cadence.step_batches[k],
        batches_per_epoch=cadence.batches_per_epoch,
        epochs=cadence.epochs,
    )


def build(name: str):
    return get_schedule(name, **SCHEDULES[name].example)


NAMES = sorted(SCHEDULES)


# ---------------------------------------------------------------------------------------------- registry contract

VALUE_AT_STEP_0 = {
    "constant": 1.0,
    "linear": 1.0,
    "cosine": 1.0,
    "one_cycle": 0.04,
    "step": 1.0,
    "multistep": 1.0,
    "exponential": 1.0,
    "polynomial": 1.0,
    "wsd": 1.0,
    "cyclic": 0.1,
    "ul_linear": 1.0,
    "ul_cosine": 1.0,
}
NON_INCREASING = {
    "constant", "linear", "cosine", "exponential", "polynomial", "ul_linear", "ul_cosine", "step", "multistep", "wsd",
}
NOT_MONOTONE = {"one_cycle", "cyclic"}


def test_every_registered_schedule_is_classified():
    # A new registry entry must state its value at step 0 and whether it is monotone (tests below use both).
    assert set(VALUE_AT_STEP_0) == set(SCHEDULES)
    assert NON_INCREASING | NOT_MONOTONE == set(SCHEDULES) and not NON_INCREASING & NOT_MONOTONE


@pytest.mark.parametrize("name", NAMES)
def test_info_is_consistent(name):
    info = SCHEDULES[name]
    assert info.name == name and info.factory.__name__ == name and info.summary
    for alias in info.aliases:
        assert alias not in SCHEDULES, f"alias '{alias}' shadows a schedule name"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("cadence", [RAMP, PLAIN], ids=["ramp", "plain"])
def test_builds_binds_and_is_finite(name, cadence):
    values = trace(build(name), cadence)
    assert len(values) == cadence.total_steps
    assert all(math.isfinite(v) and v >= 0 for v in values)
    assert values[0] == pytest.approx(VALUE_AT_STEP_0[name], abs=1e-15)


@pytest.mark.parametrize("name", [n for n in NAMES if n in NON_INCREASING])
def test_monotone_where_it_should_be(name):
    for cadence in (RAMP, PLAIN):
        v = trace(build(name), cadence)
        assert all(b <= a for a, b in zip(v, v[1:])), v
        assert v[-1] < v[0] or name == "constant"


@pytest.mark.parametrize("name", NAMES)
def test_pickle_and_equality(name):
    cloudpickle = require("cloudpickle")
    s = build(name)
    assert s == build(name) and repr(s) == repr(build(name))
    bound = bind(s, PLAIN)
    assert bind(bound, PLAIN) == bound  # binding is idempotent
    for obj in (s, bound):
        for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)):
            back = loads(dumps(obj))
            assert back == obj and repr(back) == repr(obj)
            assert trace(back, PLAIN) == trace(obj, PLAIN)


@pytest.mark.parametrize("name", NAMES)
def test_names_are_case_insensitive_and_aliases_resolve(name):
    info = SCHEDULES[name]
    for spelling in (name.upper(), f"  {name} ", *info.aliases):
        assert get_schedule(spelling, **info.example) == build(name)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_names_the_valid_ones(name):
    with pytest.raises(UserError) as info:
        get_schedule(name, bogus=1, **SCHEDULES[name].example)
    assert f"schedule '{name}' has no option 'bogus': valid options:" in str(info.value)


def test_unknown_name_suggests():
    with pytest.raises(UserError, match=r"unknown schedule 'cosin'\. Did you mean 'cosine'\?"):
        get_schedule("cosin")


def test_missing_required_option_gives_an_example():
    with pytest.raises(UserError, match=r"schedule 'step' needs option 'every' \(e\.g\. every='0\.25dur'\)"):
        get_schedule("step")
    with pytest.raises(UserError, match="schedule 'multistep' needs option 'milestones'"):
        get_schedule("multistep")


def test_specific_aliases():
    assert get_schedule("cos") == cosine()
    assert get_schedule("onecycle") == one_cycle()
    assert get_schedule("One-Cycle") == one_cycle()
    assert get_schedule("warmup_stable_decay") == wsd()
    assert get_schedule("exp", end=0.1) == exponential(0.1)


def test_equality_and_repr():
    assert linear(0) == linear(0.0) and hash(linear(0)) == hash(linear(0.0))
    assert linear(0.1) != linear(0.2) and linear(0.0) != cosine(0.0)
    assert repr(cosine(0.1)) == "cosine(end=0.1)"
    assert repr(step("3ep", gamma=0.5)) == "step(every='3ep', gamma=0.5)"
    assert repr(multistep(["1ep", 60])) == "multistep(milestones=['1ep', '60it'], gamma=0.1)"
    assert repr(wsd()) == "wsd(decay='0.2dur', end=0.0, shape='linear')"


def test_import_paths():
    assert get_schedule("yolo_gd.optim.schedules:Cosine", end=0.1) == cosine(0.1)
    with pytest.raises(UserError, match="cannot import module 'no_such_module_xyz'"):
        get_schedule("no_such_module_xyz:Thing")
    with pytest.raises(UserError, match="module 'yolo_gd.optim.schedules' has no attribute 'Nope'"):
        get_schedule("yolo_gd.optim.schedules:Nope")
    with pytest.raises(UserError, match="not an import path"):
        get_schedule("yolo_gd.optim.schedules:")


def test_schedules_module_forwards_the_registry_names():
    # Old spelling `from yolo_gd.optim.schedules import get_schedule` keeps working (lazily: no import cycle).
    from yolo_gd.optim import schedule_registry, schedules

    assert schedules.get_schedule is schedule_registry.get_schedule
    assert schedules.SCHEDULES is schedule_registry.SCHEDULES and schedules.SchedInfo is schedule_registry.SchedInfo
    with pytest.raises(AttributeError, match="has no attribute 'Warmup'"):
        schedules.Warmup  # noqa: B018  deleted: warmup is yolo_gd.optim.plan.WarmupPlan


# ---------------------------------------------------------------------------------------------- validation

INVALID = [
    ("linear", {"end": -0.1}, "schedule linear: end=-0.1 must be >= 0"),
    ("linear", {"end": "0.1"}, "end='0.1' must be a finite number"),
    ("cosine", {"end": float("nan")}, "end=nan must be a finite number"),
    ("exponential", {"end": 0.0}, "end=0.0 must be > 0"),
    ("polynomial", {"power": 0}, "power=0.0 must be > 0"),
    ("one_cycle", {"pct_start": 1.0}, "pct_start=1.0 must be in (0, 1)"),
    ("one_cycle", {"pct_start": 0}, "pct_start=0.0 must be in (0, 1)"),
    ("one_cycle", {"start": 2.0}, "start=2.0 must be in [0, max_mult=1.0]"),
    ("one_cycle", {"max_mult": 0}, "max_mult=0.0 must be > 0"),
    ("step", {"every": 10, "gamma": 0}, "gamma=0.0 must be > 0"),
    ("step", {"every": 0}, "every='0it' must be longer than zero"),
    ("step", {"every": "3 weeks"}, "schedule step: every: duration '3 weeks' has unknown unit 'weeks'"),
    ("multistep", {"milestones": []}, "milestones is empty"),
    ("multistep", {"milestones": "30ep"}, "milestones='30ep' must be a list"),
    ("multistep", {"milestones": [10], "gamma": -1}, "gamma=-1.0 must be > 0"),
    ("wsd", {"decay": 1.5}, "decay=1.5 is a fraction of the run and must be in [0, 1]"),
    ("wsd", {"shape": "square"}, "shape='square' is not one of 'linear', 'cosine', 'sqrt'"),
    ("cyclic", {"period": 1}, "period='1it' must be at least 2 optimizer steps"),
    ("cyclic", {"period": 10, "low": 2.0}, "need 0 <= low <= high"),
    ("cyclic", {"period": 10, "mode": "saw"}, "mode='saw' is not one of 'triangular', 'cosine'"),
    ("ul_linear", {"lrf": 0}, "schedule ul_linear: lrf=0.0 must be > 0"),
    ("ul_cosine", {"lrf": -1}, "lrf=-1.0 must be > 0"),
]


@pytest.mark.parametrize(("name", "kwargs", "message"), INVALID, ids=[f"{n}-{k}" for n, k, _ in INVALID])
def test_invalid_values(name, kwargs, message):
    with pytest.raises(UserError) as info:
        get_schedule(name, **kwargs)
    assert message in str(info.value)


def test_binding_errors():
    with pytest.raises(UserError, match=r"has every='1ep' in epochs, .* bind it first with \.bind\(cadence\)"):
        step("1ep")(at(0))
    with pytest.raises(UserError, match=r"step: every='0.01dur' is 0 optimizer steps in this run but must be at least"):
        bind(step("0.01dur"), RAMP)  # round(0.12) == 0 steps
    with pytest.raises(UserError, match=r"every='0.01dur' is 0 optimizer steps in this run but must be at least 1"):
        step("0.01dur")(at(0, RAMP))  # the same check unbound
    with pytest.raises(UserError, match=r"multistep milestones '5ep' is 17 steps but training has only 12"):
        bind(multistep(["1ep", "5ep"]), RAMP)
    with pytest.raises(UserError, match=r"period='0.1dur' is 1 optimizer steps in this run but must be at least 2"):
        bind(cyclic("0.1dur"), RAMP)  # round(1.2) == 1


@pytest.mark.parametrize("name", NAMES)
def test_past_the_planned_end_every_schedule_holds_its_final_value(name):
    """Progress is clamped to [0, 1]: a step past the plan (e.g. after an out-of-memory replan) never makes the LR
    negative, complex, or rise again at the end of a decay."""
    schedule = build(name).bind(PLAIN) if hasattr(build(name), "bind") else build(name)
    total = PLAIN.total_steps
    at = [Progress(s, total, min(s, PLAIN.batches_per_epoch * PLAIN.epochs - 1), PLAIN.batches_per_epoch,
                   PLAIN.epochs) for s in (total - 1, total, total + 3, 10 * total)]
    values = [schedule(p) for p in at]
    assert all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in values), values
    if name in NON_INCREASING:
        assert values[1:] == [values[1]] * 3 and values[1] <= values[0]


def test_polynomial_with_a_fractional_power_stays_real_past_the_end():
    from yolo_gd.optim.schedules import polynomial

    s = polynomial(power=0.5)
    past = s(Progress(12, 10, 0, 1, 1))
    assert isinstance(past, float) and past == s(Progress(10, 10, 0, 1, 1)) == s.end

"""LR schedules: every registered schedule's contract, exact values, Ultralytics parity, torch adapters.

Warmup is :class:`~yolo_gd.optim.plan.WarmupPlan`, tested in test_plan.py.
"""

from __future__ import annotations

import math
import pickle
import warnings

import pytest
import torch

from conftest import require
from yolo_gd.errors import UserError
from yolo_gd.optim.progress import Cadence, Progress
from yolo_gd.optim.schedule_registry import SCHEDULES, get_schedule
from yolo_gd.optim.schedules import (
    bind,
    constant,
    cosine,
    cyclic,
    exponential,
    from_callable,
    from_torch,
    linear,
    multistep,
    one_cycle,
    polynomial,
    step,
    trace,
    ul_cosine,
    ul_linear,
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


def half(progress: Progress) -> float:
    """A module-level (so picklable) user schedule."""
    return 0.5


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


# ---------------------------------------------------------------------------------------------- Ultralytics parity


def test_ul_hand_values():
    # PLAIN: 4 epochs, 25 steps each; flat within an epoch.
    lin = [ul_linear()(at(k)) for k in (0, 24, 25, 50, 75, 99)]
    assert lin == pytest.approx([1.0, 1.0, 0.7525, 0.505, 0.2575, 0.2575], abs=1e-15)
    cos = [ul_cosine()(at(k)) for k in (0, 25, 50, 75)]
    expected = [1.0, 1 - 0.99 * (1 - math.cos(math.pi / 4)) / 2, 0.505, 1 - 0.99 * (1 - math.cos(3 * math.pi / 4)) / 2]
    assert cos == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("epochs", [1, 3, 10, 300])
@pytest.mark.parametrize("lrf", [0.01, 0.1, 0.5, 1.0])
def test_ul_schedules_equal_ultralytics_bit_for_bit(epochs, lrf):
    require("ultralytics")
    from ultralytics.utils.torch_utils import one_cycle as ul_one_cycle

    ul_cos = ul_one_cycle(1, lrf, epochs)  # trainer._setup_scheduler, cos_lr=True

    def ul_lin(x):  # trainer._setup_scheduler, cos_lr=False
        return max(1 - x / epochs, 0) * (1.0 - lrf) + lrf

    lr0 = 0.01
    for ours, lf in ((ul_linear(lrf), ul_lin), (ul_cosine(lrf), ul_cos)):
        # As the trainer drives it: LambdaLR, last_epoch = start_epoch - 1, one .step() at each epoch start.
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda=lf)
        sched.last_epoch = -1
        for e in range(epochs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sched.step()
            for batch in (e * 7, e * 7 + 6):  # first and last batch of the epoch: flat within it
                p = Progress(step=batch, total_steps=7 * epochs, batch=batch, batches_per_epoch=7, epochs=epochs)
                assert ours(p) == lf(e)
                assert lr0 * ours(p) == opt.param_groups[0]["lr"]


# ---------------------------------------------------------------------------------------------- adapters


def test_from_torch_step_lr_matches_a_real_step_lr():
    s = from_torch(torch.optim.lr_scheduler.StepLR, step_size=3, gamma=0.5)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    ref = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    expected = []
    for _ in range(12):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert trace(s, RAMP) == expected == [1.0] * 3 + [0.5] * 3 + [0.25] * 3 + [0.125] * 3
    assert s(at(10, RAMP)) == 0.125 and s(at(1, RAMP)) == 1.0  # out of order: cached
    back = pickle.loads(pickle.dumps(s))  # rebuilt and replayed lazily
    assert back == s and trace(back, RAMP) == expected
    assert get_schedule(torch.optim.lr_scheduler.StepLR, step_size=3, gamma=0.5) == s
    assert get_schedule("torch.optim.lr_scheduler:StepLR", step_size=3, gamma=0.5) == s
    assert repr(s) == "from_torch(torch.optim.lr_scheduler.StepLR, step_size=3, gamma=0.5)"


def test_from_torch_errors():
    with pytest.raises(UserError, match="ReduceLROnPlateau steps on a validation metric"):
        from_torch(torch.optim.lr_scheduler.ReduceLROnPlateau)
    with pytest.raises(UserError, match="is not a torch.optim.lr_scheduler class"):
        from_torch(dict)
    with pytest.raises(UserError, match=r"StepLR\(optimizer, \*\*\{\}\) failed: .*step_size"):
        from_torch(torch.optim.lr_scheduler.StepLR)
    over = from_torch(torch.optim.lr_scheduler.OneCycleLR, max_lr=1.0, total_steps=5)
    with pytest.raises(UserError, match="cannot reach step"):
        over(Progress(step=8, total_steps=9, batch=8, batches_per_epoch=9, epochs=1))


def test_from_callable():
    s = get_schedule(half)
    assert s == from_callable(half) and s(at(3)) == 0.5
    assert pickle.loads(pickle.dumps(s)) == s
    with pytest.raises(UserError, match="is not callable"):
        from_callable(3)
    with pytest.raises(UserError, match="returned -1 at step 0: an LR multiplier must be a finite number >= 0"):
        from_callable(lambda p: -1)(at(0))
    with pytest.raises(UserError, match="returned nan"):
        from_callable(lambda p: float("nan"))(at(0))
    with pytest.raises(UserError, match="takes no options"):
        get_schedule(half, end=0.1)
    assert from_callable(step("1ep")).bind(PLAIN) == from_callable(step(25))  # a wrapped schedule is bound


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

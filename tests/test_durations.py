"""Durations: what users may write ('500it', '3ep', '0.05dur'), and how epochs become the loop's real steps."""

from __future__ import annotations

import pytest

from yolo_gd.errors import UserError
from yolo_gd.optim.durations import Duration, check_within, parse_duration
from yolo_gd.optim.progress import Cadence

# 10 batches/epoch, 3 epochs, nominal accumulate 4 ramping from 1 over the first 20 batches.
# accumulate_at(b) = round(1 + 3 b / 20) (half to even) for b <= 20, else 4:
#   b:    0 1 2 3 | 4 5 6 7 8 9 10 | 11 .. 16 | 17 ..
#   acc:  1 1 1 1 | 2 2 2 2 2 2  2 |  3 ..  3 |  4 ..
# Stepping when b - last >= acc gives steps on these batches (12 in all):
RAMP = Cadence(batches_per_epoch=10, epochs=3, accumulate=4, warmup_batches=20)
RAMP_STEP_BATCHES = (0, 1, 2, 3, 5, 7, 9, 12, 15, 19, 23, 27)


def test_hand_computed_cadence_is_what_the_rule_gives():
    # Guards the hand numbers the 'ep' tests below rely on.
    assert RAMP.step_batches == RAMP_STEP_BATCHES
    assert RAMP.total_steps == 12


GOOD = [
    (500, Duration(500, "it")),
    (500.0, Duration(500, "it")),
    (0, Duration(0, "it")),
    ("500", Duration(500, "it")),
    ("500it", Duration(500, "it")),
    ("  500 it ", Duration(500, "it")),
    ("500IT", Duration(500, "it")),
    ("1e3", Duration(1000, "it")),
    ("3ep", Duration(3, "ep")),
    ("0.5ep", Duration(0.5, "ep")),
    (".5ep", Duration(0.5, "ep")),
    (" 3 EP", Duration(3, "ep")),
    ("0.05dur", Duration(0.05, "dur")),
    ("1dur", Duration(1, "dur")),
    ("0dur", Duration(0, "dur")),
    (Duration(2, "ep"), Duration(2, "ep")),
]


@pytest.mark.parametrize(("given", "expected"), GOOD, ids=[repr(g) for g, _ in GOOD])
def test_parse_good(given, expected):
    d = parse_duration(given)
    assert d == expected
    assert isinstance(d.value, float)
    assert parse_duration(str(d)) == d  # str() is the canonical, re-parsable form


BAD = [
    ("3 epochs", "duration '3 epochs' has unknown unit 'epochs'"),
    ("3s", "unknown unit 's'"),
    ("abc", "duration 'abc' is not understood"),
    ("", "is not understood"),
    ("ep", "is not understood"),
    ("3ep3", "is not understood"),
    ("nan", "is not understood"),
    ("-3ep", "duration '-3ep' is negative"),
    ("-5", "is negative"),
    (-1, "duration '-1it' is negative"),
    ("2.5it", "duration '2.5it' is not a whole number of optimizer steps"),
    ("2.5", "is not a whole number of optimizer steps"),
    (2.5, "is not a whole number of optimizer steps"),
    ("1.5dur", "duration '1.5dur' is more than the whole training"),
    (float("inf"), "is not finite"),
    (float("nan"), "is not finite"),
    (True, "is a boolean"),
    (None, "has type NoneType"),
    ([3], "has type list"),
]


@pytest.mark.parametrize(("given", "message"), BAD, ids=[repr(g) for g, _ in BAD])
def test_parse_bad(given, message):
    with pytest.raises(UserError) as info:
        parse_duration(given)
    assert message in str(info.value)


@pytest.mark.parametrize("given", ["3 epochs", "abc", "", None, [3]])
def test_parse_errors_name_the_accepted_forms(given):
    with pytest.raises(UserError) as info:
        parse_duration(given)
    assert "'3ep'" in str(info.value) and "'0.05dur'" in str(info.value) and "'500it'" in str(info.value)


def test_duration_validates_direct_construction():
    with pytest.raises(UserError, match="unit 'epochs' is not one of it, ep, dur"):
        Duration(3, "epochs")
    with pytest.raises(UserError, match="not a number"):
        Duration("3", "ep")
    assert Duration(3, "ep") == Duration(3.0, "ep")
    assert str(Duration(3, "ep")) == "3ep" and str(Duration(0.05, "dur")) == "0.05dur"
    assert str(Duration(7, "it")) == "7it"


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        # 'ep' counts RAMP_STEP_BATCHES entries below epoch * 10.
        ("0ep", 0),
        ("0.5ep", 4),  # batches 0 1 2 3
        ("1ep", 7),  # ... 5 7 9
        ("2ep", 10),  # ... 12 15 19
        ("2.5ep", 11),  # ... 23
        ("3ep", 12),  # ... 27: the whole run
        ("5it", 5),
        ("12it", 12),
        ("0.5dur", 6),
        ("0.25dur", 3),
        ("0.125dur", 2),  # round(1.5) == 2 (half to even)
        ("1dur", 12),
        (500, 500),  # steps are not capped here: check_within decides
    ],
)
def test_to_steps_uses_the_real_cadence(text, steps):
    assert parse_duration(text).to_steps(RAMP) == steps


def test_epochs_without_ramp_differ():
    # Same run without the accumulate warmup ramp: steps on batches 3 7 11 ... 27, so one epoch is 2 steps,
    # not the 7 of the ramped run: 'ep' must follow the loop, not batches / accumulate.
    flat = Cadence(batches_per_epoch=10, epochs=3, accumulate=4, warmup_batches=0)
    assert flat.step_batches == (3, 7, 11, 15, 19, 23, 27)
    assert parse_duration("1ep").to_steps(flat) == 2
    assert parse_duration("2.5ep").to_steps(flat) == 6


def test_epochs_past_the_run_are_counted_not_capped():
    # The run continues with accumulate 4 after batch 27: steps 31 35 39 43 47 fall before epoch 5.
    assert parse_duration("5ep").to_steps(RAMP) == 17
    assert parse_duration("4ep").to_steps(RAMP) == 15  # 31 35 39


def test_check_within():
    assert check_within(12, RAMP, "warmup '3ep'") == 12
    assert check_within(0, RAMP, "x") == 0
    with pytest.raises(UserError) as info:
        check_within(parse_duration("5ep").to_steps(RAMP), RAMP, "warmup '5ep'")
    assert str(info.value) == (
        "warmup '5ep' is 17 steps but training has only 12 optimizer steps: shorten it or train longer."
    )

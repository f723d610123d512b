"""Lengths of things in training time: optimizer steps, epochs, or a fraction of the run (pure, no trainer code).

A warmup, a step-decay interval or a cycle period is easiest to state in the unit the user thinks in ("3 epochs",
"the last 20 % of training"), but a schedule runs on optimizer steps. :class:`Duration` keeps the user's unit until
the loop's :class:`~yolo_gd.optim.progress.Cadence` is known, then converts with the loop's *real* step rule: with
accumulation ramping up during warmup, an epoch early in training holds more optimizer steps than a late one, so
"3ep" is not ``3 * batches_per_epoch / accumulate`` steps.

Accepted forms (:func:`parse_duration`)::

    500, 500.0, '500', '500it'   -> 500 optimizer steps
    '3ep', '0.5ep'               -> epochs (fractions allowed)
    '0.05dur'                    -> a fraction of all optimizer steps of the run, in [0, 1]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Union

from yolo_gd.errors import UserError
from yolo_gd.optim.progress import Cadence

UNITS = ("it", "ep", "dur")
"""'it': optimizer steps, 'ep': epochs, 'dur': fraction of the whole training."""

ACCEPTED_FORMS = (
    "a number of optimizer steps (500 or '500it'), epochs ('3ep', '0.5ep') "
    "or a fraction of the whole training ('0.05dur')"
)

_PATTERN = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)$")


def _fmt(value: float) -> str:
    """The shortest text that parses back to ``value`` ('3', '0.5', '1e-05')."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


@dataclass(frozen=True)
class Duration:
    """A length of training time in the unit the user gave it.

    Args:
        value: how many units; non-negative, a whole number for 'it', at most 1 for 'dur'.
        unit: 'it' (optimizer steps), 'ep' (epochs) or 'dur' (fraction of the whole training).
    """

    value: float
    unit: str

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise UserError(f"duration unit '{self.unit}' is not one of {', '.join(UNITS)}: use {ACCEPTED_FORMS}.")
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise UserError(f"duration value {self.value!r} is not a number: use {ACCEPTED_FORMS}.")
        value = float(self.value)
        text = f"{_fmt(value) if math.isfinite(value) else value}{self.unit}"
        if not math.isfinite(value):
            raise UserError(f"duration '{text}' is not finite: use {ACCEPTED_FORMS}.")
        if value < 0:
            raise UserError(f"duration '{text}' is negative: a length of training time must be >= 0.")
        if self.unit == "it" and not value.is_integer():
            raise UserError(
                f"duration '{text}' is not a whole number of optimizer steps: "
                f"round it, or give epochs ('0.5ep') or a fraction of training ('0.05dur')."
            )
        if self.unit == "dur" and value > 1:
            raise UserError(
                f"duration '{text}' is more than the whole training: a 'dur' fraction must be in [0, 1]."
            )
        object.__setattr__(self, "value", value)

    def __str__(self) -> str:
        """The form :func:`parse_duration` reads back: '500it', '3ep', '0.05dur'."""
        return f"{_fmt(self.value)}{self.unit}"

    def to_steps(self, cadence: Cadence) -> int:
        """Optimizer steps this duration spans in an uninterrupted run with ``cadence``.

        'ep' counts the steps the loop really takes before that (fractional) epoch, accumulation warmup ramp
        included (beyond the planned epochs, as if the run went on with the same rule); 'dur' rounds (half to
        even) ``value * total_steps``. The result may exceed the run: see :func:`check_within`.
        """
        if self.unit == "it":
            return int(self.value)
        if self.unit == "ep":
            if self.value > cadence.epochs:
                # Past the end of the run: count as if training went on with the same step rule, so that
                # check_within can say how long the duration really is instead of silently capping it.
                longer = Cadence(
                    cadence.batches_per_epoch, math.ceil(self.value), cadence.accumulate, cadence.warmup_batches
                )
                return longer.steps_before_epoch(self.value)
            return cadence.steps_before_epoch(self.value)
        return round(self.value * cadence.total_steps)


DurationLike = Union[Duration, int, float, str]
"""What a user may write for a duration: a :class:`Duration`, a number of steps, or a string like '3ep'."""


def parse_duration(x: DurationLike) -> Duration:
    """Read a user-given duration: numbers are optimizer steps, strings carry a unit ('500it', '3ep', '0.05dur').

    A bare numeric string ('500') is optimizer steps too. Whitespace around and between number and unit is
    tolerated, the unit is case-insensitive. Anything else raises :class:`UserError` naming the value and the
    accepted forms.
    """
    if isinstance(x, Duration):
        return x
    if isinstance(x, bool):
        raise UserError(f"duration {x!r} is a boolean, not a length: use {ACCEPTED_FORMS}.")
    if isinstance(x, (int, float)):
        return Duration(x, "it")
    if not isinstance(x, str):
        raise UserError(f"duration {x!r} has type {type(x).__name__}: use {ACCEPTED_FORMS}.")
    m = _PATTERN.match(x.strip())
    if not m:
        raise UserError(f"duration '{x}' is not understood: use {ACCEPTED_FORMS}.")
    number, unit = m.group(1), m.group(2).lower() or "it"
    if unit not in UNITS:
        raise UserError(f"duration '{x}' has unknown unit '{m.group(2)}': use {ACCEPTED_FORMS}.")
    value = float(number)
    if value < 0:
        raise UserError(f"duration '{x}' is negative: a length of training time must be >= 0.")
    return Duration(value, unit)


def check_within(steps: int, cadence: Cadence, what: str) -> int:
    """Return ``steps`` if the run has that many optimizer steps, else raise a :class:`UserError`.

    ``what`` names the thing and how the user wrote it, e.g. ``"warmup '5ep'"``; the message then reads
    "warmup '5ep' is 40 steps but training has only 30 optimizer steps: shorten it or train longer".
    """
    total = cadence.total_steps
    if steps > total:
        raise UserError(
            f"{what} is {steps} steps but training has only {total} optimizer steps: shorten it or train longer."
        )
    return steps

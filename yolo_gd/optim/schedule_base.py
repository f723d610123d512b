"""What every LR schedule shares: the :data:`Schedule` type, argument checks, binding of durations, tracing.

The schedules themselves are in :mod:`yolo_gd.optim.builtin_schedules` (built in) and
:mod:`yolo_gd.optim.schedule_adapters` (Ultralytics' own, user callables, torch lr_schedulers); their names are in
:mod:`yolo_gd.optim.schedule_registry`; :mod:`yolo_gd.optim.schedules` re-exports all of it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from yolo_gd.errors import UserError
from yolo_gd.optim.checks import finite_number
from yolo_gd.optim.durations import Duration, check_within, parse_duration
from yolo_gd.optim.progress import Cadence, Progress

Schedule = Callable[[Progress], float]
"""A schedule: training progress -> LR multiplier (1.0 = base LR). May also have ``bind(cadence) -> Schedule``."""

__all__ = ["Schedule", "bind", "trace"]


# --------------------------------------------------------------------------------------------------- helpers


def _show(value: Any) -> str:
    """Repr of a field value as the user would write it: durations as their string form ('3ep')."""
    if isinstance(value, Duration):
        return repr(str(value))
    if isinstance(value, tuple) and value and all(isinstance(v, Duration) for v in value):
        return "[" + ", ".join(repr(str(v)) for v in value) + "]"
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '?')}.{value.__qualname__}"
    return repr(value)


def _number(owner: str, name: str, value: Any) -> float:
    """``value`` as a float, or a UserError if it is not a finite real number."""
    return finite_number(value, f"schedule {owner}: {name}")


def _require(ok: bool, owner: str, message: str) -> None:
    if not ok:
        raise UserError(f"schedule {owner}: {message}")


def _choice(owner: str, name: str, value: Any, valid: tuple[str, ...]) -> str:
    _require(
        isinstance(value, str) and value in valid,
        owner,
        f"{name}={value!r} is not one of {', '.join(repr(v) for v in valid)}.",
    )
    return value


def _duration(owner: str, name: str, value: Any) -> Duration:
    try:
        return parse_duration(value)
    except UserError as e:
        raise UserError(f"schedule {owner}: {name}: {e}") from None


def _bind_duration(d: Duration, cadence: Cadence, what: str) -> Duration:
    """``d`` converted to optimizer steps for ``cadence``, checked to fit in the run."""
    return Duration(check_within(d.to_steps(cadence), cadence, what), "it")


def _steps_now(d: Duration, progress: Progress, owner: Any, name: str) -> int:
    """``d`` in optimizer steps at call time: steps and fractions need no cadence, epochs do."""
    if d.unit == "it":
        return int(d.value)
    if d.unit == "dur":
        return round(d.value * progress.total_steps)
    raise UserError(
        f"schedule {owner!r} has {name}='{d}' in epochs, which needs the run's step cadence: "
        f"bind it first with .bind(cadence) (yolo_gd does this when it attaches the schedule)."
    )


def _cos_anneal(start: float, end: float, pct: float) -> float:
    """Half-cosine from ``start`` (pct=0) to ``end`` (pct=1); torch OneCycleLR's ``_annealing_cos``."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


class _Base:
    """Shared behaviour: a factory-style repr and binding of the fields listed in ``_durations``."""

    _name: ClassVar[str] = "?"
    _durations: ClassVar[tuple[str, ...]] = ()
    _min_steps: ClassVar[Mapping[str, int]] = {}  # per duration field: the fewest steps that make sense

    def __repr__(self) -> str:
        fields = dataclasses.fields(self)  # type: ignore[arg-type]
        args = ", ".join(f"{f.name}={_show(getattr(self, f.name))}" for f in fields)
        return f"{self._name}({args})"

    def bind(self, cadence: Cadence) -> Schedule:
        """This schedule with every duration converted to optimizer steps of ``cadence`` (identity if none)."""
        if not self._durations:
            return self  # type: ignore[return-value]
        changes: dict[str, Any] = {}
        for name in self._durations:
            value = getattr(self, name)
            if isinstance(value, tuple):
                changes[name] = tuple(_bind_duration(d, cadence, f"{self._name} {name} '{d}'") for d in value)
                continue
            bound = _bind_duration(value, cadence, f"{self._name} {name}='{value}'")
            least = self._min_steps.get(name, 0)
            _require(
                bound.value >= least,
                self._name,
                f"{name}='{value}' is {int(bound.value)} optimizer steps in this run but must be at least {least}: "
                f"make it longer.",
            )
            changes[name] = bound
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


# --------------------------------------------------------------------------------------------------- utilities


def bind(schedule: Schedule, cadence: Cadence) -> Schedule:
    """``schedule.bind(cadence)`` if it has one (durations -> steps), else ``schedule`` unchanged."""
    binder = getattr(schedule, "bind", None)
    return binder(cadence) if callable(binder) else schedule


def trace(schedule: Schedule, cadence: Cadence) -> list[float]:
    """The bound schedule's multiplier at every optimizer step of an uninterrupted run (for plots and tests)."""
    bound = bind(schedule, cadence)
    total = cadence.total_steps
    return [
        float(
            bound(
                Progress(
                    step=k,
                    total_steps=total,
                    batch=b,
                    batches_per_epoch=cadence.batches_per_epoch,
                    epochs=cadence.epochs,
                )
            )
        )
        for k, b in enumerate(cadence.step_batches)
    ]


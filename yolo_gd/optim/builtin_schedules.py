"""The built-in LR schedules: small frozen dataclasses with ``__call__(progress) -> multiplier``, and their factories.

See :mod:`yolo_gd.optim.schedules` for what a schedule is and how durations inside one are bound; the factory
functions at the end are what the registry (:mod:`yolo_gd.optim.schedule_registry`) names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from yolo_gd.optim.durations import Duration, DurationLike
from yolo_gd.optim.progress import Progress
from yolo_gd.optim.schedule_base import _Base, _choice, _cos_anneal, _duration, _number, _require, _steps_now

__all__ = [
    "WSD",
    "Constant",
    "Cosine",
    "Cyclic",
    "Exponential",
    "Linear",
    "MultiStep",
    "OneCycle",
    "Polynomial",
    "Step",
    "constant",
    "cosine",
    "cyclic",
    "exponential",
    "linear",
    "multistep",
    "one_cycle",
    "polynomial",
    "step",
    "wsd",
]


# --------------------------------------------------------------------------------------------------- schedules


@dataclass(frozen=True, repr=False)
class Constant(_Base):
    """The base LR throughout (with a warmup prefix, this is Ultralytics' behaviour with ``lrf=1``)."""

    _name: ClassVar[str] = "constant"

    def __call__(self, progress: Progress) -> float:
        return 1.0


@dataclass(frozen=True, repr=False)
class Linear(_Base):
    """Straight line from 1 to ``end`` over the run, by fraction of optimizer steps taken."""

    end: float = 0.0
    _name: ClassVar[str] = "linear"

    def __post_init__(self) -> None:
        object.__setattr__(self, "end", _number("linear", "end", self.end))
        _require(self.end >= 0, "linear", f"end={self.end} must be >= 0 (the final LR multiplier).")

    def __call__(self, progress: Progress) -> float:
        return 1.0 + (self.end - 1.0) * progress.fraction


@dataclass(frozen=True, repr=False)
class Cosine(_Base):
    """Half-cosine from 1 to ``end`` over the run (Loshchilov & Hutter, without restarts)."""

    end: float = 0.0
    _name: ClassVar[str] = "cosine"

    def __post_init__(self) -> None:
        object.__setattr__(self, "end", _number("cosine", "end", self.end))
        _require(self.end >= 0, "cosine", f"end={self.end} must be >= 0 (the final LR multiplier).")

    def __call__(self, progress: Progress) -> float:
        return self.end + (1.0 - self.end) * 0.5 * (1.0 + math.cos(math.pi * progress.fraction))


@dataclass(frozen=True, repr=False)
class Exponential(_Base):
    """Geometric decay from 1 to ``end`` over the run: ``end ** fraction`` (a constant factor per step)."""

    end: float = 0.01
    _name: ClassVar[str] = "exponential"

    def __post_init__(self) -> None:
        object.__setattr__(self, "end", _number("exponential", "end", self.end))
        _require(
            self.end > 0, "exponential", f"end={self.end} must be > 0 (a geometric decay never reaches 0; try 1e-4)."
        )

    def __call__(self, progress: Progress) -> float:
        return self.end**progress.fraction


@dataclass(frozen=True, repr=False)
class Polynomial(_Base):
    """``end + (1 - end) * (1 - fraction) ** power``: power 1 is linear, 2 (default) decays faster early."""

    power: float = 2.0
    end: float = 0.0
    _name: ClassVar[str] = "polynomial"

    def __post_init__(self) -> None:
        object.__setattr__(self, "power", _number("polynomial", "power", self.power))
        object.__setattr__(self, "end", _number("polynomial", "end", self.end))
        _require(self.power > 0, "polynomial", f"power={self.power} must be > 0 (1 is linear, 2 is quadratic).")
        _require(self.end >= 0, "polynomial", f"end={self.end} must be >= 0 (the final LR multiplier).")

    def __call__(self, progress: Progress) -> float:
        return self.end + (1.0 - self.end) * (1.0 - progress.fraction) ** self.power


@dataclass(frozen=True, repr=False)
class OneCycle(_Base):
    """Smith's one-cycle policy, as torch ``OneCycleLR(anneal_strategy='cos', three_phase=False)``.

    Rises by half-cosine from ``start`` to ``max_mult`` over the first ``pct_start`` of the steps, then falls to
    ``end`` at the last step. All three are multipliers of the base LR, so with the defaults the base LR is the
    peak and the run starts at base/25 (torch's ``div_factor=25``). Phase boundaries are torch's exactly
    (``pct_start * total_steps - 1`` and ``total_steps - 1``), so the values match OneCycleLR step for step.
    """

    max_mult: float = 1.0
    start: float = 0.04
    end: float = 1e-4
    pct_start: float = 0.3
    _name: ClassVar[str] = "one_cycle"

    def __post_init__(self) -> None:
        for name in ("max_mult", "start", "end", "pct_start"):
            object.__setattr__(self, name, _number("one_cycle", name, getattr(self, name)))
        _require(self.max_mult > 0, "one_cycle", f"max_mult={self.max_mult} must be > 0 (the peak LR multiplier).")
        _require(
            0 <= self.start <= self.max_mult,
            "one_cycle",
            f"start={self.start} must be in [0, max_mult={self.max_mult}] (the cycle rises from start to the peak).",
        )
        _require(
            0 <= self.end <= self.max_mult,
            "one_cycle",
            f"end={self.end} must be in [0, max_mult={self.max_mult}] (the cycle falls from the peak to end).",
        )
        _require(
            0 < self.pct_start < 1,
            "one_cycle",
            f"pct_start={self.pct_start} must be in (0, 1) (the fraction of the run spent rising, e.g. 0.3).",
        )

    def __call__(self, progress: Progress) -> float:
        total, k = progress.total_steps, progress.clamped_step
        rise_end = float(self.pct_start * total) - 1  # torch's phase-1 end_step
        if rise_end > 0 and k <= rise_end:
            return _cos_anneal(self.start, self.max_mult, k / rise_end)
        span = (total - 1) - rise_end
        if span <= 0:
            return self.end
        pct = min(max((k - rise_end) / span, 0.0), 1.0)
        return _cos_anneal(self.max_mult, self.end, pct)


@dataclass(frozen=True, repr=False)
class Step(_Base):
    """Multiply by ``gamma`` every ``every`` (torch StepLR): ``gamma ** (step // every)``."""

    every: DurationLike
    gamma: float = 0.1
    _name: ClassVar[str] = "step"
    _durations: ClassVar[tuple[str, ...]] = ("every",)
    _min_steps: ClassVar[Mapping[str, int]] = {"every": 1}

    def __post_init__(self) -> None:
        object.__setattr__(self, "every", _duration("step", "every", self.every))
        object.__setattr__(self, "gamma", _number("step", "gamma", self.gamma))
        _require(self.gamma > 0, "step", f"gamma={self.gamma} must be > 0 (the factor applied at each step, e.g. 0.1).")
        _require(
            self.every.value > 0,
            "step",
            f"every='{self.every}' must be longer than zero (e.g. every='10ep').",
        )

    def _every_steps(self, progress: Progress) -> int:
        n = _steps_now(self.every, progress, self, "every")
        _require(n >= 1, "step", f"every='{self.every}' is {n} optimizer steps in this run but must be at least 1.")
        return n

    def __call__(self, progress: Progress) -> float:
        return self.gamma ** (progress.clamped_step // self._every_steps(progress))


@dataclass(frozen=True, repr=False)
class MultiStep(_Base):
    """Multiply by ``gamma`` at each milestone (torch MultiStepLR): ``gamma ** #(milestones <= step)``."""

    milestones: tuple[DurationLike, ...]
    gamma: float = 0.1
    _name: ClassVar[str] = "multistep"
    _durations: ClassVar[tuple[str, ...]] = ("milestones",)

    def __post_init__(self) -> None:
        ms = self.milestones
        _require(
            isinstance(ms, (list, tuple)),
            "multistep",
            f"milestones={ms!r} must be a list of durations, e.g. milestones=['30ep', '60ep'] or [0.5, 0.75] steps.",
        )
        _require(len(ms) > 0, "multistep", "milestones is empty: give at least one (or use the 'constant' schedule).")
        object.__setattr__(
            self, "milestones", tuple(_duration("multistep", f"milestones[{i}]", m) for i, m in enumerate(ms))
        )
        object.__setattr__(self, "gamma", _number("multistep", "gamma", self.gamma))
        _require(
            self.gamma > 0, "multistep", f"gamma={self.gamma} must be > 0 (the factor applied at each milestone)."
        )

    def __call__(self, progress: Progress) -> float:
        k = progress.clamped_step
        passed = sum(1 for i, m in enumerate(self.milestones) if _steps_now(m, progress, self, f"milestones[{i}]") <= k)
        return self.gamma**passed


@dataclass(frozen=True, repr=False)
class WSD(_Base):
    """Warmup-stable-decay without the warmup (the warmup is :class:`~yolo_gd.optim.plan.WarmupPlan`): 1, then a decay to ``end``.

    The decay takes the last ``decay`` of the run: a Python float is a fraction of the run (0.2 = the last 20 %),
    an int or a string is a duration ('500it', '2ep', '0.1dur'). ``shape`` is the decay curve over that phase:
    'linear', 'cosine' or 'sqrt' (``1 - sqrt(x)``, the cooldown of Hägele et al. 2024).
    """

    decay: DurationLike = 0.2
    end: float = 0.0
    shape: str = "linear"
    _name: ClassVar[str] = "wsd"
    _durations: ClassVar[tuple[str, ...]] = ("decay",)

    def __post_init__(self) -> None:
        d = self.decay
        if isinstance(d, float):
            _require(
                0 <= d <= 1,
                "wsd",
                f"decay={d} is a fraction of the run and must be in [0, 1]; give a length as an int of steps "
                f"(1500) or a string ('1500it', '3ep').",
            )
            d = Duration(d, "dur")
        object.__setattr__(self, "decay", _duration("wsd", "decay", d))
        object.__setattr__(self, "end", _number("wsd", "end", self.end))
        _require(self.end >= 0, "wsd", f"end={self.end} must be >= 0 (the final LR multiplier).")
        _choice("wsd", "shape", self.shape, ("linear", "cosine", "sqrt"))

    def __call__(self, progress: Progress) -> float:
        length = _steps_now(self.decay, progress, self, "decay")
        begin = progress.total_steps - length
        if length <= 0 or progress.clamped_step < begin:
            return 1.0
        x = min((progress.clamped_step - begin) / length, 1.0)
        if self.shape == "linear":
            shaped = 1.0 - x
        elif self.shape == "cosine":
            shaped = 0.5 * (1.0 + math.cos(math.pi * x))
        else:
            shaped = 1.0 - math.sqrt(x)
        return self.end + (1.0 - self.end) * shaped


@dataclass(frozen=True, repr=False)
class Cyclic(_Base):
    """Cycle between ``low`` and ``high`` every ``period`` (Smith's cyclical LR), starting at ``low``.

    'triangular' is torch CyclicLR's triangle (up for half a period, down for the other half); 'cosine' follows
    the same phase along ``low + (high - low) * (1 - cos(2 pi t)) / 2``. Both peak at mid-period.
    """

    period: DurationLike
    low: float = 0.1
    high: float = 1.0
    mode: str = "triangular"
    _name: ClassVar[str] = "cyclic"
    _durations: ClassVar[tuple[str, ...]] = ("period",)
    _min_steps: ClassVar[Mapping[str, int]] = {"period": 2}

    def __post_init__(self) -> None:
        object.__setattr__(self, "period", _duration("cyclic", "period", self.period))
        object.__setattr__(self, "low", _number("cyclic", "low", self.low))
        object.__setattr__(self, "high", _number("cyclic", "high", self.high))
        _require(
            0 <= self.low <= self.high and self.high > 0,
            "cyclic",
            f"low={self.low}, high={self.high}: need 0 <= low <= high and high > 0 (multipliers of the base LR).",
        )
        _choice("cyclic", "mode", self.mode, ("triangular", "cosine"))
        _require(
            not (self.period.unit == "it" and self.period.value < 2) and self.period.value > 0,
            "cyclic",
            f"period='{self.period}' must be at least 2 optimizer steps (e.g. period='2ep').",
        )

    def __call__(self, progress: Progress) -> float:
        n = _steps_now(self.period, progress, self, "period")
        _require(n >= 2, "cyclic", f"period='{self.period}' is {n} optimizer steps in this run but must be at least 2.")
        t = (progress.clamped_step % n) / n
        if self.mode == "triangular":
            wave = 1.0 - abs(2.0 * t - 1.0)
        else:
            wave = 0.5 * (1.0 - math.cos(2.0 * math.pi * t))
        return self.low + (self.high - self.low) * wave


# --------------------------------------------------------------------------------------------------- factories


def constant() -> Constant:
    """The base LR throughout."""
    return Constant()


def linear(end: float = 0.0) -> Linear:
    """1 -> ``end`` in a straight line over the run."""
    return Linear(end)


def cosine(end: float = 0.0) -> Cosine:
    """1 -> ``end`` along a half-cosine over the run."""
    return Cosine(end)


def one_cycle(max_mult: float = 1.0, start: float = 0.04, end: float = 1e-4, pct_start: float = 0.3) -> OneCycle:
    """Smith's one-cycle (torch OneCycleLR, cosine anneal): ``start`` -> ``max_mult`` -> ``end``."""
    return OneCycle(max_mult, start, end, pct_start)


def step(every: DurationLike, gamma: float = 0.1) -> Step:
    """Multiply by ``gamma`` every ``every`` (steps, '3ep' or '0.25dur')."""
    return Step(every, gamma)


def multistep(milestones: list[DurationLike] | tuple[DurationLike, ...], gamma: float = 0.1) -> MultiStep:
    """Multiply by ``gamma`` at each milestone (steps, '30ep' or '0.5dur')."""
    return MultiStep(milestones, gamma)  # type: ignore[arg-type]


def exponential(end: float = 0.01) -> Exponential:
    """Geometric decay 1 -> ``end`` over the run."""
    return Exponential(end)


def polynomial(power: float = 2.0, end: float = 0.0) -> Polynomial:
    """``end + (1 - end) * (1 - fraction) ** power``."""
    return Polynomial(power, end)


def wsd(decay: DurationLike = 0.2, end: float = 0.0, shape: str = "linear") -> WSD:
    """Stable at 1, then decay to ``end`` over the last ``decay`` of the run (float = fraction of the run)."""
    return WSD(decay, end, shape)


def cyclic(period: DurationLike, low: float = 0.1, high: float = 1.0, mode: str = "triangular") -> Cyclic:
    """Cycle ``low`` -> ``high`` -> ``low`` every ``period``."""
    return Cyclic(period, low, high, mode)

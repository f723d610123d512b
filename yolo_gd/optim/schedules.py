"""LR schedules as small pure functions of training progress (Composer-style; no trainer code, no Ultralytics).

A schedule maps a :class:`~yolo_gd.optim.progress.Progress` to an LR *multiplier* (1.0 = the base LR); the code
that owns the optimizer multiplies each param group's base LR by it once per optimizer step. Keeping schedules
pure makes them easy to plot, test and resume: the value at step k depends on nothing but k and the run's shape.

Every schedule here is a small frozen dataclass with ``__call__``, not a closure, because schedules travel with the
trainer through pickle/cloudpickle (checkpoints, DDP launch) and because two schedules built with the same
parameters should compare equal (config diffing, resume checks).

Durations inside schedules (a step interval, milestones, a cycle period, the wsd decay phase) may be written in
steps, epochs or fractions of the run ('3ep', '0.2dur', see :mod:`yolo_gd.optim.durations`). Epochs only become
steps once the loop's :class:`~yolo_gd.optim.progress.Cadence` is known, so such schedules are *bound* first:
``schedule.bind(cadence)`` returns an equal-shaped schedule with every duration converted to optimizer steps
('30it'), checked against the run's length. Binding is idempotent and the identity for schedules without
durations; steps and 'dur' fractions also work unbound, epochs do not (calling raises and says to bind).

Warmup is a separate, composable prefix (:class:`Warmup`), because Ultralytics' warmup is not a multiplier on the
schedule but a linear *blend* from an absolute start value (0.0 for LR, ``warmup_bias_lr`` for biases,
``warmup_momentum`` for momentum) to the scheduled target: :func:`blend` reproduces that bit for bit.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from yolo_gd.errors import UserError, unknown_name
from yolo_gd.optim.durations import Duration, DurationLike, check_within, parse_duration
from yolo_gd.optim.progress import Cadence, Progress

Schedule = Callable[[Progress], float]
"""A schedule: training progress -> LR multiplier (1.0 = base LR). May also have ``bind(cadence) -> Schedule``."""

__all__ = [
    "SCHEDULES",
    "SchedInfo",
    "Schedule",
    "Warmed",
    "Warmup",
    "WarmupFactor",
    "bind",
    "blend",
    "constant",
    "cosine",
    "cyclic",
    "exponential",
    "from_callable",
    "from_torch",
    "get_schedule",
    "linear",
    "multistep",
    "one_cycle",
    "polynomial",
    "step",
    "trace",
    "ul_cosine",
    "ul_linear",
    "wsd",
]


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
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"schedule {owner}: {name}={value!r} must be a finite number.")
    return float(value)


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
        total, k = progress.total_steps, progress.step
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
        return self.gamma ** (progress.step // self._every_steps(progress))


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
        k = progress.step
        passed = sum(1 for i, m in enumerate(self.milestones) if _steps_now(m, progress, self, f"milestones[{i}]") <= k)
        return self.gamma**passed


@dataclass(frozen=True, repr=False)
class WSD(_Base):
    """Warmup-stable-decay without the warmup (compose :class:`Warmup` in front): 1, then a decay to ``end``.

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
        if length <= 0 or progress.step < begin:
            return 1.0
        x = min((progress.step - begin) / length, 1.0)
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
        t = (progress.step % n) / n
        if self.mode == "triangular":
            wave = 1.0 - abs(2.0 * t - 1.0)
        else:
            wave = 0.5 * (1.0 - math.cos(2.0 * math.pi * t))
        return self.low + (self.high - self.low) * wave


def _check_lrf(owner: str, lrf: Any) -> float:
    lrf = _number(owner, "lrf", lrf)
    _require(lrf > 0, owner, f"lrf={lrf} must be > 0 (the final LR as a fraction of lr0, Ultralytics' default 0.01).")
    return lrf


@dataclass(frozen=True, repr=False)
class ULLinear(_Base):
    """Ultralytics' default schedule exactly: a per-EPOCH staircase ``max(1 - e/epochs, 0) * (1 - lrf) + lrf``.

    ``e`` is the 0-based epoch: Ultralytics steps its LambdaLR once at the start of each epoch, so the LR is flat
    within an epoch. This is the schedule to compare against when asking "did my injected schedule change
    anything".
    """

    lrf: float = 0.01
    _name: ClassVar[str] = "ul_linear"

    def __post_init__(self) -> None:
        object.__setattr__(self, "lrf", _check_lrf("ul_linear", self.lrf))

    def __call__(self, progress: Progress) -> float:
        return max(1 - progress.epoch / progress.epochs, 0) * (1.0 - self.lrf) + self.lrf


@dataclass(frozen=True, repr=False)
class ULCosine(_Base):
    """Ultralytics' ``cos_lr=True`` schedule exactly: per-epoch ``one_cycle(1, lrf, epochs)``.

    ``max((1 - cos(e * pi / epochs)) / 2, 0) * (lrf - 1) + 1`` with ``e`` the 0-based epoch (flat within an
    epoch), written with the same operations as ``ultralytics.utils.torch_utils.one_cycle`` so the floats match.
    """

    lrf: float = 0.01
    _name: ClassVar[str] = "ul_cosine"

    def __post_init__(self) -> None:
        object.__setattr__(self, "lrf", _check_lrf("ul_cosine", self.lrf))

    def __call__(self, progress: Progress) -> float:
        y1, y2 = 1, self.lrf
        return max((1 - math.cos(progress.epoch * math.pi / progress.epochs)) / 2, 0) * (y2 - y1) + y1


@dataclass(frozen=True, repr=False)
class FromCallable(_Base):
    """A user function ``fn(progress) -> float`` as a schedule, with its output checked at every call.

    ``fn`` must be importable by name (a module-level function, a class instance, a ``functools.partial``) to
    survive pickle; cloudpickle also carries lambdas. If ``fn`` has a ``bind(cadence)`` it is used.
    """

    fn: Callable[[Progress], float]
    _name: ClassVar[str] = "from_callable"

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise UserError(
                f"schedule from_callable: {self.fn!r} is not callable: give a function fn(progress) -> float."
            )

    def bind(self, cadence: Cadence) -> Schedule:
        inner = getattr(self.fn, "bind", None)
        return FromCallable(inner(cadence)) if callable(inner) else self

    def __call__(self, progress: Progress) -> float:
        value = self.fn(progress)
        ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
        if ok and math.isfinite(value) and value >= 0:
            return float(value)
        raise UserError(
            f"schedule {_show(self.fn)} returned {value!r} at step {progress.step}: "
            f"an LR multiplier must be a finite number >= 0."
        )


def _torch_scheduler_base() -> tuple[type, type]:
    from torch.optim import lr_scheduler

    base = getattr(lr_scheduler, "LRScheduler", None) or lr_scheduler._LRScheduler
    return base, lr_scheduler.ReduceLROnPlateau


def _is_torch_scheduler_class(obj: Any) -> bool:
    """Whether ``obj`` is a torch lr_scheduler class (torch is imported only if its MRO mentions one)."""
    if not isinstance(obj, type) or not any(c.__module__ == "torch.optim.lr_scheduler" for c in obj.__mro__):
        return False
    base, plateau = _torch_scheduler_base()
    return issubclass(obj, (base, plateau))


@dataclass(frozen=True, repr=False)
class FromTorch(_Base):
    """Any ``torch.optim.lr_scheduler`` class as a pure schedule of the optimizer step.

    The scheduler is built on a dummy optimizer (one dummy parameter, ``lr=1.0``), so its LR *is* the multiplier;
    the value at step k is its LR after k ``.step()`` calls (one per optimizer step). Values are computed lazily
    and cached; only the class and its kwargs are pickled, and the scheduler is rebuilt and replayed after
    unpickling, so the schedule stays a pure function of the step.
    """

    scheduler_cls: type
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    _name: ClassVar[str] = "from_torch"

    def __post_init__(self) -> None:
        cls = self.scheduler_cls
        if not _is_torch_scheduler_class(cls):
            raise UserError(
                f"schedule from_torch: {cls!r} is not a torch.optim.lr_scheduler class "
                f"(e.g. torch.optim.lr_scheduler.StepLR); for a function of progress use from_callable."
            )
        _, plateau = _torch_scheduler_base()
        if issubclass(cls, plateau):
            raise UserError(
                f"schedule from_torch: {cls.__name__} steps on a validation metric, not on training progress, so it "
                f"cannot be a schedule of the optimizer step: use a progress-based schedule (e.g. 'cosine')."
            )
        object.__setattr__(self, "kwargs", dict(self.kwargs))
        self._reset()
        self._value(0)  # build now so bad kwargs fail at construction, not mid-training

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.kwargs.items())
        return f"from_torch({_show(self.scheduler_cls)}{args})"

    def __getstate__(self) -> dict[str, Any]:
        return {"scheduler_cls": self.scheduler_cls, "kwargs": self.kwargs}

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "scheduler_cls", state["scheduler_cls"])
        object.__setattr__(self, "kwargs", state["kwargs"])
        self._reset()

    def _reset(self) -> None:
        object.__setattr__(self, "_live", None)
        object.__setattr__(self, "_cache", [])

    def _build(self) -> tuple[Any, Any]:
        import torch

        param = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.SGD([param], lr=1.0)
        try:
            scheduler = self.scheduler_cls(optimizer, **self.kwargs)
        except (TypeError, ValueError) as e:
            raise UserError(
                f"schedule from_torch: {self.scheduler_cls.__name__}(optimizer, **{self.kwargs!r}) failed: {e}. "
                f"Pass the scheduler's own arguments (e.g. step_size=3, gamma=0.5 for StepLR)."
            ) from None
        return optimizer, scheduler

    def _value(self, k: int) -> float:
        cache: list[float] = self._cache  # type: ignore[attr-defined]
        if k < len(cache):
            return cache[k]
        if self._live is None:  # type: ignore[attr-defined]
            optimizer, scheduler = self._build()
            object.__setattr__(self, "_live", (optimizer, scheduler))
            cache[:] = [float(optimizer.param_groups[0]["lr"])]
        optimizer, scheduler = self._live  # type: ignore[attr-defined]
        while len(cache) <= k:
            optimizer.step()  # no gradients: a no-op that keeps torch's "step order" warning quiet
            try:
                scheduler.step()
            except (ValueError, RuntimeError) as e:
                raise UserError(f"schedule {self!r} cannot reach step {len(cache)}: {e}") from None
            cache.append(float(optimizer.param_groups[0]["lr"]))
        return cache[k]

    def __call__(self, progress: Progress) -> float:
        return self._value(progress.step)


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


def ul_linear(lrf: float = 0.01) -> ULLinear:
    """Ultralytics' default per-epoch linear schedule, exactly."""
    return ULLinear(lrf)


def ul_cosine(lrf: float = 0.01) -> ULCosine:
    """Ultralytics' ``cos_lr=True`` per-epoch cosine schedule, exactly."""
    return ULCosine(lrf)


def from_callable(fn: Callable[[Progress], float]) -> FromCallable:
    """A user function ``fn(progress) -> float`` as a checked schedule."""
    return FromCallable(fn)


def from_torch(scheduler_cls: type, **kwargs: Any) -> FromTorch:
    """A ``torch.optim.lr_scheduler`` class (stepped once per optimizer step) as a schedule."""
    return FromTorch(scheduler_cls, kwargs)


# --------------------------------------------------------------------------------------------------- warmup


class WarmupFactor(float):
    """A warmup factor in [0, 1] that remembers the position ``x`` and ``length`` it came from (linear kind).

    Ultralytics computes warmup values as ``np.interp(ni, [0, nw], [start, target])``, which is
    ``(target - start) / nw * ni + start``; ``start + (ni / nw) * (target - start)`` differs from it in the last
    bit for some inputs. Carrying ``x`` and ``length`` lets :func:`blend` call np.interp on them, so a yolo_gd run
    with the batch clock reproduces the host's floats exactly. It is a plain float to everything else.
    """

    x: float | None
    length: float | None

    def __new__(cls, value: float, x: float | None = None, length: float | None = None) -> WarmupFactor:
        self = super().__new__(cls, value)
        self.x, self.length = x, length
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (WarmupFactor, (float(self), self.x, self.length))

    def __repr__(self) -> str:
        return f"WarmupFactor({float(self)!r}, x={self.x!r}, length={self.length!r})"


def blend(factor: float, start: float, target: float) -> float:
    """``start + factor * (target - start)``: warmup's blend from an absolute start value to the scheduled target.

    With a :class:`WarmupFactor` from a linear warmup this is ``float(np.interp(x, [0, length], [start, target]))``
    bit for bit (Ultralytics' own computation); with a plain float it is ``np.interp(factor, [0, 1], ...)``,
    i.e. ``(target - start) * factor + start`` clamped to [start, target]. Factor 0 gives ``start`` and factor 1
    gives ``target`` exactly.
    """
    x = getattr(factor, "x", None)
    length = getattr(factor, "length", None)
    if x is not None and length is not None:
        if length <= 0:
            return float(target)
        return float(np.interp(x, [0, length], [start, target]))
    return float(np.interp(float(factor), [0.0, 1.0], [start, target]))


_EXP_SHARPNESS = 5.0
_EXP_NORM = 1.0 - math.exp(-_EXP_SHARPNESS)


@dataclass(frozen=True, repr=False)
class Warmup:
    """A warmup prefix: the factor rises from 0 to 1 over ``length``, then stays 1.

    Args:
        length: how long ('3ep', 500 steps, '0.05dur').
        kind: 'linear' (``x / length``, Ultralytics' shape) or 'exp'
            (``(1 - exp(-5 x / length)) / (1 - exp(-5))``: steep at first, flat near the end, exactly 1 at
            ``length``; the normalisation removes the 0.7 % gap plain ``1 - exp(-5)`` would leave).
        clock: 'step' (x = optimizer steps taken, length in steps) or 'batch' (x = global batch index ``ni``,
            length in batches, as Ultralytics' warmup runs on batches: '3ep' is ``round(3 * batches_per_epoch)``).

    Compose it in front of a schedule with :meth:`then`; the LR code calls :meth:`warmup_factor` and
    :func:`blend` directly when each param group has its own start value (bias LR, momentum).
    """

    length: DurationLike
    kind: str = "linear"
    clock: str = "step"

    def __post_init__(self) -> None:
        object.__setattr__(self, "length", _duration("warmup", "length", self.length))
        _choice("warmup", "kind", self.kind, ("linear", "exp"))
        _choice("warmup", "clock", self.clock, ("step", "batch"))

    def __repr__(self) -> str:
        return f"Warmup('{self.length}', kind={self.kind!r}, clock={self.clock!r})"

    def length_in_units(self, cadence: Cadence) -> int:
        """The warmup length in the clock's units (steps or batches) for a run with ``cadence``; checked to fit."""
        d: Duration = self.length  # type: ignore[assignment]
        if self.clock == "step":
            return check_within(d.to_steps(cadence), cadence, f"warmup '{d}'")
        nb, total_batches = cadence.batches_per_epoch, cadence.batches_per_epoch * cadence.epochs
        if d.unit == "ep":
            n = round(d.value * nb)  # Ultralytics' nw = round(warmup_epochs * nb)
        elif d.unit == "dur":
            n = round(d.value * total_batches)
        else:  # k optimizer steps end on the batch where step k is taken
            k = int(d.value)
            check_within(k, cadence, f"warmup '{d}'")
            n = cadence.step_batches[k] if k < cadence.total_steps else total_batches
        if n > total_batches:
            raise UserError(
                f"warmup '{d}' is {n} batches but training has only {total_batches} batches: "
                f"shorten it or train longer."
            )
        return n

    def _units_now(self, progress: Progress) -> int:
        """The length in clock units without a cadence, where the unit allows it."""
        d: Duration = self.length  # type: ignore[assignment]
        if self.clock == "step" and d.unit in ("it", "dur"):
            return int(d.value) if d.unit == "it" else round(d.value * progress.total_steps)
        if self.clock == "batch" and d.unit == "ep":
            return round(d.value * progress.batches_per_epoch)
        if self.clock == "batch" and d.unit == "dur":
            return round(d.value * progress.batches_per_epoch * progress.epochs)
        raise UserError(
            f"{self!r} needs the run's step cadence to convert '{d}' to {self.clock}s: "
            f"bind it first with .bind(cadence) (yolo_gd does this when it attaches the schedule)."
        )

    def warmup_factor(self, progress: Progress, length_in_units: float) -> float:
        """The warmup factor in [0, 1] at ``progress`` for a warmup ``length_in_units`` steps or batches long.

        Returns a :class:`WarmupFactor` (a float) so :func:`blend` can reproduce np.interp exactly.
        """
        x = progress.step if self.clock == "step" else progress.batch
        if length_in_units <= 0 or x >= length_in_units:
            return WarmupFactor(1.0, x, length_in_units) if self.kind == "linear" else WarmupFactor(1.0)
        x = max(x, 0)
        if self.kind == "linear":
            return WarmupFactor(x / length_in_units, x, length_in_units)
        return WarmupFactor(min((1.0 - math.exp(-_EXP_SHARPNESS * x / length_in_units)) / _EXP_NORM, 1.0))

    def then(self, schedule: Schedule, start: float = 0.0) -> Warmed:
        """``schedule`` with this warmup in front: blends from ``start`` (0.0 = from zero LR) to the schedule."""
        return Warmed(self, schedule, start)


@dataclass(frozen=True, repr=False)
class Warmed:
    """A schedule with a :class:`Warmup` prefix: ``blend(warmup_factor, start, schedule(progress))``.

    During warmup the target is the schedule's own value at that step, as in Ultralytics (the LR ramps towards
    ``lr0 * lf(epoch)``, not towards ``lr0``). ``units`` is the warmup length in clock units, set by :meth:`bind`.
    """

    warmup: Warmup
    schedule: Schedule
    start: float = 0.0
    units: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.warmup, Warmup):
            raise UserError(f"warmup {self.warmup!r} is not a Warmup: build one with Warmup('3ep').")
        if not callable(self.schedule):
            raise UserError(f"schedule {self.schedule!r} is not callable: give a schedule fn(progress) -> float.")
        object.__setattr__(self, "start", _number("warmup", "start", self.start))
        _require(self.start >= 0, "warmup", f"start={self.start} must be >= 0 (the LR multiplier warmup begins at).")

    def __repr__(self) -> str:
        start = f", start={self.start!r}" if self.start else ""
        units = f", units={self.units}" if self.units is not None else ""
        return f"{self.warmup!r}.then({self.schedule!r}{start}{units})"

    def bind(self, cadence: Cadence) -> Warmed:
        return Warmed(self.warmup, bind(self.schedule, cadence), self.start, self.warmup.length_in_units(cadence))

    def __call__(self, progress: Progress) -> float:
        units = self.units if self.units is not None else self.warmup._units_now(progress)
        target = self.schedule(progress)
        return blend(self.warmup.warmup_factor(progress, units), self.start, target)


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


# --------------------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class SchedInfo:
    """One registered schedule: its factory, a one-line summary, aliases, and example options for required args."""

    name: str
    factory: Callable[..., Schedule]
    summary: str
    aliases: tuple[str, ...] = ()
    example: Mapping[str, Any] = field(default_factory=dict)


def _info(factory: Callable[..., Schedule], summary: str, aliases: tuple[str, ...] = (), **example: Any) -> SchedInfo:
    return SchedInfo(factory.__name__, factory, summary, aliases, example)


SCHEDULES: dict[str, SchedInfo] = {
    i.name: i
    for i in (
        _info(constant, "base LR throughout", ("const", "fixed", "none")),
        _info(linear, "1 -> end in a straight line", ("lin",)),
        _info(cosine, "1 -> end along a half-cosine", ("cos",)),
        _info(one_cycle, "Smith's one-cycle: start -> max_mult -> end (torch OneCycleLR)", ("onecycle", "1cycle")),
        _info(step, "times gamma every interval (torch StepLR)", ("steplr",), every="0.25dur"),
        _info(multistep, "times gamma at each milestone", ("multi_step",), milestones=["0.5dur", "0.75dur"]),
        _info(exponential, "geometric decay 1 -> end", ("exp",)),
        _info(polynomial, "end + (1 - end) * (1 - t) ** power", ("poly",)),
        _info(wsd, "warmup-stable-decay: 1, then decay over the last part", ("warmup_stable_decay",)),
        _info(cyclic, "cycle low -> high -> low every period", ("cyclical", "clr"), period="0.25dur"),
        _info(ul_linear, "Ultralytics' default per-epoch linear (1 -> lrf)", ("ultralytics_linear",)),
        _info(ul_cosine, "Ultralytics' cos_lr per-epoch cosine (1 -> lrf)", ("ultralytics_cosine", "ul_cos")),
    )
}

_LOOKUP: dict[str, SchedInfo] = {
    key: info for info in SCHEDULES.values() for key in (info.name, *info.aliases)
}


def _import_path(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UserError(f"schedule '{spec}' is not an import path: write it as 'package.module:Name'.")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise UserError(f"schedule '{spec}': cannot import module '{module_name}' ({e}).") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UserError(f"schedule '{spec}': module '{module_name}' has no attribute '{attr}'.") from None
    return obj


def _from_object(obj: Any, kwargs: dict[str, Any], label: str) -> Schedule:
    if _is_torch_scheduler_class(obj):
        return from_torch(obj, **kwargs)
    if isinstance(obj, type):
        try:
            made = obj(**kwargs)
        except TypeError as e:
            raise UserError(f"schedule {label}: {obj.__name__}(**{kwargs!r}) failed: {e}.") from None
        return _from_object(made, {}, label)
    if callable(obj):
        if kwargs:
            raise UserError(
                f"schedule {label} is a function and takes no options (got {', '.join(sorted(kwargs))}): "
                f"bind them yourself with functools.partial, or give a class that takes them."
            )
        return obj if isinstance(obj, (_Base, Warmed)) else from_callable(obj)
    raise UserError(f"schedule {label} is {type(obj).__name__}, not a schedule: give a name, a callable or a class.")


def _call_factory(info: SchedInfo, kwargs: dict[str, Any]) -> Schedule:
    params = inspect.signature(info.factory).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        valid = ", ".join(params) or "none"
        raise UserError(
            f"schedule '{info.name}' has no option {', '.join(repr(u) for u in unknown)}: valid options: {valid}."
        )
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in kwargs]
    if missing:
        examples = ", ".join(f"{n}={info.example[n]!r}" for n in missing if n in info.example)
        hint = f" (e.g. {examples})" if examples else ""
        raise UserError(f"schedule '{info.name}' needs option {', '.join(repr(m) for m in missing)}{hint}.")
    return info.factory(**kwargs)


def get_schedule(spec: str | Schedule | type, **kwargs: Any) -> Schedule:
    """A schedule from a registered name, a callable, a torch lr_scheduler class or a 'package.module:Name' path.

    Names are case-insensitive and accept aliases ('cos', 'onecycle', 'warmup_stable_decay', 'exp'); ``kwargs``
    are the schedule's options, checked against its factory (unknown or missing options raise
    :class:`UserError` naming the valid ones). A torch scheduler class is adapted with :func:`from_torch` (its
    kwargs passed through), another class is instantiated with the kwargs, a plain callable is wrapped with
    :func:`from_callable`.
    """
    if isinstance(spec, str):
        text = spec.strip()
        if ":" in text:
            return _from_object(_import_path(text), kwargs, f"'{text}'")
        info = _LOOKUP.get(text.lower().replace("-", "_"))
        if info is None:
            raise unknown_name("schedule", spec, SCHEDULES)
        return _call_factory(info, kwargs)
    return _from_object(spec, kwargs, repr(spec))

"""Schedules that come from outside yolo_gd's own catalogue: Ultralytics' two, a user callable, a torch lr_scheduler.

:class:`ULLinear` and :class:`ULCosine` reproduce Ultralytics' own per-epoch schedules float for float (the baseline
an injected schedule is compared against); :class:`FromCallable` checks a user function of progress at every call;
:class:`FromTorch` replays any ``torch.optim.lr_scheduler`` class as a pure function of the optimizer step. All are
importable from :mod:`yolo_gd.optim.schedules` too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from yolo_gd.errors import UserError
from yolo_gd.optim.progress import Cadence, Progress
from yolo_gd.optim.schedule_base import Schedule, _Base, _number, _require, _show

__all__ = ["FromCallable", "FromTorch", "ULCosine", "ULLinear", "from_callable", "from_torch", "ul_cosine", "ul_linear"]


# --------------------------------------------------------------------------------------------------- Ultralytics'


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


# --------------------------------------------------------------------------------------------------- adapters


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


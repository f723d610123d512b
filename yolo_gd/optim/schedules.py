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

Warmup is not a schedule: Ultralytics' warmup is not a multiplier on the schedule but a linear *blend* from an
absolute start value (0.0 for LR, ``warmup_bias_lr`` for biases, ``warmup_momentum`` for momentum) to the scheduled
target, so it lives with the per-group hyperparameters in :mod:`yolo_gd.optim.plan` (:class:`WarmupPlan`).

Layout: this module is the front door and holds no code. The shared base (:data:`Schedule`, :func:`bind`,
:func:`trace`) is :mod:`yolo_gd.optim.schedule_base`; the built-in schedules (``Cosine``, ``cosine`` ...) are
:mod:`yolo_gd.optim.builtin_schedules`; Ultralytics' schedules and the callable/torch adapters are
:mod:`yolo_gd.optim.schedule_adapters`; the name registry (:data:`SCHEDULES`, :func:`get_schedule`) is
:mod:`yolo_gd.optim.schedule_registry`. Everything public is importable from here as well.
"""

from __future__ import annotations

from yolo_gd.optim.builtin_schedules import (
    WSD,
    Constant,
    Cosine,
    Cyclic,
    Exponential,
    Linear,
    MultiStep,
    OneCycle,
    Polynomial,
    Step,
    constant,
    cosine,
    cyclic,
    exponential,
    linear,
    multistep,
    one_cycle,
    polynomial,
    step,
    wsd,
)
from yolo_gd.optim.schedule_adapters import (
    FromCallable,
    FromTorch,
    ULCosine,
    ULLinear,
    from_callable,
    from_torch,
    ul_cosine,
    ul_linear,
)
from yolo_gd.optim.schedule_base import Schedule, bind, trace
from yolo_gd.optim.schedule_registry import SCHEDULES, SchedInfo, get_schedule

__all__ = [
    "SCHEDULES",
    "WSD",
    "Constant",
    "Cosine",
    "Cyclic",
    "Exponential",
    "FromCallable",
    "FromTorch",
    "Linear",
    "MultiStep",
    "OneCycle",
    "Polynomial",
    "SchedInfo",
    "Schedule",
    "Step",
    "ULCosine",
    "ULLinear",
    "bind",
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

"""Unfreeze schedules: which frozen parameters join training when, and their LR ramp after joining (pure).

``unfreeze='3ep'`` unfreezes everything Ultralytics' ``freeze=`` froze at epoch 3; a list of ``(glob, when)``
pairs (``[['model.[5-9].*', '2ep'], ['model.[0-4].*', '4ep']]``) unfreezes gradually: each glob selects, among the
parameters ``freeze=`` froze, those that join at ``when`` (a duration, see :mod:`yolo_gd.optim.durations`; the
first matching pair wins). ``unfreeze_ramp`` (default ``'1ep'``) is how long a joining group's LR multiplier
takes to rise linearly from 0 to 1, counted from its join step.

Design (documented in docs/finetuning.md): the parameters to unfreeze are in the optimizer from the start,
in groups of their own (``'<tag>:unfreeze<i>'``: the same decay / no-decay / bias split and group-rule
multipliers as any other parameter), and torch skips a parameter whose ``grad`` is None, so before the switch
they neither move nor get optimizer state; joining is ``requires_grad=True`` and nothing else changes, so the
optimizer state of the parameters already training is untouched (the same objects).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from yolo_gd.errors import UserError
from yolo_gd.optim.durations import Duration, parse_duration
from yolo_gd.optim.progress import Cadence

__all__ = ["JoinPlan", "UnfreezeStage", "assign_stages", "join_plan", "parse_unfreeze", "stretch_joins"]

_FORM = "a duration ('3ep') or a list of [glob, duration] pairs such as [['model.[5-9].*', '2ep'], ['*', '4ep']]"


@dataclass(frozen=True)
class UnfreezeStage:
    """Frozen parameters whose full name matches ``pattern`` join training at ``when``."""

    pattern: str
    when: Duration


def parse_unfreeze(value: Any) -> tuple[UnfreezeStage, ...]:
    """Read ``unfreeze=`` (None: no stage). Raises :class:`UserError` naming the accepted forms."""
    if value is None:
        return ()
    if isinstance(value, (str, int, float, Duration)) and not isinstance(value, bool):
        return (UnfreezeStage("*", parse_duration(value)),)
    if isinstance(value, dict):
        value = list(value.items())
    if not isinstance(value, (list, tuple)) or not value:
        raise UserError(f"unfreeze={value!r} is not understood: use {_FORM}")
    stages = []
    for pair in value:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not isinstance(pair[0], str) or not pair[0]:
            raise UserError(f"unfreeze entry {pair!r} is not a [glob, duration] pair: use {_FORM}")
        stages.append(UnfreezeStage(pair[0], parse_duration(pair[1])))
    return tuple(stages)


def assign_stages(frozen: Sequence[str], stages: Sequence[UnfreezeStage]) -> dict[str, int]:
    """Name -> stage index for each frozen parameter name a stage selects (the first matching stage wins).

    A stage that selects nothing is an error (a typo, or a ``freeze=`` that froze less than expected)."""
    out: dict[str, int] = {}
    for i, stage in enumerate(stages):
        hits = [n for n in frozen if n not in out and fnmatchcase(n, stage.pattern)]
        if not hits:
            example = frozen[0] if frozen else "none: set freeze= (a layer count or list) first"
            raise UserError(f"unfreeze glob '{stage.pattern}' selects no parameter frozen by freeze= (frozen: "
                            f"{len(frozen)}, e.g. {example}): fix the glob or the freeze= value")
        out.update(dict.fromkeys(hits, i))
    return out


@dataclass(frozen=True)
class JoinPlan:
    """The optimizer step at which each stage joins, and the LR ramp length after joining (in steps)."""

    steps: tuple[int, ...]
    ramp: int = 0

    def multiplier(self, stage: int, step: int) -> float:
        """LR multiplier of a stage's groups at optimizer step ``step``: 0 before joining, then a linear rise that
        reaches 1 after ``ramp`` steps (the first step after joining already moves: ``1 / ramp``)."""
        start = self.steps[stage]
        if step < start:
            return 0.0
        if self.ramp <= 0:
            return 1.0
        return min(1.0, (step - start + 1) / self.ramp)

    def joined(self, stage: int, step: int) -> bool:
        return step >= self.steps[stage]


def join_plan(stages: Sequence[UnfreezeStage], ramp: Any, cadence: Cadence) -> JoinPlan:
    """Convert the stages' durations and the ramp to optimizer steps for ``cadence``."""
    steps = tuple(s.when.to_steps(cadence) for s in stages)
    for s, n in zip(stages, steps):
        if n >= cadence.total_steps:
            raise UserError(f"unfreeze at '{s.when}' is step {n} but training has only {cadence.total_steps} "
                            f"optimizer steps: unfreeze earlier or train longer")
    return JoinPlan(steps, parse_duration(ramp).to_steps(cadence))


def stretch_joins(joins: JoinPlan, s0: int, total_old: int, total_new: int, ramp: int | None = None) -> JoinPlan:
    """The join steps of a run re-planned at step ``s0`` from ``total_old`` to ``total_new`` steps (an extension):
    a stage that joined at or before ``s0`` keeps its step (a layer that already trains is never frozen again);
    a later one moves as the schedule stretches, ``s0 + (j - s0) * (total_new - s0) / (total_old - s0)``.
    ``ramp``: the new plan's ramp in steps (None: keep the old one)."""
    ratio = (total_new - s0) / (total_old - s0) if total_old > s0 else 1.0
    steps = tuple(j if j <= s0 else s0 + round((j - s0) * ratio) for j in joins.steps)
    return JoinPlan(steps, joins.ramp if ramp is None else ramp)

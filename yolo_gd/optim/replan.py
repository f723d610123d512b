"""Re-planning a schedule when a resumed run is extended (``resume=True epochs=N``), as a pure function of progress.

The rule: the part of the schedule still ahead is stretched over the new remaining length. From the step ``s0``
where the new plan takes over, step ``s`` of the new plan reads the old schedule at
``s0 + (s - s0) * (T_old - s0) / (T_new - s0)`` (and the global batch index likewise), so the LR is continuous at
the switch and ends at the old schedule's final value at the new end. A run extended twice chains two stretches.
A plan is described by plain data (:class:`PlanSegment`) so the history can be stored with the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from yolo_gd.optim.progress import Cadence, Progress
from yolo_gd.optim.unfreeze import JoinPlan, stretch_joins

Schedule = Callable[[Progress], float]


@dataclass(frozen=True)
class PlanSegment:
    """One plan of a run's history: where it took over and the cadence it was planned for."""

    from_step: int
    from_batch: int
    batches_per_epoch: int
    epochs: int
    accumulate: int
    warmup_batches: int

    @property
    def cadence(self) -> Cadence:
        return Cadence(self.batches_per_epoch, self.epochs, self.accumulate, self.warmup_batches)

    @classmethod
    def of(cls, cadence: Cadence, from_step: int = 0, from_batch: int = 0) -> "PlanSegment":
        return cls(from_step, from_batch, cadence.batches_per_epoch, cadence.epochs, cadence.accumulate,
                   cadence.warmup_batches)

    def plain(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Stretched:
    """``inner`` (planned for ``old``) read with the remaining part stretched over ``new`` from ``s0``/``b0``."""

    inner: Schedule
    s0: int
    b0: int
    old: Cadence
    new: Cadence

    def __call__(self, p: Progress) -> float:
        t_old, t_new = self.old.total_steps, self.new.total_steps
        n_old = self.old.batches_per_epoch * self.old.epochs
        n_new = self.new.batches_per_epoch * self.new.epochs
        rs = (t_old - self.s0) / (t_new - self.s0) if t_new > self.s0 else 1.0
        rb = (n_old - self.b0) / (n_new - self.b0) if n_new > self.b0 else 1.0
        step = self.s0 + (p.step - self.s0) * rs if p.step >= self.s0 else p.step
        batch = self.b0 + (p.batch - self.b0) * rb if p.batch >= self.b0 else p.batch
        return self.inner(Progress(step, t_old, batch, self.old.batches_per_epoch, self.old.epochs))

    def __repr__(self) -> str:
        return f"stretched({self.inner!r}, from step {self.s0}: {self.old.total_steps} -> {self.new.total_steps})"


def chain(unbound: Schedule, plans: Sequence[PlanSegment], bind: Callable[[Schedule, Cadence], Schedule]) -> Schedule:
    """The schedule of a run whose history is ``plans`` (oldest first): each later plan stretches the previous."""
    schedule = bind(unbound, plans[0].cadence)
    for before, after in zip(plans, plans[1:]):
        schedule = Stretched(schedule, after.from_step, after.from_batch, before.cadence, after.cadence)
    return schedule


def chain_joins(first: JoinPlan, plans: Sequence[PlanSegment]) -> JoinPlan:
    """The unfreeze join steps of a run whose history is ``plans``, ``first`` planned for ``plans[0]``: each later
    plan stretches the joins still ahead as :func:`chain` stretches the schedule (joined stages stay joined)."""
    joins = first
    for before, after in zip(plans, plans[1:]):
        joins = stretch_joins(joins, after.from_step, before.cadence.total_steps, after.cadence.total_steps)
    return joins

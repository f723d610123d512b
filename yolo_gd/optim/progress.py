"""Where training stands at one optimizer step, and when the loop steps (pure, no trainer code).

Ultralytics steps the optimizer when ``ni - last_step >= accumulate``, where ``ni`` is the global batch index and
``accumulate`` ramps from 1 to its nominal value during warmup (``np.interp(ni, [0, nw], [1, acc0]).round()``,
``engine/trainer.py`` 522-524). So the number of optimizer steps is not ``batches * epochs / accumulate``.
:class:`Cadence` reproduces that rule exactly; yolo_gd owns the step decision with it (so a resumed run steps on
the same batches as an uninterrupted one) and derives schedule lengths from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Progress:
    """Training progress at the optimizer step about to be taken.

    ``step`` counts optimizer steps already taken (0 at the first step); ``batch`` is the global batch index
    (Ultralytics' ``ni``) on which this step happens.
    """

    step: int
    total_steps: int
    batch: int
    batches_per_epoch: int
    epochs: int

    @property
    def epoch(self) -> int:
        """The 0-based epoch this step falls in."""
        return self.batch // self.batches_per_epoch

    @property
    def clamped_step(self) -> int:
        """``step`` clamped to [0, total_steps]: what schedules read (see :attr:`fraction` for why)."""
        return min(max(self.step, 0), self.total_steps)

    @property
    def fraction(self) -> float:
        """Fraction of the optimizer steps already taken, clamped to [0, 1].

        Clamped because a step past the planned total can happen (a schedule bound before an out-of-memory batch
        halving, a caller's own loop): past 1.0 ``linear`` would go negative, ``cosine`` rise again and a
        ``polynomial`` with a non-integer power turn complex. Every schedule reads progress through this.
        """
        return min(max(self.step / max(self.total_steps, 1), 0.0), 1.0)


@dataclass(frozen=True)
class Cadence:
    """Ultralytics' step rule: which global batch indices end with an optimizer step.

    Args:
        batches_per_epoch: ``len(train_loader)``.
        epochs: planned epochs.
        accumulate: nominal accumulation (``max(round(nbs / batch), 1)``, capped at ``batches * epochs``).
        warmup_batches: ``nw``, the batch-index warmup length over which ``accumulate`` ramps from 1.
    """

    batches_per_epoch: int
    epochs: int
    accumulate: int
    warmup_batches: int = 0

    def accumulate_at(self, batch: int) -> int:
        """The accumulation in force at global batch ``batch`` (the warmup ramp included)."""
        nw = self.warmup_batches
        if nw and batch <= nw:
            # np.interp + numpy's round-half-to-even, exactly as the host computes it.
            return max(1, int(np.interp(batch, [0, nw], [1, self.accumulate]).round()))
        return self.accumulate

    def steps_at(self, batch: int, last_step_batch: int) -> bool:
        """Whether the loop steps at ``batch`` when the previous step was at ``last_step_batch`` (-1: none yet)."""
        return batch - last_step_batch >= self.accumulate_at(batch)

    @cached_property
    def step_batches(self) -> tuple[int, ...]:
        """Global batch index of every optimizer step of an uninterrupted run."""
        out, last = [], -1
        for ni in range(self.batches_per_epoch * self.epochs):
            if self.steps_at(ni, last):
                out.append(ni)
                last = ni
        return tuple(out)

    @property
    def total_steps(self) -> int:
        return len(self.step_batches)

    def steps_before_epoch(self, epoch: float) -> int:
        """Optimizer steps an uninterrupted run takes before fractional ``epoch`` (for '3ep' durations)."""
        limit = epoch * self.batches_per_epoch
        return sum(1 for b in self.step_batches if b < limit)

    def restarts_alike(self, epoch: int) -> bool:
        """Whether a loop restarted at ``epoch`` (the host's resume: no step yet, ``last = -1``) steps on the same
        batches as the uninterrupted run from there on, i.e. no accumulation window crosses into that epoch."""
        start, end = epoch * self.batches_per_epoch, self.batches_per_epoch * self.epochs
        out, last = [], -1
        for ni in range(start, end):
            if self.steps_at(ni, last):
                out.append(ni)
                last = ni
        return tuple(out) == tuple(b for b in self.step_batches if b >= start)

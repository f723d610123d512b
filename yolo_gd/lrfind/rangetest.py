"""The range test's math, pure: the LR ramp, the smoothed loss, the stop rule and the suggestion rules.

The ramp is a schedule (a multiplier of the base LR ``lr_min``): ``lr_k = lr_min * (lr_max / lr_min) ** (k / (n-1))``
for optimizer steps ``k = 0 .. n-1``, so step 0 trains at ``lr_min`` and step ``n-1`` at ``lr_max``.

The suggestion rules, computed on the smoothed loss of the steps run:

- ``min/10`` (fastai's ``minimum``): the LR at the smoothed loss's minimum, divided by 10: one decade below where
  the loss stops falling (Smith's advice).
- ``steepest`` (Lightning's ``LearningRateFinder``, fastai's ``steep``): the LR where the smoothed loss falls
  fastest per step (``np.gradient``), skipping the first :data:`SKIP_BEGIN` steps and the last one as Lightning does.
- ``valley`` (fastai's default since 2021): the longest decreasing stretch of the loss, about halfway along it
  (fastai's index: start + span/3 + span/6). Used by yolo_gd: see :data:`RULE` for why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["RULE", "LrRamp", "Smoother", "Suggestion", "diverged", "smooth", "steepest", "suggest", "valley",
           "min_over_10"]

#: EMA factor of the smoothed loss. fastai and Lightning use 0.98 (an average over ~50 steps) for 100+ steps; at
#: 100 steps over 6 decades that is 3 decades of lag, so 0.9 (~10 steps, half a decade) keeps the curve in place.
BETA = 0.9
#: Stop when the smoothed loss exceeds this multiple of its minimum (fastai's and Lightning's default, 4).
DIVERGE_FACTOR = 4.0
#: Steps skipped at the start by ``steepest`` (Lightning's ``skip_begin``: the EMA is still settling there).
SKIP_BEGIN = 10
#: The rule yolo_gd uses. Measured on BCCD (bench/results/lrfind_bccd_cpu): the detection loss has a broad flat
#: bottom (Lion: within noise from 1e-2 to 1e-1), so the argmin wanders over a decade and min/10 gave AdamW 1.6e-2
#: (10x its usual LR); the steepest slope is the derivative of a noisy curve (one jump decides it); the valley uses
#: the whole descending stretch and gave AdamW 2.5e-3, next to Ultralytics' own pick for small data (~2e-3).
RULE = "valley"
#: Backing off from the minimum by one decade (Smith 2017; fastai's ``minimum`` suggestion divides by 10).
MIN_BACKOFF = 10.0


@dataclass(frozen=True)
class LrRamp:
    """The range test's schedule: step ``k`` gets multiplier ``(lr_max / lr_min) ** (k / (steps - 1))`` (held at the
    end after ``steps - 1``). A frozen dataclass so that it pickles and compares equal."""

    lr_min: float
    lr_max: float
    steps: int

    def __post_init__(self) -> None:
        if not (0 < self.lr_min < self.lr_max and math.isfinite(self.lr_max)):
            raise ValueError(f"need 0 < lr_min < lr_max, got lr_min={self.lr_min} lr_max={self.lr_max}")
        if self.steps < 2:
            raise ValueError(f"need at least 2 steps, got {self.steps}")

    def multiplier(self, step: int) -> float:
        k = min(max(int(step), 0), self.steps - 1)
        return (self.lr_max / self.lr_min) ** (k / (self.steps - 1))

    def lr(self, step: int) -> float:
        return self.lr_min * self.multiplier(step)

    def __call__(self, progress) -> float:
        return self.multiplier(progress.step)


class Smoother:
    """Exponential moving average with bias correction (fastai / Lightning): ``avg = beta*avg + (1-beta)*x``,
    reported as ``avg / (1 - beta**n)`` after ``n`` values."""

    def __init__(self, beta: float = BETA):
        self.beta, self.avg, self.n = beta, 0.0, 0

    def update(self, x: float) -> float:
        self.n += 1
        self.avg = self.beta * self.avg + (1 - self.beta) * float(x)
        return self.avg / (1 - self.beta**self.n)


def smooth(losses: Sequence[float], beta: float = BETA) -> np.ndarray:
    s = Smoother(beta)
    return np.array([s.update(x) for x in losses], dtype="float64")


def diverged(smoothed: float, best: float, factor: float = DIVERGE_FACTOR) -> bool:
    """The stop rule: the smoothed loss is not finite or exceeds ``factor`` x the best smoothed loss so far."""
    return not math.isfinite(smoothed) or smoothed > factor * best


def min_over_10(lrs: Sequence[float], smoothed: Sequence[float]) -> float | None:
    """fastai's ``minimum``: the LR at the smoothed minimum / 10; None if the minimum is the first step (no fall)."""
    i = int(np.nanargmin(smoothed))
    return None if i == 0 else float(lrs[i]) / MIN_BACKOFF


def steepest(lrs: Sequence[float], smoothed: Sequence[float], skip_begin: int = SKIP_BEGIN) -> float | None:
    """Lightning's suggestion: the LR of the most negative ``np.gradient`` of the smoothed loss (steps
    ``skip_begin .. n-2``); None when fewer than 3 steps remain or the loss never falls there."""
    y = np.asarray(smoothed, dtype="float64")[skip_begin:-1]
    if len(y) < 3:
        return None
    g = np.gradient(y)
    i = int(np.nanargmin(g))
    return float(lrs[skip_begin + i]) if g[i] < 0 else None


def valley(lrs: Sequence[float], smoothed: Sequence[float]) -> float | None:
    """fastai's ``valley``: the longest decreasing subsequence's span, at index start + span/3 + span/6."""
    y = list(smoothed)
    n = len(y)
    if n < 2:
        return None
    lds, max_start, max_end = [1] * n, 0, 0
    for i in range(1, n):
        for j in range(i):
            if y[i] < y[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end, max_start = i, i - lds[i]
    if max_end == 0:
        return None
    sections = (max_end - max_start) / 3
    return float(lrs[max_start + int(sections) + int(sections / 2)])


@dataclass(frozen=True)
class Suggestion:
    """The suggested LR (None: the loss never fell, no suggestion) with its rule, and the other rules' values."""

    lr: float | None
    rule: str
    others: dict


def suggest(lrs: Sequence[float], smoothed: Sequence[float]) -> Suggestion:
    values = {"min/10": min_over_10(lrs, smoothed), "steepest": steepest(lrs, smoothed),
              "valley": valley(lrs, smoothed)}
    return Suggestion(values[RULE], RULE, {k: v for k, v in values.items() if k != RULE})

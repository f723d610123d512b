"""The range test's math, pure: the LR ramp, the smoothed loss, the stop rule, the suggestion rules and the
confidence rule that decides whether any suggestion is given at all.

The ramp is a schedule (a multiplier of the base LR ``lr_min``): ``lr_k = lr_min * (lr_max / lr_min) ** (k / (n-1))``
for optimizer steps ``k = 0 .. n-1``, so step 0 trains at ``lr_min`` and step ``n-1`` at ``lr_max``.

The suggestion rules, computed on the smoothed loss of the steps run:

- ``min/10`` (fastai's ``minimum``): the LR at the smoothed loss's minimum, divided by 10: one decade below where
  the loss stops falling (Smith's advice).
- ``steepest`` (Lightning's ``LearningRateFinder``, fastai's ``steep``): the LR where the smoothed loss falls
  fastest per step (``np.gradient``), skipping the first :data:`SKIP_BEGIN` steps and the last one as Lightning does.
- ``valley`` (fastai's default since 2021): the longest decreasing stretch of the loss, about halfway along it
  (fastai's index: start + span/3 + span/6).
- ``half-fall`` (yolo_gd's, in :func:`assess` only): the first LR from which the smoothed loss stays below the
  midpoint of its fall (start level to minimum). Used by yolo_gd: see :data:`RULE` for why.

Every rule returns a point on any curve, noise included. :func:`assess` gives one only when the curve says
something (see its docstring): otherwise "no reliable suggestion" with the reason (``flat``, ``rising``,
``too noisy``, ``diverged early``) and what to do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PROBE_BETA", "RULE", "LrRamp", "Smoother", "StopRule", "Verdict", "assess", "diverged",
           "half_fall", "min_over_10", "noise_sigma", "smooth", "steepest", "valley"]

#: EMA factor of the smoothed loss. fastai and Lightning use 0.98 (an average over ~50 steps) for 100+ steps; at
#: 100 steps over 6 decades that is 3 decades of lag, so 0.9 (~10 steps, half a decade) keeps the curve in place.
BETA = 0.9
#: EMA factor of the probe signal (yolo_gd.inject.probe): it has little point noise, so little smoothing.
PROBE_BETA = 0.5
#: Stop when the smoothed loss exceeds this multiple of its minimum (fastai's and Lightning's default, 4).
DIVERGE_FACTOR = 4.0
#: Steps skipped at the start by ``steepest`` (Lightning's ``skip_begin``: the EMA is still settling there).
SKIP_BEGIN = 10
#: The rule yolo_gd uses. The detection loss has a broad flat bottom (on BCCD, bench/results/lrfind_bccd_cpu, Lion
#: is within noise from 1e-2 to 1e-1), so the argmin wanders over a decade: min/10 gave AdamW 1.6e-2 (10x its
#: usual LR); the steepest slope is the derivative of a noisy curve (one jump decides it). fastai's valley on the
#: descent then proved too bold on the shapes set (bench/results/compare_lrfind_cpu): 100 steps from scratch
#: reward any LR that cuts the loss fast, and the valley landed in the flat bottom: AdamW 0.020 at 96 px (the
#: 14-epoch training collapsed, mAP50 0.02) and 0.0175 at 128 px (12 epochs, two seeds: mAP50 0.10 and 0.48,
#: where 0.0029 reached 0.85 in 16 epochs). The point where the loss has made half of its fall is the middle of
#: the descent by the curve's own measure: AdamW 0.0016, SGD 0.04-0.06 on those curves, next to the best LRs of a
#: 16-epoch grid there (AdamW ~0.003, SGD ~0.027).
RULE = "half-fall"
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
    """The divergence test of one point: not finite, or above ``factor`` x the reference (see :class:`StopRule`)."""
    return not math.isfinite(smoothed) or smoothed > factor * best


#: The stop rule's reference is the lowest smoothed value from this point on (the EMA has averaged a few
#: values by then: a single low batch at the start can no longer be the reference).
SETTLE = 3
#: ... and the smoothed loss must stay above ``DIVERGE_FACTOR`` x the reference for this many points in a row.
PATIENCE = 3


class StopRule:
    """When to end the test: a non-finite loss at once; otherwise when the smoothed loss has stayed above
    ``factor`` x its reference for ``patience`` points in a row, the reference being the lowest smoothed value
    from point :data:`SETTLE` on (fastai's and Lightning's rule compares with the minimum so far from the first
    step, so one low batch early on stops the test: measured, 9 steps at LR 3e-6 on a small set)."""

    def __init__(self, factor: float = DIVERGE_FACTOR, beta: float = BETA, settle: int = SETTLE,
                 patience: int = PATIENCE):
        self.factor, self.settle, self.patience = factor, settle, patience
        self.smoother, self.best, self.count, self.above = Smoother(beta), math.inf, 0, 0

    def update(self, value: float) -> bool:
        """Feed the next point of the signal; True when the test should stop (it diverged)."""
        smoothed = self.smoother.update(value)
        self.count += 1
        if not math.isfinite(value) or not math.isfinite(smoothed):
            return True
        if self.count > self.settle and smoothed > self.factor * self.best:
            self.above += 1
        else:
            self.above = 0
        if self.count >= self.settle:
            self.best = min(self.best, smoothed)
        return self.above >= self.patience


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


# ------------------------------------------------------------------------------------------------ confidence

#: A fall counts when it exceeds this many times the uncertainty of (start level - smoothed minimum).
CLEAR = 4.0
#: ... and is at least this fraction of the start level. Measured (bench/results/lrfind_signal_cpu.md): the probe
#: loss of a model trained from scratch wanders by about +-5% while the LR is still too low to matter (its
#: weights move, the point-to-point noise does not show it), so a fall must be twice that.
MIN_FALL = 0.10
#: "too noisy": the uncertainty hides a fall of this fraction of the start level.
NOISY_FALL = 0.25
#: Below this many points of the signal, a test that stopped at divergence "diverged early".
MIN_POINTS = 8
#: Advice per reason: what the user can do.
ADVICE = {
    "flat": "the loss did not move over the ramp: run more steps (steps=), widen the ramp (lr_max=), or tune on a "
            "grid (protocol: tuned)",
    "rising": "the loss only rose: the ramp starts above a useful LR: lower lr_min (e.g. 100x), or tune on a grid",
    "too noisy": "the loss signal's noise hides any fall: use more probe images (probe=), a larger batch, more "
                 "steps, or tune on a grid",
    "diverged early": "the loss blew up before it could fall: lower lr_min and lr_max, check clip=, or tune on a grid",
}


def noise_sigma(values: Sequence[float]) -> float:
    """The point-to-point noise of a curve, robust to its trend and to jumps: the median absolute second difference
    (a linear trend cancels in it) scaled to a Gaussian's sigma (``/ 0.6745 / sqrt(6)``, since the second difference
    of white noise has variance ``6 sigma^2``). 0 for fewer than 3 points."""
    y = np.asarray(values, dtype="float64")
    y = y[np.isfinite(y)]
    if len(y) < 3:
        return 0.0
    d2 = y[2:] - 2 * y[1:-1] + y[:-2]
    return float(np.median(np.abs(d2 - np.median(d2))) / 0.6745 / math.sqrt(6))


@dataclass(frozen=True)
class Verdict:
    """What a range test says: ``lr`` (None: no reliable suggestion) with its ``rule``; otherwise ``reason`` (one of
    :data:`ADVICE`'s keys) and ``advice``. ``start``, ``lowest`` (smoothed minimum), ``noise`` (sigma of one point)
    and ``uncertainty`` (of start - lowest) are the numbers the decision used; ``others`` the other rules' LRs."""

    lr: float | None
    rule: str
    reason: str | None
    advice: str | None
    start: float | None
    lowest: float | None
    noise: float | None
    uncertainty: float | None
    others: dict

    @property
    def fall(self) -> float | None:
        return None if self.start is None or self.lowest is None else self.start - self.lowest

    def text(self) -> str:
        if self.lr is not None:
            return f"{self.lr:.3g} ({self.rule})"
        return f"no reliable suggestion ({self.reason}): {self.advice}"


def assess(lrs: Sequence[float], values: Sequence[float], stopped_at_divergence: bool = False,
           beta: float = BETA, planned: int | None = None) -> Verdict:
    """The confidence rule on a finished test's signal (``values`` at ``lrs``, in ramp order).

    ``noise`` = :func:`noise_sigma` of the points; the start level is the median of the first ``m = max(3, n/10)``
    points; the lowest level is the minimum of the EMA-smoothed curve (``beta``) after those points. The uncertainty of their
    difference is ``sqrt(1.57 sigma^2 / m + sigma_s^2)`` (a median's variance, and the smoothed curve's,
    ``sigma_s^2 = sigma^2 (1 - beta) / (1 + beta)``). Then, in this order:

    - fewer than 3 points: ``diverged early`` if the test stopped at divergence, else ``flat``;
    - the fall exceeds :data:`CLEAR` x the uncertainty and :data:`MIN_FALL` of the start, and the smoothed curve
      stays below the fall's midpoint for at least ``max(3, n/20)`` points in a row (a descent holds over a range
      of LRs, a dip of a point or two is the weights' wander): a suggestion, the ``half-fall`` point (the first LR
      from which the smoothed curve stays below that midpoint for as many points); fastai's ``valley`` on the
      descent (from where the curve has fallen a tenth of the way to its minimum), ``min/10`` and ``steepest`` are
      recorded beside it as other rules;
    - the test stopped at divergence with no clear fall before it, in the first half of its ``planned`` points
      (all of them when not given) or within :data:`MIN_POINTS` points: ``diverged early``; a later stop is judged
      on the curve before it;
    - the test ran to its end and the smoothed curve ends more than :data:`CLEAR` x the uncertainty (and
      :data:`MIN_FALL`) above the start: ``rising``;
    - :data:`CLEAR` x the uncertainty exceeds :data:`NOISY_FALL` of the start (a fall of a quarter of the loss
      could not be told from noise): ``too noisy``;
    - otherwise ``flat``.
    """
    x = np.asarray(lrs, dtype="float64")
    y = np.asarray(values, dtype="float64")
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(y) < 3:
        return _none("diverged early" if stopped_at_divergence else "flat", None, None, None, None)
    n = len(y)
    sigma = noise_sigma(y)
    m = max(3, n // 10)
    start = float(np.median(y[:m]))
    s = smooth(y, beta)
    i_min = m + int(np.argmin(s[m:])) if n > m else n - 1  # after the start window: a rise from point 0 is no fall
    lowest = float(s[i_min])
    unc = math.sqrt(1.57 * sigma**2 / m + sigma**2 * (1 - beta) / (1 + beta))
    fall = start - lowest
    # the descent, for fastai's valley: from where the smoothed curve has fallen a tenth of the way to its minimum
    # (before that, a plateau so quiet that it counts as "decreasing" would pull the valley down to the ramp's start)
    i0 = int(np.argmax(s[: i_min + 1] < start - 0.1 * fall)) if fall > 0 else 0
    others = {"min/10": min_over_10(x, s), "steepest": steepest(x, s),
              "valley": valley(x[i0: i_min + 1], s[i0: i_min + 1])}
    clear = (fall > CLEAR * unc and fall >= MIN_FALL * abs(start)
             and _longest_run(s < start - fall / 2) >= max(3, n // 20))
    lr = None
    if clear and not (stopped_at_divergence and n < MIN_POINTS):
        lr = half_fall(x[: i_min + 1], s[: i_min + 1], start - fall / 2, max(3, n // 20))
    if lr is not None:
        return Verdict(lr, RULE, None, None, start, lowest, sigma, unc, others)
    early = stopped_at_divergence and (planned is None or n < MIN_POINTS or n < planned / 2)
    return _none(_reason(early, stopped_at_divergence, s[-1] - start, start, unc), start, lowest, sigma, unc,
                 others)


def _reason(early: bool, stopped: bool, rise: float, start: float, unc: float) -> str:
    """Why there is no suggestion (see :func:`assess`)."""
    if early:
        return "diverged early"
    if not stopped and rise > CLEAR * unc and rise >= MIN_FALL * abs(start):
        return "rising"  # (a late divergence ends every curve high: it says nothing about the rest)
    return "too noisy" if CLEAR * unc > NOISY_FALL * abs(start) else "flat"


def half_fall(lrs: Sequence[float], smoothed: Sequence[float], level: float, run: int) -> float | None:
    """The first LR from which ``smoothed`` stays below ``level`` for ``run`` points in a row (a single noisy dip
    below it does not count); None if it never does."""
    below = 0
    for i, v in enumerate(smoothed):
        below = below + 1 if v < level else 0
        if below == run:
            return float(lrs[i - run + 1])
    return None


def _longest_run(mask: np.ndarray) -> int:
    """The longest stretch of consecutive True values."""
    best = run = 0
    for x in mask:
        run = run + 1 if x else 0
        best = max(best, run)
    return best


def _none(reason: str, start, lowest, sigma, unc, others: dict | None = None) -> Verdict:
    return Verdict(None, "none", reason, ADVICE[reason], start, lowest, sigma, unc, others or {})

"""Pure statistics of an ablation: mean, spread and 95% CI over seeds, Welch's t-test, time/steps to a target.

Nothing here reads files or formats text. Quantiles and p-values come from scipy rather than hand-written
approximations: with 2-5 seeds the t distribution's tails matter, and a well-kept library gets them right.

Missing values are ``None``, never NaN: a report built from these numbers then cannot print "nan". A sample of
one seed has a mean but no spread, so :class:`Summary` says so (:attr:`Summary.single_seed`) and the report writes
:data:`NO_CI` instead of a number.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _st

__all__ = [
    "NO_CI",
    "Summary",
    "TargetHit",
    "summarize",
    "welch",
    "finite",
    "target_hit",
    "steps_to_target",
    "time_to_target",
    "steps_done_by_epoch",
]

#: What the report writes instead of a confidence interval computed from a single seed.
NO_CI = "1 seed: no CI"
CONFIDENCE = 0.95


def finite(values: Iterable) -> list[float]:
    """The finite numbers of ``values`` as floats (None, NaN and inf dropped)."""
    out = []
    for v in values:
        if v is None:
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation (ddof=1) and a Student-t 95% CI of the mean over ``n`` finite values.

    ``std`` and the CI are None when ``n < 2`` (one seed has no spread); everything is None when ``n == 0``.
    """

    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None

    @property
    def single_seed(self) -> bool:
        """True for exactly one value: the report writes :data:`NO_CI` there."""
        return self.n == 1

    @property
    def has_ci(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None


def summarize(values: Iterable, confidence: float = CONFIDENCE) -> Summary:
    """Summary of the finite values in ``values`` (None/NaN are dropped first: ``n`` counts what was used).

    CI: ``mean ± t_{(1+confidence)/2, n-1} * std / sqrt(n)``, the textbook interval for a mean of a few
    independent seeds whose spread is estimated from the same seeds.
    """
    x = np.asarray(finite(values), dtype="float64")
    n = int(x.size)
    if n == 0:
        return Summary(0, None, None, None, None)
    mean = float(x.mean())
    if n == 1:
        return Summary(1, mean, None, None, None)
    std = float(x.std(ddof=1))
    half = float(_st.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def welch(a: Iterable, b: Iterable) -> tuple[float, float] | None:
    """Welch's two-sided t-test of ``a`` vs ``b`` (unequal variances): ``(t, p)``, positive t when a's mean is higher.

    None when either side has fewer than 2 finite values (no variance estimate), or when both sides have zero
    variance: scipy then returns NaN (equal means) or t = inf, p = 0 (different means). The latter would call
    seeds that change nothing (identical metrics per seed) infinitely significant, so no test is reported.
    """
    a, b = finite(a), finite(b)
    if len(a) < 2 or len(b) < 2:
        return None
    with warnings.catch_warnings():  # scipy warns about precision loss for (nearly) constant samples
        warnings.simplefilter("ignore", RuntimeWarning)
        res = _st.ttest_ind(a, b, equal_var=False)
    t, p = float(res.statistic), float(res.pvalue)
    if not (math.isfinite(t) and math.isfinite(p)):
        return None
    return t, p


@dataclass(frozen=True)
class TargetHit:
    """Where a run first reached the target.

    ``epoch``: 1-based, as in Ultralytics' ``results.csv``; ``time``: that row's cumulative ``time`` (seconds of
    training and validation since the start); ``steps``: optimizer steps done by the end of that epoch (from the
    step table; None without one).
    """

    epoch: int
    time: float | None
    steps: int | None


def _reached(values: pd.Series, target: float, higher_is_better: bool) -> np.ndarray:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        return (v >= target) if higher_is_better else (v <= target)  # NaN compares False: never "reached"


def steps_done_by_epoch(steps: pd.DataFrame | None, epoch: int) -> int | None:
    """Optimizer steps done by the end of 1-based ``epoch``: ``max(step) + 1`` over step-table rows of that epoch
    or earlier. The step table's ``epoch`` is 0-based (trainer.epoch) while results.csv's is 1-based
    (trainer.epoch + 1), hence ``epoch - 1``. None without a step table or without rows up to that epoch."""
    if steps is None or steps.empty or "step" not in steps or "epoch" not in steps:
        return None
    rows = steps.loc[steps["epoch"] <= epoch - 1, "step"]
    return int(rows.max()) + 1 if len(rows) else None


def target_hit(results: pd.DataFrame, metric: str, value: float, steps: pd.DataFrame | None = None,
               higher_is_better: bool | None = None) -> TargetHit | None:
    """The first results.csv row whose ``metric`` reaches ``value``; None if it never does (or has no such column).

    ``higher_is_better`` defaults to True except for loss columns (name containing "loss"), which reach a target
    from above.
    """
    if results is None or results.empty or metric not in results:
        return None
    if higher_is_better is None:
        higher_is_better = "loss" not in metric
    hit = np.flatnonzero(_reached(results[metric], value, higher_is_better))
    if hit.size == 0:
        return None
    row = results.iloc[int(hit[0])]
    epoch = int(row["epoch"]) if "epoch" in results else int(hit[0]) + 1
    t = finite([row["time"]]) if "time" in results else []
    return TargetHit(epoch, t[0] if t else None, steps_done_by_epoch(steps, epoch))


def steps_to_target(results: pd.DataFrame, metric: str, value: float, steps: pd.DataFrame | None = None,
                    higher_is_better: bool | None = None) -> int | None:
    """Optimizer steps done by the end of the first epoch reaching the target (None: never, or no step table)."""
    hit = target_hit(results, metric, value, steps, higher_is_better)
    return hit.steps if hit else None


def time_to_target(results: pd.DataFrame, metric: str, value: float,
                   higher_is_better: bool | None = None) -> float | None:
    """Cumulative results.csv ``time`` (s) at the first epoch reaching the target (None: never)."""
    hit = target_hit(results, metric, value, None, higher_is_better)
    return hit.time if hit else None

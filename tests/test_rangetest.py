"""The range test's pure math (yolo_gd/lrfind/rangetest.py): the ramp, smoothing, the stop rule, the noise
estimate and the confidence rule, with exact values on hand-made curves."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from yolo_gd.lrfind.rangetest import (ADVICE, LrRamp, StopRule, assess, diverged, half_fall, min_over_10, noise_sigma,
                                      smooth, steepest, valley)

RAMP = LrRamp(1e-6, 1.0, 100)
LRS = [RAMP.lr(k) for k in range(100)]
WIGGLE = np.array([0.05, -0.05] * 50)  # deterministic point noise: second differences +-0.2


def test_ramp_is_exponential_from_lr_min_to_lr_max():
    ramp = LrRamp(1.0, 4.0, 3)
    assert [ramp.lr(k) for k in range(4)] == [1.0, 2.0, 4.0, 4.0]  # held at lr_max after the last step
    assert ramp(SimpleNamespace(step=1)) == 2.0
    with pytest.raises(ValueError):
        LrRamp(1.0, 0.5, 4)


def test_smoothing_is_bias_corrected_ema():
    assert smooth([2.0, 4.0], beta=0.5).tolist() == [2.0, 2.5 / 0.75]
    assert smooth([3.0] * 5).tolist() == pytest.approx([3.0] * 5, rel=1e-12)  # no start-up bias


def test_suggestion_rules_on_hand_made_curves():
    lrs = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]
    assert min_over_10(lrs[:4], [5.0, 3.0, 1.0, 9.0]) == 1e-3 / 10
    assert min_over_10(lrs[:3], [1.0, 2.0, 3.0]) is None  # never fell
    assert steepest(lrs[:5], [10.0, 9.0, 4.0, 3.5, 5.0], skip_begin=0) == 1e-4  # gradient -1, -3, -2.75, -0.5
    assert valley(lrs, [9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 10.0]) == 1e-3  # fastai: -1 + int(7/3) + int(7/6)
    assert steepest(lrs[:4], [5.0, 3.0, 1.0, 9.0]) is None  # too short to skip Lightning's first 10
    # half-fall: the first point of 3 in a row below 5 (the lone dip at 1e-4 does not count)
    assert half_fall(lrs, [9.0, 4.0, 6.0, 4.5, 4.0, 3.0, 2.0, 8.0], 5.0, 3) == 1e-2
    assert half_fall(lrs, [9.0, 4.0, 6.0, 4.5, 4.0, 6.0, 2.0, 8.0], 5.0, 3) is None


def test_stop_rule():
    assert diverged(4.01, 1.0) and not diverged(4.0, 1.0) and diverged(math.nan, 1.0)
    # one low first batch is not the reference (the old rule stopped here at point 1: 8.27 > 4 x 0.8)
    rule = StopRule()
    assert not any(rule.update(v) for v in [0.8, 15.0, 3.0, 12.0, 5.0, 14.0, 2.0, 9.0, 13.0] * 5)
    # a real divergence: smoothed 23.1, 33.8, 42.7 (> 4 x 10 from index 12), 50.1, 56.4: stops at the 3rd above
    rule = StopRule()
    assert [rule.update(v) for v in [10.0] * 10 + [100.0] * 5] == [False] * 14 + [True]
    assert StopRule().update(math.inf)  # a non-finite loss stops at once


def test_noise_sigma_is_robust_to_trends():
    assert noise_sigma([0.0, 0.0, 1.0, 0.0, 0.0, 0.0]) == 0.5 / 0.6745 / math.sqrt(6)  # d2 1,-2,1,0: MAD 0.5
    assert noise_sigma(np.arange(50) * 3.0) == 0.0 and noise_sigma([1.0, 2.0]) == 0.0
    assert noise_sigma(5 - 0.1 * np.arange(100) + WIGGLE) == pytest.approx(0.2 / 0.6745 / math.sqrt(6), rel=1e-9)


def test_confidence_rule_on_crafted_curves():
    k = np.arange(100)
    # clean descent from 10 to 4 over steps 0-59, then a rise: the suggestion is where the smoothed curve has made
    # half its fall (start 9.55, the median of the first 10 points; smoothed minimum 4.85; midpoint 7.2: the raw
    # curve crosses it at step 28, the EMA with beta 0.9 about 9 steps later), not in the rise
    clean = np.where(k < 60, 10 - 0.1 * k, 4 + 0.5 * (k - 60)) + WIGGLE
    v = assess(LRS, clean)
    assert LRS.index(v.lr) == 37 and v.reason is None
    # the probe's lighter smoothing: minimum ~4.1, midpoint ~6.8, crossed at step 32, one step of lag
    assert LRS.index(assess(LRS, clean, beta=0.5).lr) == 33
    assert v.rule == "half-fall" and v.fall > 4 * v.uncertainty
    assert set(v.others) == {"min/10", "steepest", "valley"}
    flat = assess(LRS, 4 + WIGGLE)  # a fall of 2% at most: nothing to suggest
    assert (flat.lr, flat.reason, flat.advice) == (None, "flat", ADVICE["flat"])
    noisy = 4 + 3.0 * np.random.default_rng(0).standard_normal(100)  # 0.8..15 per batch, as measured
    assert (assess(LRS, noisy).lr, assess(LRS, noisy).reason) == (None, "too noisy")
    rising = assess(LRS, 4 + 0.06 * k + WIGGLE)
    assert (rising.lr, rising.reason) == (None, "rising")
    early = assess(LRS[:5], [4.0, 4.2, 3.9, 9.0, 40.0], stopped_at_divergence=True)
    assert (early.lr, early.reason) == (None, "diverged early")
    late = assess(LRS[:70], clean[:70] * np.r_[np.ones(66), [3, 5, 8, 12]], stopped_at_divergence=True)
    assert late.lr is not None  # fell clearly first, then diverged: the descent still speaks

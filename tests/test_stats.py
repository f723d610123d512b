"""yolo_gd.report.stats: exact values against hand computation (and scipy itself for the p-value)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from yolo_gd.report.stats import (
    NO_CI, Summary, steps_done_by_epoch, steps_to_target, summarize, target_hit, time_to_target, welch,
)

T_975_DF3 = 3.182446305284263  # Student t 0.975 quantile, 3 degrees of freedom (printed tables: 3.182)
T_975_DF1 = 12.706204736174707  # ... 1 degree of freedom (12.706)


def test_summarize_four_values_by_hand():
    s = summarize([1, 2, 3, 4])
    assert s.n == 4
    assert s.mean == 2.5
    assert s.std == pytest.approx(math.sqrt(5 / 3), rel=1e-12)  # sum of squares 5, ddof 1
    half = T_975_DF3 * math.sqrt(5 / 3) / 2  # t * std / sqrt(n)
    assert half == pytest.approx(2.0542603, rel=1e-7)  # CI [0.4457, 4.5543]
    assert s.ci_low == pytest.approx(2.5 - half, rel=1e-9)
    assert s.ci_high == pytest.approx(2.5 + half, rel=1e-9)
    assert s.has_ci and not s.single_seed


def test_summarize_two_values_uses_t_with_one_degree_of_freedom():
    s = summarize([0.30, 0.22])
    assert s.mean == pytest.approx(0.26)
    assert s.std == pytest.approx(0.04 * math.sqrt(2))
    assert s.ci_high - s.mean == pytest.approx(T_975_DF1 * 0.04, rel=1e-9)  # std/sqrt(2) = 0.04


def test_summarize_one_value_has_no_spread_and_says_so():
    s = summarize([0.61])
    assert s == Summary(1, 0.61, None, None, None)
    assert s.single_seed and not s.has_ci
    assert NO_CI == "1 seed: no CI"


def test_summarize_drops_missing_values_and_handles_empty():
    assert summarize([]) == Summary(0, None, None, None, None)
    assert summarize([None, float("nan")]) == Summary(0, None, None, None, None)
    s = summarize([1.0, None, float("nan"), 3.0, float("inf")])
    assert (s.n, s.mean, s.std) == (2, 2.0, pytest.approx(math.sqrt(2)))


def test_summarize_constant_values_give_a_zero_width_ci():
    s = summarize([0.5, 0.5, 0.5])
    assert (s.std, s.ci_low, s.ci_high) == (0.0, 0.5, 0.5)


def test_welch_against_hand_computed_t_and_scipy():
    a, b = [1, 2, 3, 4], [2, 4, 6, 8, 10]
    t, p = welch(a, b)
    va, vb = (5 / 3) / 4, 10 / 5  # var/n: sample variances 5/3 and 10
    t_hand = (2.5 - 6) / math.sqrt(va + vb)
    assert t_hand == pytest.approx(-2.2514, abs=1e-4)
    assert t == pytest.approx(t_hand, rel=1e-12)
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 4)  # Welch-Satterthwaite
    assert p == pytest.approx(2 * st.t.sf(abs(t_hand), df), rel=1e-10)
    assert p == pytest.approx(st.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)
    assert 0.05 < p < 0.1


def test_welch_clean_numbers():
    # the report test's fake sweep: adamw [0.5, 0.56] vs sgd [0.30, 0.22] -> t = 0.27 / sqrt(0.0009 + 0.0016) = 5.4
    t, p = welch([0.5, 0.56], [0.30, 0.22])
    assert t == pytest.approx(5.4, rel=1e-9)
    df = 0.0025**2 / (0.0009**2 + 0.0016**2)
    assert p == pytest.approx(2 * st.t.sf(5.4, df), rel=1e-9)


def test_welch_needs_two_values_per_side_and_some_variance():
    assert welch([1.0], [1.0, 2.0]) is None
    assert welch([1.0, 2.0], []) is None
    assert welch([1.0, None, float("nan")], [1.0, 2.0]) is None  # one finite value left
    assert welch([1.0, 1.0], [1.0, 1.0]) is None  # scipy: NaN
    assert welch([1.0, 1.0], [2.0, 2.0]) is None  # scipy: t = -inf, p = 0: seeds that change nothing


def _results():
    return pd.DataFrame({
        "epoch": [1, 2, 3, 4],
        "time": [10.0, 21.0, 33.0, 44.0],
        "metrics/mAP50(B)": [0.1, np.nan, 0.5, 0.7],
        "val/box_loss": [3.0, 2.0, 1.5, 1.0],
    })


def _steps(per_epoch=5, epochs=4):
    step = np.arange(per_epoch * epochs)
    return pd.DataFrame({"step": step, "epoch": step // per_epoch})


def test_target_hit_first_epoch_time_and_steps():
    hit = target_hit(_results(), "metrics/mAP50(B)", 0.5, _steps())
    # epoch 3 (1-based) = step-table epoch 2 = steps 0..14 -> 15 steps done
    assert (hit.epoch, hit.time, hit.steps) == (3, 33.0, 15)
    assert steps_to_target(_results(), "metrics/mAP50(B)", 0.5, _steps()) == 15
    assert time_to_target(_results(), "metrics/mAP50(B)", 0.5) == 33.0
    assert target_hit(_results(), "metrics/mAP50(B)", 0.05, _steps()).steps == 5  # first epoch: 5 steps


def test_target_never_reached_or_missing_column_is_none():
    assert target_hit(_results(), "metrics/mAP50(B)", 0.9) is None
    assert steps_to_target(_results(), "metrics/mAP50(B)", 0.9, _steps()) is None
    assert time_to_target(_results(), "metrics/mAP50(B)", 0.9) is None
    assert time_to_target(_results(), "metrics/mAP50-95(B)", 0.1) is None
    assert time_to_target(pd.DataFrame(), "metrics/mAP50(B)", 0.1) is None


def test_target_without_step_table_has_no_steps():
    hit = target_hit(_results(), "metrics/mAP50(B)", 0.5)
    assert (hit.epoch, hit.time, hit.steps) == (3, 33.0, None)
    assert steps_to_target(_results(), "metrics/mAP50(B)", 0.5, pd.DataFrame()) is None


def test_loss_targets_are_reached_from_above():
    assert time_to_target(_results(), "val/box_loss", 1.5) == 33.0
    assert time_to_target(_results(), "val/box_loss", 1.5, higher_is_better=True) == 10.0


def test_steps_done_by_epoch_uses_the_last_recorded_step():
    steps = pd.DataFrame({"step": [0, 1, 2, 3, 4, 5, 6], "epoch": [0, 0, 0, 1, 1, 2, 2]})
    assert steps_done_by_epoch(steps, 1) == 3
    assert steps_done_by_epoch(steps, 2) == 5
    assert steps_done_by_epoch(steps, 9) == 7
    assert steps_done_by_epoch(steps, 0) is None
    assert steps_done_by_epoch(None, 1) is None

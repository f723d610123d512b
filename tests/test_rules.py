"""yolo_gd.health.rules: each rule's thresholds at their boundary, on small hand-made step tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from yolo_gd.health import rules as R

NONE = pd.DataFrame()


def table(n: int = 10, first: int = 0, **cols) -> pd.DataFrame:
    return pd.DataFrame({"step": np.arange(first, first + n), **cols})


def test_spike_is_strictly_above_twice_the_median_after_five_steps():
    loss = np.ones(10)
    loss[[5, 7]] = [2.0, 2.001]  # 2x the median is not a spike, just above is
    assert R.spike_steps(table(loss_sum=loss)) == (7,)
    early = np.ones(10)
    early[4] = 9.0  # only 4 steps of history: too few for a median
    assert R.spike_steps(table(loss_sum=early)) == ()
    assert R.spike_steps(table(loss_sum=[1.0] * 6 + [np.nan, 1.0, 9.0, 1.0])) == (8,)  # a NaN loss is no spike


def test_warmup_steps_counts_from_the_first_step_and_takes_the_latest_group():
    df = table(n=6, first=100, **{"lr/w": [0.1, 0.2, 0.3, 0.3, 0.3, 0.3], "lr/bias": [0.9, 0.5, 0.3, 0.3, 0.3, 0.3]})
    assert R.warmup_steps(df) == 2  # weights peak at step 102; the falling bias LR peaks at 100
    assert R.warmup_steps(table(loss_sum=np.ones(10))) == 0  # no LR columns


def clipped(rate_steps: int, coef: float, optimizer: str | None = None) -> pd.DataFrame:
    c = np.arange(10) < rate_steps
    cols = dict(grad_norm=np.full(10, 100.0), clipped=c, clip_coef=np.where(c, coef, 1.0), clip=10.0)
    return table(**cols, **({"optimizer": optimizer} if optimizer else {}))


def test_clip_dominated_boundaries_and_optimizer_titles():
    assert R.clip_dominated(clipped(8, 0.1), NONE) == []  # rate 0.8 < 0.9
    assert R.clip_dominated(clipped(9, 0.11), NONE) == []  # coefficient above 0.1
    [f] = R.clip_dominated(clipped(9, 0.1, "SGD"), NONE)
    assert f.evidence == ("9 of 10 steps clipped (rate 0.90); clip coefficient median 0.1 (range 0.1-0.1); pre-clip "
                          "grad_norm median 100 (range 100-100) against clip 10; optimizer SGD")
    assert f.title.startswith("the gradient clip sets the step size")
    [g] = R.clip_dominated(clipped(10, 0.1, "AdamW"), NONE)
    assert g.title.startswith("the gradient clip rescales every step: AdamW divides the scale out")


def test_two_skipped_steps_in_a_row_are_an_overflow_three_a_divergence():
    skipped = np.zeros(10, bool)
    skipped[[2, 3, 6]] = True
    assert R.lr_too_high(table(skipped=skipped), NONE) == []
    skipped[4] = True
    [f] = R.lr_too_high(table(first=10, skipped=skipped), NONE)
    assert (f.evidence, f.steps) == ("3 AMP-skipped steps in a row (steps 12-14)", (12, 13, 14))


def test_many_nonfinite_steps_are_shown_eight_then_counted():
    [f] = R.lr_too_high(table(nonfinite=np.arange(10) >= 1), NONE)
    assert f.evidence == "9 non-finite steps (steps 1, 2, 3, 4, 5, 6, 7, 8 ... (9 in all))"
    assert f.steps == tuple(range(1, 10))


def test_lr_too_low_needs_more_than_half_the_groups_low_and_a_flat_loss():
    flat = dict(loss_sum=np.full(10, 3.0))
    half = table(**flat, **{"update_ratio/a": 1e-5, "update_ratio/b": 1e-3})
    assert R.lr_too_low(half, NONE) == []  # 1 of 2 is not "most"
    falling = table(loss_sum=np.linspace(3.0, 2.0, 10), **{"update_ratio/a": 1e-5})
    assert R.lr_too_low(falling, NONE) == []  # loss fell 33%
    [f] = R.lr_too_low(table(loss_sum=np.linspace(3.0, 2.9, 10), **{"update_ratio/a": 1e-5}), NONE)
    assert f.evidence == ("median update/param ratio per group: a 1e-05 (1 of 1 below 0.0001); loss_sum 3 -> 2.9 "
                          "(+3.3% decrease)")


def test_dead_gradients_ignore_rows_where_nothing_was_recorded():
    df = table(n=3, **{"grad_norm/a": [1.0, np.nan, 2.0], "grad_norm/b": [0.0, np.nan, 0.0]})
    [f] = R.dead_gradients(df, NONE)
    assert (f.code, f.evidence) == ("zero-gradients", "gradient norm 0 at every step for: grad_norm/b")
    df.loc[2, "grad_norm/b"] = np.nan  # a NaN where another group recorded is that group's
    assert [f.code for f in R.dead_gradients(df, NONE)] == ["zero-gradients", "nonfinite-gradients"]


def test_amp_collapse_at_ten_halvings_or_below_one():
    assert R.amp_collapse(table(amp_scale=np.ones(10)), NONE) == []  # AMP off
    assert R.amp_collapse(table(amp_scale=[65536.0] * 9 + [128.0]), NONE) == []  # 9 halvings
    [f] = R.amp_collapse(table(amp_scale=[65536.0] * 8 + [64.0, 128.0]), NONE)
    assert (f.evidence, f.steps) == ("amp_scale 6.55e+04 at the start, 64 at its lowest (step 8), 128 at the end",
                                     (8,))
    assert [f.code for f in R.amp_collapse(table(amp_scale=[2.0] * 9 + [0.5]), NONE)] == ["amp-scale-collapse"]


def test_warmup_too_long_above_thirty_percent():
    def lr(wu):
        return table(n=100, **{"lr/w": np.minimum(np.arange(100), wu) + 1.0, "loss_sum": np.ones(100)})

    assert R.warmup(lr(30), NONE) == []
    [f] = R.warmup(lr(31), NONE)
    assert f.code == "warmup-too-long" and f.evidence == "LR rises for 31 of 100 steps (31%)"


def test_noise_scale_far_means_more_than_ten_times():
    df = table(images_seen=(np.arange(10) + 1) * 16, batch=np.arange(10))
    assert R.noise_scale(df, pd.DataFrame({"noise_scale": [160.0]})) == []  # exactly 10x: near enough
    [f] = R.noise_scale(df, pd.DataFrame({"noise_scale": [np.nan, 161.0]}))
    assert f.title == "the batch size is far below the gradient noise scale"
    assert f.evidence == "batch 16 images per step; noise scale 161 in the last epoch (per epoch: 161)"


def test_early_phase_ends_at_a_tenth_of_the_run_without_warmup():
    loss = np.ones(100)
    loss[[6, 11]] = 5.0  # one spike in steps 0-10 (early), one after
    assert R.run_rules(table(n=100, loss_sum=loss)) == []
    loss[10] = 5.0
    [f] = R.run_rules(table(n=100, loss_sum=loss))
    assert (f.code, f.steps) == ("warmup-too-short", (6, 10))
    assert f.evidence == "2 loss spikes in the first 11 steps (steps 6, 10); warmup seen in the LR: 0 steps"

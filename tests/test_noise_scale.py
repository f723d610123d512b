"""Gradient noise scale (McCandlish et al. 2018, App. A.1): exact on hand numbers, within its interval of the truth on
linear regression with Gaussian noise, and written by a tiny real run with nbs / batch >= 2."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_train_args

from yolo_gd.telemetry.noise_scale import epoch_noise_scale, simple_noise_scale, two_batch_estimates


def test_two_batch_estimates_are_exact_on_expected_values():
    # |G|^2 = 3, tr(Sigma) = 16: E|G_B|^2 = |G|^2 + tr/B -> 7 at B = 4, 4 at B = 16
    g2, trace = two_batch_estimates([7.0], [4.0], [4.0], [16.0])
    assert g2.tolist() == [3.0] and trace.tolist() == [16.0]


def test_epoch_rows_use_mean_gradients_and_skip_k1_windows():
    """Raw gradients are sums over images (Ultralytics' loss = mean x batch): B = 4, k = 4 -> divide by 4^2, 16^2."""
    df = pd.DataFrame({
        "grad_sq_first": [7.0 * 16, 7.0 * 16, np.nan, 1e9],
        "grad_norm": [32.0, 32.0, 32.0, 32.0],
        "accumulate": [4, 4, 1, 4],
        "batch_size": [4, 4, 4, 4],
        "skipped": [False, False, False, True],  # a skipped AMP step's window is not used
    })
    est = epoch_noise_scale(df)
    assert est.value == 16.0 / 3.0 and est.windows == 2 and est.lo == est.hi == 16.0 / 3.0


def test_not_available_without_windows():
    df = pd.DataFrame({"grad_sq_first": [np.nan], "grad_norm": [1.0], "accumulate": [1], "batch_size": [8],
                       "skipped": [False]})
    assert math.isnan(epoch_noise_scale(df).value)
    assert math.isnan(epoch_noise_scale(pd.DataFrame({"grad_norm": [1.0]})).value)  # basic level: no column


def _regression_windows(windows: int, batch: int, k: int, d: int, sigma: float, seed: int):
    """Per-sample loss 0.5 (x.w - y)^2, y = x.w* + eps, x ~ N(0, I_d), eps ~ N(0, sigma^2), at w = w* + delta.

    Per-sample gradient g = x (x.delta - eps): G = delta, Sigma = delta delta^T + (|delta|^2 + sigma^2) I, so
    B_simple = tr(Sigma) / |G|^2 = 1 + d (1 + sigma^2 / |delta|^2) exactly.
    """
    rng = np.random.default_rng(seed)
    delta = np.ones(d) / math.sqrt(d)  # |delta| = 1
    small, big = [], []
    for _ in range(windows):
        x = rng.standard_normal((k * batch, d))
        eps = rng.normal(0.0, sigma, k * batch)
        g = x * (x @ delta - eps)[:, None]
        small.append(np.square(g[:batch].mean(0)).sum())
        big.append(np.square(g.mean(0)).sum())
    truth = 1 + d * (1 + sigma**2)
    return np.array(small), np.array(big), truth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_regression_truth_is_within_the_interval(seed):
    small, big, truth = _regression_windows(windows=1000, batch=8, k=4, d=10, sigma=1.0, seed=seed)
    assert truth == 21.0
    est = simple_noise_scale(small, big, np.full(1000, 8.0), np.full(1000, 32.0))
    assert est.windows == 1000 and est.lo <= truth <= est.hi
    assert est.hi - est.lo < 0.5 * truth  # an interval that says something


def test_tiny_real_run_writes_a_finite_noise_scale(tiny_data, tmp_path):
    """telemetry=full with nbs / batch = 2: every window has a first micro-batch read."""
    from yolo_gd.training import train

    args = tiny_train_args(tiny_data, tmp_path, "noise", epochs=1, nbs=16, batch=8, warmup_epochs=0)
    result = train(model="yolo11n.yaml", optimizer="sgd", telemetry="full",
                   **{k: v for k, v in args.items() if k != "data"}, data=str(tiny_data))
    epochs = pd.read_csv(result.save_dir / "telemetry" / "epochs.csv")
    row = epochs.iloc[-1]
    assert np.isfinite(row["noise_scale"]) and row["noise_windows"] == 3 and row["batch_size"] == 8
    assert row["noise_scale_lo"] <= row["noise_scale_hi"]

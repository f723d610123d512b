"""McCandlish et al. 2018 ("An Empirical Model of Large-Batch Training"), the simple noise scale, from two batch sizes.

B_simple = tr(Sigma) / |G|^2, with G the true gradient and Sigma the per-example gradient covariance. Appendix A.1:
given |G_small|^2 and |G_big|^2, squared norms of MEAN gradients over B_small and B_big examples,

    |G|^2     ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)      (unbiased)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1 / B_small - 1 / B_big)           (unbiased)

and the ratio is taken of the two estimates averaged separately over many measurements (each single estimate is
noisy; the ratio of means is far less biased than the mean of ratios).

In training (``telemetry=full``): an accumulation window of k >= 2 micro-batches of B images gives B_small = B (the
gradient after the first micro-batch) and B_big = k B (the gradient the step sees). Ultralytics' detection loss is
the batch's mean loss times B, so a raw gradient is divided by its image count to get the mean gradient.
Not available (NaN): k = 1 (no second batch size: set ``nbs >= 2 x batch``), observe-only runs (the step sees only
window ends), DDP (rank 0's gradients are all-reduced over ranks: B_small would be B x world and the first
micro-batch's read is not taken; not validated, so not reported).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

BOOTSTRAP_DRAWS = 400  # resamples of the epoch's windows: enough for stable 2.5/97.5 % percentiles (~1 % noise)
BOOTSTRAP_SEED = 0  # fixed: the same telemetry gives the same interval
INTERVAL = (2.5, 97.5)  # a 95 % percentile interval
MIN_WINDOWS = 2  # a resample of a single window has no spread


@dataclass(frozen=True)
class NoiseScale:
    value: float  # B_simple of the pooled windows
    lo: float  # bootstrap interval over windows (NaN with fewer than MIN_WINDOWS windows)
    hi: float
    windows: int  # windows used

    def as_row(self) -> dict:
        return {"noise_scale": self.value, "noise_scale_lo": self.lo, "noise_scale_hi": self.hi,
                "noise_windows": self.windows}


NOT_AVAILABLE = NoiseScale(math.nan, math.nan, math.nan, 0)


def two_batch_estimates(sq_small, sq_big, b_small, b_big) -> tuple[np.ndarray, np.ndarray]:
    """Per-measurement unbiased estimates of |G|^2 and tr(Sigma) (Appendix A.1): arrays of the inputs' shape."""
    sq_small, sq_big = np.asarray(sq_small, "float64"), np.asarray(sq_big, "float64")
    b_small, b_big = np.asarray(b_small, "float64"), np.asarray(b_big, "float64")
    g2 = (b_big * sq_big - b_small * sq_small) / (b_big - b_small)
    trace = (sq_small - sq_big) / (1.0 / b_small - 1.0 / b_big)
    return g2, trace


def simple_noise_scale(sq_small, sq_big, b_small, b_big, draws: int = BOOTSTRAP_DRAWS) -> NoiseScale:
    """B_simple = mean(tr Sigma) / mean(|G|^2) over the windows, with a bootstrap interval over windows."""
    g2, trace = two_batch_estimates(sq_small, sq_big, b_small, b_big)
    n = len(g2)
    if n == 0:
        return NOT_AVAILABLE
    value = float(trace.mean() / g2.mean())
    if n < MIN_WINDOWS:
        return NoiseScale(value, math.nan, math.nan, n)
    idx = np.random.default_rng(BOOTSTRAP_SEED).integers(0, n, size=(draws, n))
    boot = trace[idx].mean(1) / g2[idx].mean(1)
    lo, hi = np.percentile(boot, INTERVAL)
    return NoiseScale(value, float(lo), float(hi), n)


def epoch_noise_scale(df: pd.DataFrame) -> NoiseScale:
    """The noise scale of one epoch's step rows (full level: ``grad_sq_first``, ``accumulate``, ``batch_size``).

    Uses the windows of k >= 2 with finite reads that the AMP scaler did not skip; NaN when there are none.
    """
    if "grad_sq_first" not in df or df.empty:
        return NOT_AVAILABLE
    k = df["accumulate"].astype("float64")
    b = df["batch_size"].astype("float64")
    small = df["grad_sq_first"].astype("float64")
    big = df["grad_norm"].astype("float64") ** 2
    ok = (k >= 2) & (b > 0) & np.isfinite(small) & np.isfinite(big) & ~df["skipped"].astype(bool)
    if not ok.any():
        return NOT_AVAILABLE
    k, b, small, big = k[ok].to_numpy(), b[ok].to_numpy(), small[ok].to_numpy(), big[ok].to_numpy()
    # raw gradients are sums over images (loss = mean x batch): divide by the image count for mean gradients
    return simple_noise_scale(small / b**2, big / (k * b) ** 2, b, k * b)

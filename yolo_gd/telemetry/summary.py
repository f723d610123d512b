"""The epoch summary row of ``epochs.csv``: host-side pandas over the flushed step rows of one epoch."""

from __future__ import annotations

import math

import pandas as pd

from yolo_gd.telemetry.noise_scale import epoch_noise_scale


def epoch_row(df: pd.DataFrame, epoch: int) -> dict:
    """Summarize one epoch's rows (the latest attempt's, non-empty): see ``EPOCH_COLUMNS`` in telemetry/schema.py."""
    finite = df["grad_norm"][~df["nonfinite"]].astype("float64")
    last = df.iloc[-1]
    batch = df["batch_size"].iloc[-1] if "batch_size" in df else math.nan
    return {
        "epoch": int(epoch),
        "attempt": int(last["attempt"]),
        "steps": len(df),
        "first_step": int(df["step"].iloc[0]),
        "last_step": int(last["step"]),
        "time": float(last["time"]),
        "grad_norm_mean": float(finite.mean()) if len(finite) else math.nan,
        "grad_norm_max": float(finite.max()) if len(finite) else math.nan,
        "clip_rate": float(df["clipped"].mean()),
        "skipped_steps": int(df["skipped"].sum()),
        "nonfinite_steps": int(df["nonfinite"].sum()),
        **{c: float(last[c]) for c in df.columns if c.startswith("lr/")},
        "loss_backprop_mean": float(df["loss_backprop"].astype("float64").mean()),
        **{f"{c}_mean": float(df[c].astype("float64").mean()) for c in df.columns if c.startswith("loss/")},
        **epoch_noise_scale(df).as_row(),
        "batch_size": float(batch),
    }

"""A finished range test's files: ``lrfind.csv`` (per step: LR, training loss, the signal where it was taken and
its smoothed value), ``lrfind.png`` (both against LR, log x, the suggestion or the reason there is none),
``steps.parquet`` (the step table) and ``suggestion.json`` (the verdict, its numbers and the conditions)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from yolo_gd.lrfind.rangetest import BETA, PROBE_BETA, Verdict, assess, smooth

__all__ = ["curve", "write_outputs"]


def curve(table: pd.DataFrame, points: Sequence[tuple[int, float, float]]) -> pd.DataFrame:
    """``step, lr, loss, signal, smoothed``: the step table's LR (its first group: the ramp sets every group alike)
    and training loss, and the signal's points (NaN at steps where none was taken) with their EMA."""
    lr_col = next(c for c in table.columns if c.startswith("lr/"))
    df = pd.DataFrame({"step": table["step"].to_numpy(), "lr": table[lr_col].to_numpy(),
                       "loss": table["loss_sum"].astype("float64").to_numpy()})
    sig = pd.DataFrame(points, columns=["step", "signal_lr", "signal"])
    return df.merge(sig[["step", "signal"]], on="step", how="left")


def _plot(df: pd.DataFrame, v: Verdict, path: Path, title: str) -> Path:
    from matplotlib.figure import Figure

    from yolo_gd.plotting import finish_figure

    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(df["lr"], df["loss"], color="0.75", lw=0.8, label="training loss per step")
    pts = df[np.isfinite(df["signal"])]
    ax.plot(pts["lr"], pts["signal"], "o", color="C0", ms=2.5, label="signal")
    ax.plot(pts["lr"], pts["smoothed"], color="C0", lw=1.8, label="signal, smoothed")
    ax.set_xscale("log")
    ax.set_ylabel("detection loss (sum of parts)")
    y = pts["smoothed"][np.isfinite(pts["smoothed"])]
    if len(y):  # the curve, not the outliers: from below its minimum to 4x it (the stop rule's range)
        lo, hi = float(y.min()), float(min(y.max(), 4 * y.min()))
        ax.set_ylim(max(0.0, lo - 0.1 * (hi - lo) - 0.05 * abs(lo)), hi * 1.1 if hi > 0 else 1.0)
    if v.lr is not None:
        ax.axvline(v.lr, color="C3", ls="--", label=f"suggested {v.lr:.2g} ({v.rule})")
    else:
        ax.text(0.02, 0.04, f"no reliable suggestion: {v.reason}", transform=ax.transAxes, color="C3")
    return finish_figure(fig, [ax], path, title, xlabel="learning rate (log)")


def write_outputs(table: pd.DataFrame, points: Sequence[tuple[int, float, float]], out: Path, optimizer: str,
                  seconds: float, diverged: bool, conditions: dict) -> tuple[Verdict, Path, Path | None]:
    out.mkdir(parents=True, exist_ok=True)
    df = curve(table, points)
    beta = PROBE_BETA if conditions.get("probe") else BETA
    ok = np.isfinite(df["signal"].to_numpy())
    df["smoothed"] = np.nan
    if ok.any():
        df.loc[ok, "smoothed"] = smooth(df.loc[ok, "signal"].to_numpy(), beta)
    v = assess(df.loc[ok, "lr"].to_numpy(), df.loc[ok, "signal"].to_numpy(), diverged, beta,
               conditions.get("points_planned"))
    csv = out / "lrfind.csv"
    df.to_csv(csv, index=False)
    table.to_parquet(out / "steps.parquet", index=False, engine="pyarrow")
    info = {"optimizer": optimizer, "suggested_lr": v.lr, "rule": v.rule, "reason": v.reason, "advice": v.advice,
            "start": v.start, "lowest": v.lowest, "noise": v.noise, "uncertainty": v.uncertainty, "others": v.others,
            "steps": len(df), "stopped_at_divergence": diverged, "seconds": round(seconds, 1),
            "lr_first": float(df["lr"].iloc[0]) if len(df) else None,
            "lr_last": float(df["lr"].iloc[-1]) if len(df) else None, "conditions": conditions}
    (out / "suggestion.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    plot = _plot(df, v, out / "lrfind.png", f"LR range test: {optimizer}") if len(df) else None
    return v, csv, plot

"""A finished range test's files: ``lrfind.csv``, ``lrfind.png`` (loss vs LR, log x, the suggestion marked),
``steps.parquet`` (the step table it was computed from) and ``suggestion.json``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from yolo_gd.lrfind.rangetest import Suggestion, smooth, suggest

__all__ = ["curve", "write_outputs"]


def curve(table: pd.DataFrame) -> pd.DataFrame:
    """``step, lr, loss, smoothed`` from a step table (the LR of its first group: the ramp sets every group alike)."""
    lr_col = next(c for c in table.columns if c.startswith("lr/"))
    loss = table["loss_sum"].astype("float64").to_numpy()
    return pd.DataFrame({"step": table["step"].to_numpy(), "lr": table[lr_col].to_numpy(), "loss": loss,
                         "smoothed": smooth(loss)})


def _plot(df: pd.DataFrame, s: Suggestion, path: Path, title: str) -> Path:
    from matplotlib.figure import Figure

    from yolo_gd.plotting import finish_figure

    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(df["lr"], df["loss"], color="0.75", lw=0.8, label="loss per step")
    ax.plot(df["lr"], df["smoothed"], color="C0", lw=1.8, label="smoothed (EMA, bias-corrected)")
    ax.set_xscale("log")
    ax.set_ylabel("detection loss (sum of parts)")
    finite = df["smoothed"][np.isfinite(df["smoothed"])]
    if len(finite):
        ax.set_ylim(top=float(min(finite.max(), 4 * finite.min()) * 1.1))
    if s.lr is not None:
        ax.axvline(s.lr, color="C3", ls="--", label=f"suggested {s.lr:.2g} ({s.rule})")
    for (rule, lr), color in zip(s.others.items(), ("C2", "C4")):
        if lr is not None:
            ax.axvline(lr, color=color, ls=":", lw=1, label=f"{rule} {lr:.2g}")
    return finish_figure(fig, [ax], path, title, xlabel="learning rate (log)")


def write_outputs(table: pd.DataFrame, out: Path, optimizer: str, seconds: float, diverged: bool
                  ) -> tuple[Suggestion, Path, Path | None]:
    out.mkdir(parents=True, exist_ok=True)
    df = curve(table)
    s = suggest(df["lr"].to_numpy(), df["smoothed"].to_numpy())
    csv = out / "lrfind.csv"
    df.to_csv(csv, index=False)
    table.to_parquet(out / "steps.parquet", index=False, engine="pyarrow")
    info = {"optimizer": optimizer, "suggested_lr": s.lr, "rule": s.rule, "others": s.others, "steps": len(df),
            "stopped_at_divergence": diverged, "seconds": round(seconds, 1),
            "lr_first": float(df["lr"].iloc[0]) if len(df) else None,
            "lr_last": float(df["lr"].iloc[-1]) if len(df) else None}
    (out / "suggestion.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    plot = _plot(df, s, out / "lrfind.png", f"LR range test: {optimizer}") if len(df) else None
    return s, csv, plot

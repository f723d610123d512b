"""PNG plots of a run's step table: losses, gradient norm and clipping, LR and momentum, update/parameter ratio.

Uses matplotlib's object API with the Agg canvas (``Figure`` + ``savefig``), never ``pyplot``: no global backend
is switched and no figure is left registered, so plotting from a training process or a test is side-effect free.
Every plot has the optimizer step on x and dotted vertical lines where an epoch starts. Rows that a NaN recovery
or an OOM retry threw away are left out (the latest attempt of each step is plotted).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from yolo_gd.plotting import DPI, finish_figure, trailing_mean
from yolo_gd.telemetry.sinks import read_steps, telemetry_dir

__all__ = ["plot_run", "plot_steps"]

# group i gets _PALETTE[i] in every plot; red (C3) is kept for clipping and bad steps
_PALETTE = ("C0", "C1", "C2", "C4", "C5", "C6", "C8", "C9", "C7")


def _color(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def _cols(df: pd.DataFrame, prefix: str) -> list[str]:
    return [c for c in df.columns if c.startswith(prefix)]


def _smooth(y: np.ndarray, n: int) -> np.ndarray:
    """Trailing mean over a window of ~4% of the ``n`` points, so a noisy per-step curve shows its trend."""
    return trailing_mean(y, max(1, min(n // 25, 50)))


def _epoch_lines(ax, df: pd.DataFrame) -> None:
    starts = df["step"][df["epoch"].diff().fillna(0) > 0].to_numpy()
    for i, s in enumerate(starts):
        ax.axvline(s, color="0.6", lw=0.8, ls=":", zorder=0, label="epoch start" if i == 0 else None)


def _finish(fig: Figure, ax_list, title: str, path: Path) -> Path:
    return finish_figure(fig, ax_list, path, title, xlabel="optimizer step", two_legend_columns_over=6)


def _positive(y: np.ndarray) -> np.ndarray:
    """Values for a log axis: zeros and non-finite values become gaps instead of breaking the scale."""
    y = np.asarray(y, dtype="float64").copy()
    y[~np.isfinite(y) | (y <= 0)] = np.nan
    return y


def _plot_losses(df, out, name):
    parts = _cols(df, "loss/")
    if not parts and "loss_backprop" not in df:
        return None
    fig = Figure(figsize=(9, 6.5), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    x, n = df["step"].to_numpy(), len(df)
    for i, c in enumerate([*parts, "loss_sum"] if parts else []):
        y = df[c].to_numpy(dtype="float64")
        color = "0.15" if c == "loss_sum" else _color(i)
        axes[0].plot(x, y, color=color, lw=0.6, alpha=0.35)
        axes[0].plot(x, _smooth(y, n), color=color, lw=1.6, label=c.removeprefix("loss/"))
    axes[0].set_ylabel("loss (per image)")
    axes[0].set_title("loss parts (thin: per step, thick: trailing mean)", fontsize=9)
    if "loss_backprop" in df:
        y = df["loss_backprop"].to_numpy(dtype="float64")
        axes[1].plot(x, y, color="0.4", lw=0.6, alpha=0.4)
        axes[1].plot(x, _smooth(y, n), color="k", lw=1.4, label="loss_backprop")
        axes[1].set_ylabel("backpropagated loss")
    for ax in axes:
        _epoch_lines(ax, df)
    return _finish(fig, list(axes), f"{name}: losses", out / "losses.png")


def _plot_grad_norm(df, out, name):
    if "grad_norm" not in df:
        return None
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.subplots()
    x = df["step"].to_numpy()
    for i, c in enumerate(_cols(df, "grad_norm/")):
        ax.plot(x, _positive(df[c]), lw=0.8, alpha=0.8, color=_color(i), label=c.removeprefix("grad_norm/"))
    gn = _positive(df["grad_norm"])
    ax.plot(x, gn, color="k", lw=1.3, label="global (pre-clip)")
    if "clip" in df and df["clip"].notna().any():
        clip = df["clip"].to_numpy(dtype="float64")
        ax.step(x, clip, where="post", color="C3", lw=1.2, ls="--", label="clip threshold")
        mask = df["clipped"].to_numpy(dtype=bool) if "clipped" in df else np.zeros(len(df), bool)
        if mask.any():
            ax.scatter(x[mask], gn[mask], s=10, marker="o", facecolors="none", edgecolors="C3", lw=0.7, zorder=3,
                       label=f"clipped ({int(mask.sum())}/{len(mask)} steps)")
    bad = np.zeros(len(df), bool)
    for flag in ("skipped", "nonfinite"):
        if flag in df:
            bad |= df[flag].to_numpy(dtype=bool)
    for i, s in enumerate(x[bad]):
        ax.axvline(s, color="C3", lw=1.0, alpha=0.5, label="skipped / non-finite step" if i == 0 else None)
    ax.set_yscale("log")
    ax.set_ylabel("gradient L2 norm (unscaled, pre-clip)")
    _epoch_lines(ax, df)
    return _finish(fig, [ax], f"{name}: gradient norm", out / "grad_norm.png")


def _plot_lr(df, out, name):
    lrs, moms = _cols(df, "lr/"), _cols(df, "momentum/")
    if not lrs:
        return None
    has_mom = any(df[c].notna().any() for c in moms)
    fig = Figure(figsize=(9, 6.5 if has_mom else 4.5), layout="constrained")
    axes = list(np.atleast_1d(fig.subplots(2 if has_mom else 1, 1, sharex=True)))
    x = df["step"].to_numpy()
    styles = ["-", "--", "-.", ":"]
    for i, c in enumerate(lrs):
        axes[0].plot(x, df[c], lw=1.4, ls=styles[i % 4], color=_color(i), label=c.removeprefix("lr/"))
    axes[0].set_ylabel("learning rate")
    axes[0].set_title("per parameter group (as the step used it)", fontsize=9)
    if has_mom:
        for i, c in enumerate(moms):
            axes[1].plot(x, df[c], lw=1.4, ls=styles[i % 4], color=_color(i), label=c.removeprefix("momentum/"))
        axes[1].set_ylabel("momentum / beta1")
    for ax in axes:
        _epoch_lines(ax, df)
    return _finish(fig, axes, f"{name}: learning rate and momentum", out / "lr_momentum.png")


def _plot_update_ratio(df, out, name):
    cols = [(i, c) for i, c in enumerate(_cols(df, "update_ratio/")) if (df[c] > 0).any()]
    if not cols:
        return None
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.subplots()
    x, n = df["step"].to_numpy(), len(df)
    for i, c in cols:  # i: the group's position, so it keeps its colour
        y = _positive(df[c])
        ax.plot(x, y, lw=0.6, alpha=0.35, color=_color(i))
        ax.plot(x, _smooth(y, n), lw=1.6, color=_color(i), label=c.removeprefix("update_ratio/"))
    ax.set_yscale("log")
    ax.set_ylabel("||update|| / ||params||")
    ax.set_title("relative step size per parameter group (thin: per step, thick: trailing mean)", fontsize=9)
    _epoch_lines(ax, df)
    return _finish(fig, [ax], f"{name}: update / parameter norm ratio", out / "update_ratio.png")


def _plot_layers(df, out, name):
    cols = _cols(df, "layer_grad_norm/")
    if not cols:
        return None
    z = np.log10(_positive(df[cols].to_numpy(dtype="float64")).T)
    fig = Figure(figsize=(10, max(3.5, 0.16 * len(cols) + 1.5)), layout="constrained")
    ax = fig.subplots()
    x = df["step"].to_numpy()
    im = ax.imshow(z, aspect="auto", interpolation="nearest", cmap="viridis",
                   extent=(x[0] - 0.5, x[-1] + 0.5, len(cols) - 0.5, -0.5))
    ax.set_yticks(range(len(cols)), [c.removeprefix("layer_grad_norm/") for c in cols],
                  fontsize=7 if len(cols) < 40 else 5)
    ax.set_ylabel("module")
    fig.colorbar(im, ax=ax, label="log10 gradient norm (pre-clip)")
    for s in df["step"][df["epoch"].diff().fillna(0) > 0]:
        ax.axvline(s - 0.5, color="w", lw=0.8, ls=":")
    ax.set_xlabel("optimizer step")
    fig.suptitle(f"{name}: per-layer gradient norm", fontsize=11)
    fig.savefig(out / "layer_grad_norm.png", dpi=DPI)
    return out / "layer_grad_norm.png"


def _plot_noise_scale(df, out, name):
    """Per-epoch gradient noise scale (level 'full' with k >= 2 windows) with its bootstrap interval."""
    from yolo_gd.telemetry.noise_scale import epoch_noise_scale

    if "grad_sq_first" not in df:
        return None
    rows = [(e, epoch_noise_scale(g)) for e, g in df.groupby("epoch")]
    rows = [(e + 1, n) for e, n in rows if np.isfinite(n.value) and n.value > 0]
    if not rows:
        return None
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    x = np.array([e for e, _ in rows], dtype="float64")
    y = np.array([n.value for _, n in rows])
    ax.plot(x, y, marker="o", color=_color(0), label="B_simple")
    lo, hi = np.array([n.lo for _, n in rows]), np.array([n.hi for _, n in rows])
    ax.fill_between(x, np.where(lo > 0, lo, np.nan), hi, color=_color(0), alpha=0.2, lw=0, label="95 % bootstrap")
    batch = df["batch_size"].iloc[-1] * df["accumulate"].max()
    ax.axhline(batch, color="0.3", ls="--", lw=1, label=f"images per step ({batch:g})")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("simple noise scale (images, log)")
    ax.legend()
    return _finish(fig, [ax], f"{name}: gradient noise scale", out / "noise_scale.png")


def plot_steps(df: pd.DataFrame, out_dir: str | os.PathLike, name: str = "run") -> list[Path]:
    """Write the PNGs for a step table ``df`` into ``out_dir``; returns the paths written (plots with no data
    are skipped: no update ratio or layer heat map below level 'full')."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if df.empty:
        return []
    if "attempt" in df:
        df = df.drop_duplicates("step", keep="last")
    df = df.sort_values("step", kind="stable").reset_index(drop=True)
    paths = []
    for plot in (_plot_losses, _plot_grad_norm, _plot_lr, _plot_update_ratio, _plot_layers, _plot_noise_scale):
        path = plot(df, out, name)
        if path is not None:
            paths.append(path)
    return paths


def plot_run(run_dir: str | os.PathLike) -> list[Path]:
    """Plot a run's step table into its ``telemetry/`` folder (``run_dir`` is the save dir or that folder).

    Writes ``losses.png``, ``grad_norm.png``, ``lr_momentum.png`` and, for a run recorded at level ``full``,
    ``update_ratio.png``, ``layer_grad_norm.png`` and (with accumulation windows of k >= 2) ``noise_scale.png``;
    returns the paths written (empty when no step was recorded).
    """
    run_dir = Path(run_dir)
    tdir = telemetry_dir(run_dir)
    name = (run_dir.parent.name if run_dir.name == "telemetry" else run_dir.name) or "run"
    return plot_steps(read_steps(run_dir), tdir, name)


"""PNG plots comparing the configs of a sweep: one line per config (mean over its seeds) and a min-max seed band.

matplotlib's object API on the Agg canvas (``Figure`` + ``savefig``), never ``pyplot``: no global state, safe to
call from the runner process or a test. A config keeps one colour in every plot (:func:`config_colors`), so the
reader matches lines across figures without reading legends. Only the trials the statistics use are drawn
(main stage, done), so the plots show exactly what the tables average.

Per-step curves are noisy and seeds differ step by step, so each seed is smoothed with a trailing mean first, then
seeds are interpolated onto the steps all of them cover and averaged: the band is then the spread between seeds,
not per-step noise. Plots with no data (no update ratio below telemetry level 'full', no step table) are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from yolo_gd.plotting import finish_figure, trailing_mean
from yolo_gd.report.tables import MAP, TrialResult

__all__ = ["PLOTS", "config_colors", "plot_sweep"]

# tab10 with red (C3) last: red reads as "bad" and is best kept for a config that needs it least
_PALETTE = ("C0", "C1", "C2", "C4", "C5", "C6", "C8", "C9", "C7", "C3")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def config_colors(configs: list[str]) -> dict[str, str]:
    """Config -> colour, by position (baseline first), the same in every plot of the report."""
    return {c: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(configs)}


def _window(n: int) -> int:
    """Trailing-mean window: ~5% of the points, 1 to 100 steps (enough to see a trend in a few hundred steps)."""
    return max(1, min(n // 20, 100))


def _align(curves: list[tuple[np.ndarray, np.ndarray]]):
    """Interpolate each ``(x, y)`` onto the x values inside the range every curve covers: ``(x, mean, lo, hi)``.

    None when the curves have no common range. One curve: itself (lo = hi = y).
    """
    curves = [(np.asarray(x, "float64"), np.asarray(y, "float64")) for x, y in curves if len(x)]
    curves = [(x[np.isfinite(y)], y[np.isfinite(y)]) for x, y in curves]
    curves = [(x, y) for x, y in curves if len(x)]
    if not curves:
        return None
    lo_x, hi_x = max(x[0] for x, _ in curves), min(x[-1] for x, _ in curves)
    if lo_x > hi_x:
        return None
    grid = np.unique(np.concatenate([x[(x >= lo_x) & (x <= hi_x)] for x, _ in curves]))
    ys = np.vstack([np.interp(grid, x, y) for x, y in curves])
    return grid, ys.mean(axis=0), ys.min(axis=0), ys.max(axis=0)


def _draw(ax, curves, color: str, label: str, marker: str | None = None, lw: float = 1.8, ms: float = 3.5) -> bool:
    """Mean line and min-max band of ``curves``; False when there is nothing to draw."""
    aligned = _align(curves)
    if aligned is None:
        return False
    x, mean, lo, hi = aligned
    ax.plot(x, mean, color=color, lw=lw, label=label, marker=marker, ms=ms)
    if len(curves) > 1:
        ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)
    return True


def _label(config: str, trials: list[TrialResult], shared_note: bool = False) -> str:
    n = len(trials)
    text = f"{config} ({n} seed{'s' if n != 1 else ''})"
    if shared_note and any(t.shared_device for t in trials):
        text += ", shared device"
    return text


def _step_curves(trials: list[TrialResult], column: Callable[[pd.DataFrame], str | None], log: bool = False):
    """Per trial: ``(step, smoothed value)`` of the column ``column(steps)`` picks (trials without it left out)."""
    out = []
    for t in trials:
        df = t.steps
        col = column(df) if not df.empty and "step" in df else None
        if col is None or col not in df:
            continue
        y = df[col].to_numpy(dtype="float64")
        out.append((df["step"].to_numpy(dtype="float64"), trailing_mean(y, _window(len(y)), log=log)))
    return out


def _first(prefix: str, positive: bool = False):
    """Column picker: the first column named ``prefix...`` (with a positive value, if asked)."""
    def pick(df: pd.DataFrame) -> str | None:
        for c in df.columns:
            if c.startswith(prefix) and (not positive or (pd.to_numeric(df[c], errors="coerce") > 0).any()):
                return c
        return None
    return pick


def _steps_plot(groups, colors, path, title, ylabel, column, log=False, subtitle=None, keep=False):
    """One line per config of a step-table column; ``keep``: return ``(fig, ax)`` unsaved, for more drawing."""
    fig = Figure(figsize=(10, 5), layout="constrained")
    ax = fig.subplots()
    drawn = False
    for config, trials in groups.items():
        drawn |= _draw(ax, _step_curves(trials, column, log), colors[config], _label(config, trials))
    if not drawn:
        return None
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    if keep:
        fig.suptitle(title if not subtitle else f"{title}\n{subtitle}", fontsize=11)
        return fig, ax
    return finish_figure(fig, [ax], path, title, subtitle=subtitle)


def plot_loss(groups, colors, out: Path, target=None):
    return _steps_plot(groups, colors, out / "loss.png", "training loss vs optimizer step", "loss_sum (per image)",
                       lambda df: "loss_sum" if "loss_sum" in df else None,
                       subtitle="line: mean over seeds of a trailing mean (~5% of steps); band: min-max over seeds")


def _clip_values(trials: list[TrialResult]) -> set[float]:
    vals = set()
    for t in trials:
        if not t.steps.empty and "clip" in t.steps:
            vals |= {float(v) for v in t.steps["clip"].dropna().unique()}
    return vals


def plot_grad_norm(groups, colors, out: Path, target=None):
    """Global pre-clip gradient norm; the clip threshold as a dashed line (grey when every config uses the same)."""
    path = out / "grad_norm.png"
    drawn = _steps_plot(groups, colors, path, "gradient norm (pre-clip) vs optimizer step",
                        "global gradient L2 norm (log)", lambda df: "grad_norm" if "grad_norm" in df else None,
                        log=True, subtitle="line: mean over seeds of a trailing geometric mean (~5% of steps); "
                                           "band: min-max over seeds; dashed: clip threshold", keep=True)
    if drawn is None:
        return None
    fig, ax = drawn
    clips = {c: _clip_values(ts) for c, ts in groups.items()}
    every = set().union(*clips.values())
    if len(every) == 1 and all(clips.values()):
        ax.axhline(every.pop(), color="0.35", ls="--", lw=1.2, label="clip threshold (all configs)")
    else:
        for c, vals in clips.items():
            for v in sorted(vals):
                ax.axhline(v, color=colors[c], ls="--", lw=1.2, label=f"clip threshold {c}")
    return finish_figure(fig, [ax], path, None)


def _per_config(groups, colors, curves_of, **draw):
    """A figure with one line (and seed band) per config from ``curves_of(trial)`` -> ``(x, y)`` or None; None when
    no trial of any config gives a curve."""
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.subplots()
    drawn = False
    for config, trials in groups.items():
        curves = [c for t in trials if (c := curves_of(t)) is not None]
        drawn |= _draw(ax, curves, colors[config], _label(config, trials), **draw)
    return (fig, ax) if drawn else None


def plot_lr(groups, colors, out: Path, target=None):
    names = {c for ts in groups.values() for t in ts if not t.steps.empty and (c := _first("lr/")(t.steps))}
    group = next(iter(names)).removeprefix("lr/") if len(names) == 1 else "first group of each run"

    def curve(t):
        col = _first("lr/")(t.steps) if not t.steps.empty else None
        if not col:
            return None
        y = t.steps[col].to_numpy(dtype="float64")
        return t.steps["step"].to_numpy(dtype="float64"), np.where(y > 0, y, np.nan)

    made = _per_config(groups, colors, curve)
    if made is None:
        return None
    fig, ax = made
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate (log)")
    return finish_figure(fig, [ax], out / "lr.png", f"learning rate vs optimizer step ({group})")


def plot_update_ratio(groups, colors, out: Path, target=None):
    return _steps_plot(groups, colors, out / "update_ratio.png", "update / parameter norm ratio vs optimizer step",
                       "||update|| / ||params|| (log)", _first("update_ratio/", positive=True), log=True,
                       subtitle="first parameter group with data; only runs recorded at telemetry level 'full'")


def plot_clip_rate(groups, colors, out: Path, target=None):
    """Configs that never clip (no threshold) would all lie on 0 and hide each other: they are named in the
    subtitle instead of drawn; no plot at all when no config clips. Configs that clip at the same rate (often 100%
    early in training) would hide each other too: each config gets its own marker, and earlier configs a thicker
    line and bigger marker, so coinciding lines show as nested rings."""
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.subplots()
    drawn, unclipped = False, []
    for i, (config, trials) in enumerate(groups.items()):
        curves, clipping = [], False
        for t in trials:
            df = t.steps
            if df.empty or not {"clipped", "epoch"} <= set(df.columns):
                continue
            rate = df.groupby("epoch")["clipped"].mean()
            curves.append((rate.index.to_numpy(dtype="float64") + 1, 100 * rate.to_numpy(dtype="float64")))
            clipping |= "clip" in df and bool(df["clip"].notna().any())
        if curves and not clipping:
            unclipped.append(config)
            continue
        k = min(len(groups) - 1 - i, 3)  # 0 for the last config, drawn on top
        drawn |= _draw(ax, curves, colors[config], _label(config, trials), marker=_MARKERS[i % len(_MARKERS)],
                       lw=1.6 + 1.2 * k, ms=4.5 + 2.5 * k)
    if not drawn:
        return None
    ax.set_xlabel("epoch")
    ax.set_ylabel("steps clipped (%)")
    ax.set_ylim(-3, 103)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    sub = "mean of the per-step 'clipped' flag; line: mean over seeds; band: min-max over seeds"
    if unclipped:
        sub += "\nnot drawn (no clip threshold, never clipped): " + ", ".join(unclipped)
    return finish_figure(fig, [ax], out / "clip_rate.png", "gradient clipping rate per epoch", subtitle=sub)


def plot_noise_scale(groups, colors, out: Path, target=None):
    """Per-epoch gradient noise scale of each config (level 'full', k >= 2 windows); None when no trial has one."""
    from yolo_gd.telemetry.noise_scale import epoch_noise_scale

    def curve(t):
        df = t.steps
        if df.empty or "grad_sq_first" not in df:
            return None
        pts = [(e + 1, epoch_noise_scale(g).value) for e, g in df.groupby("epoch")]
        pts = [(e, v) for e, v in pts if np.isfinite(v) and v > 0]
        if not pts:
            return None
        return np.array([e for e, _ in pts], "float64"), np.array([v for _, v in pts])

    made = _per_config(groups, colors, curve, marker="o")
    if made is None:
        return None
    fig, ax = made
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("simple noise scale (images, log)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return finish_figure(fig, [ax], out / "noise_scale.png", "gradient noise scale per epoch",
                         subtitle="McCandlish et al. 2018 B_simple from first micro-batch vs whole window; "
                                  "line: mean over seeds; band: min-max over seeds")


def plot_map(groups, colors, out: Path, target=None):
    """Val mAP50-95 (and the target's metric, when it is another one) vs epoch and vs cumulative wall time."""
    metrics = [MAP]
    if target and target.get("metric") and target["metric"] != MAP:
        metrics.append(target["metric"])
    fig = Figure(figsize=(12, 4.3 * len(metrics)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(metrics), 2, squeeze=False))
    drawn = False
    for r, metric in enumerate(metrics):
        for config, trials in groups.items():
            rs = [t.results for t in trials if not t.results.empty and metric in t.results and "epoch" in t.results]
            by_epoch = [(d["epoch"].to_numpy("float64"), d[metric].to_numpy("float64")) for d in rs]
            drawn |= _draw(axes[r, 0], by_epoch, colors[config], _label(config, trials), marker="o")
            aligned_t = _align([(d["epoch"].to_numpy("float64"), d["time"].to_numpy("float64"))
                                for d in rs if "time" in d])
            aligned_m = _align(by_epoch)
            if aligned_t is not None and aligned_m is not None:
                ep = np.intersect1d(aligned_t[0], aligned_m[0])
                x = aligned_t[1][np.isin(aligned_t[0], ep)]
                i = np.isin(aligned_m[0], ep)
                axes[r, 1].plot(x, aligned_m[1][i], color=colors[config], lw=1.8, marker="o", ms=3.5,
                                label=_label(config, trials, shared_note=True))
                if len(rs) > 1:
                    axes[r, 1].fill_between(x, aligned_m[2][i], aligned_m[3][i], color=colors[config], alpha=0.18,
                                            lw=0)
        name = metric.removeprefix("metrics/")
        for c, xlabel in ((0, "epoch"), (1, "cumulative time (s, training + validation; mean over seeds)")):
            ax = axes[r, c]
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"val {name}")
            if c == 0:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if target and target.get("metric") == metric:
                ax.axhline(float(target["value"]), color="0.3", ls="--", lw=1, label=f"target {target['value']:g}")
    if not drawn:
        return None
    return finish_figure(fig, list(axes.ravel()), out / "map.png", "validation accuracy",
                         subtitle="line: mean over seeds; band: min-max over seeds")


#: Every plot in report order: file stem -> (function, caption).
PLOTS: dict[str, tuple[Callable, str]] = {
    "map": (plot_map, "Validation mAP vs epoch and vs cumulative time (Ultralytics results.csv)."),
    "loss": (plot_loss, "Training loss (sum of the loss parts, per image) vs optimizer step."),
    "grad_norm": (plot_grad_norm, "Global gradient norm before clipping vs optimizer step (log scale)."),
    "lr": (plot_lr, "Learning rate as each step used it (first parameter group)."),
    "update_ratio": (plot_update_ratio, "Relative step size ||update|| / ||params|| (telemetry level 'full')."),
    "clip_rate": (plot_clip_rate, "Share of optimizer steps whose gradient norm exceeded the clip threshold."),
    "noise_scale": (plot_noise_scale, "Gradient noise scale B_simple per epoch, in images (telemetry 'full', "
                                      "nbs >= 2 x batch); compare with the images per step."),
}


def plot_sweep(trials: list[TrialResult], configs: list[str], out_dir: str | os.PathLike,
               target: dict | None = None) -> dict[str, Path]:
    """Write every plot that has data into ``out_dir``; returns ``{stem: path}`` in :data:`PLOTS` order.

    Uses the trials the statistics use (main stage, done), grouped by config in ``configs`` order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    colors = config_colors(configs)
    groups = {c: [t for t in trials if t.used and t.config == c] for c in configs}
    groups = {c: ts for c, ts in groups.items() if ts}
    paths = {}
    if not groups:
        return paths
    for stem, (plot, _) in PLOTS.items():
        path = plot(groups, colors, out, target)
        if path is not None:
            paths[stem] = path
    return paths

"""What the run plots (:mod:`yolo_gd.telemetry.plots`) and the sweep report's plots (:mod:`yolo_gd.report.plots`)
share: the trailing mean that shows a noisy per-step curve's trend, and how a figure is finished and saved.

matplotlib's object API only (``Figure`` + ``savefig``, never ``pyplot``): no global state. Imports nothing from
yolo_gd ("floor 0"), so any layer may use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["DPI", "finish_figure", "trailing_mean"]

DPI = 110


def trailing_mean(y, window: int, *, log: bool = False) -> np.ndarray:
    """Trailing mean over ``window`` points ignoring NaNs (the first points average what they have).

    With ``log``, the mean of log10 values (a geometric mean) for quantities plotted on a log axis; values that are
    not finite and positive become gaps.
    """
    y = np.asarray(y, dtype="float64")
    if log:
        y = np.where(np.isfinite(y) & (y > 0), y, np.nan)
        return 10 ** pd.Series(np.log10(y)).rolling(window, min_periods=1).mean().to_numpy()
    return pd.Series(y).rolling(window, min_periods=1).mean().to_numpy()


def finish_figure(fig: Figure, axes: Sequence, path: Path, title: str | None = None, *, subtitle: str | None = None,
                  xlabel: str | None = None, two_legend_columns_over: int | None = None) -> Path:
    """Grid and legend on every axis, ``xlabel`` on the last one, the title (and subtitle), then save at :data:`DPI`.

    ``title=None`` keeps a title set already. A legend gets two columns when it has more than
    ``two_legend_columns_over`` entries (None: always one).
    """
    for ax in axes:
        ax.grid(True, which="major", alpha=0.3)
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            wide = two_legend_columns_over is not None and len(handles) > two_legend_columns_over
            ax.legend(fontsize=8, loc="best", ncols=2 if wide else 1)
    if xlabel is not None:
        axes[-1].set_xlabel(xlabel)
    if title is not None:
        fig.suptitle(title if not subtitle else f"{title}\n{subtitle}", fontsize=11)
    fig.savefig(path, dpi=DPI)
    return path

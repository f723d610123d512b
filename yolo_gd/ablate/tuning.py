"""The tuned protocol's pick: each tuning LR's mean final metric on the validation split, and the best LR.

:class:`~yolo_gd.ablate.runner` decides when a config's tuning trials are all finished and queues its main trials
with the LR picked here; :func:`final_metric` is also what the summary table reads.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from yolo_gd.ablate.manifest import Manifest
from yolo_gd.ablate.naming import num_text
from yolo_gd.ablate.spec import Sweep

__all__ = ["final_metric", "pick_lr"]


def final_metric(trial_dir: str | os.PathLike, metric: str) -> float | None:
    """``metric`` in the last row of the trial's ``results.csv`` (None if missing or not finite)."""
    import pandas as pd

    csv = Path(trial_dir) / "results.csv"
    try:
        df = pd.read_csv(csv)
    except (OSError, ValueError):
        return None
    df.columns = [str(c).strip() for c in df.columns]
    if metric not in df.columns or df.empty:
        return None
    v = df[metric].iloc[-1]
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def pick_lr(sweep: Sweep, m: Manifest, config: str) -> tuple[float | None, dict[str, float | None]]:
    """(the LR of ``config``'s grid whose done tuning trials reached the best mean ``sweep.tune_metric``, or None if
    none gave one; ``{LR text: that mean, or None}`` for every LR tried)."""
    tune = [t for t in sweep.tune_trials() if t.tunes == config]
    tried: dict[str, float | None] = {}
    best_lr, best = None, -math.inf
    for lr in sweep.tune_grid(config):
        values = [final_metric(m.trials[t.name].dir, sweep.tune_metric) for t in tune
                  if t.lr == lr and m.trials[t.name].state == "done"]
        values = [v for v in values if v is not None]
        mean = sum(values) / len(values) if values else None
        tried[num_text(lr)] = mean
        if mean is not None and mean > best:
            best_lr, best = lr, mean
    return best_lr, tried

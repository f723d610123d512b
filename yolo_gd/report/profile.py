"""Performance profiles across datasets (AlgoPerf-style) and the per-dataset tables of a sweep with a ``data`` axis.

For each optimizer configuration ``c`` and dataset ``d`` the ratio ``r(c, d)`` compares ``c``'s result with the
best configuration's on ``d``: ``best / value`` for a quality metric (higher is better, e.g. final mAP50-95),
``value / best`` for a time (lower is better). A configuration that failed, did not run, or scored <= 0 on ``d``
has ``r = inf``. Its profile is ``rho_c(tau) = |{d : r(c, d) <= tau}| / |D|``: the fraction of datasets on which
it is within a factor ``tau`` of the best (``rho(1)`` = the fraction it wins). Pure functions of a table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from yolo_gd.ablate.naming import split_config
from yolo_gd.report.document import Table

__all__ = ["DEFAULT_TAUS", "dataset_table", "performance_profile", "profile_blocks"]

DEFAULT_TAUS = (1.0, 1.05, 1.1, 1.25, 1.5, 2.0)


def performance_profile(table: pd.DataFrame, taus: Sequence[float] = DEFAULT_TAUS, *,
                        higher_is_better: bool = True) -> pd.DataFrame:
    """``table``: one row per (config, dataset) with a ``value``. Returns one row per config (first-seen order),
    one column per tau, the fraction of ALL datasets in ``table`` on which that config is within ``tau``."""
    datasets = list(dict.fromkeys(table["dataset"]))
    configs = list(dict.fromkeys(table["config"]))
    value = {(r.config, r.dataset): float(r.value) for r in table.itertuples()}
    ratios = {c: [] for c in configs}
    for d in datasets:
        scores = [value.get((c, d), math.nan) for c in configs]
        good = [v for v in scores if math.isfinite(v) and v > 0]
        best = (max(good) if higher_is_better else min(good)) if good else math.nan
        for c, v in zip(configs, scores):
            ok = math.isfinite(v) and v > 0 and math.isfinite(best)
            ratios[c].append((best / v if higher_is_better else v / best) if ok else math.inf)
    rows = [[sum(r <= tau for r in ratios[c]) / len(datasets) for tau in taus] for c in configs]
    return pd.DataFrame(rows, index=pd.Index(configs, name="config"), columns=list(taus))


def dataset_table(summary: pd.DataFrame, metric: str = "final_map50_95") -> pd.DataFrame:
    """(config, dataset, value) rows from a summary table whose config names carry a dataset (``bccd__sgd``)."""
    rows = []
    for r in summary.to_dict("records"):
        data, config = split_config(str(r["config"]))
        if data is not None:
            rows.append({"config": config, "dataset": data, "value": r.get(f"{metric}_mean")})
    return pd.DataFrame(rows, columns=["config", "dataset", "value"])


def profile_blocks(summary: pd.DataFrame) -> list[tuple]:
    """Report blocks: mean final mAP50-95 per config and dataset, then the profile (empty without a data axis)."""
    table = dataset_table(summary)
    if table.empty:
        return []
    wide = table.pivot(index="config", columns="dataset", values="value").reindex(list(dict.fromkeys(table.config)))
    cell = lambda v: "-" if v is None or not math.isfinite(float(v)) else f"{float(v):.3f}"  # noqa: E731
    per = [[c, *(cell(v) for v in row)] for c, row in zip(wide.index, wide.to_numpy())]
    prof = performance_profile(table)
    pro = [[c, *(f"{v:.2f}" for v in row)] for c, row in zip(prof.index, prof.to_numpy())]
    return [("h2", "Across datasets"),
            ("p", "Mean final mAP50-95 per optimizer config and dataset."),
            ("table", Table(["config", *wide.columns], per)),
            ("p", "Performance profile: the fraction of datasets on which a config's final mAP50-95 is within a "
                  "factor tau of the best config's on that dataset (best / value <= tau; failed = never)."),
            ("table", Table(["config", *(f"tau={t:g}" for t in prof.columns)], pro))]

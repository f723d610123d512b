"""Performance profiles across datasets (Dolan & Moré 2002; AlgoPerf's scoring) for a sweep with a ``data`` axis.

The profile (what AlgoPerf scores): for configuration ``c`` and dataset ``d`` the cost is the time to reach the
target on ``d`` (the median over seeds, a seed that missed counting as infinite); the ratio
``r(c, d) = t(c, d) / min_c' t(c', d)`` compares it with the fastest configuration on ``d``; a configuration that
missed the target (or did not run) has ``r = inf``. ``rho_c(tau) = |{d : r(c, d) <= tau}| / |D|`` is the fraction
of datasets on which ``c`` is within a factor ``tau`` of the fastest, for ``tau`` in ``[1, TAU_MAX]``, and the
integrated score is ``(1 / (TAU_MAX - 1)) * integral_1^TAU_MAX rho_c(tau) dtau`` (AlgoPerf: ``TAU_MAX = 4``; 1 =
fastest everywhere, 0 = never within 4x of the fastest).

A second view, named "final-mAP ratio profile" in the report (not AlgoPerf's): the same fractions with
``r = best / value`` of the mean final mAP50-95, for sweeps without a target or whose configs rarely reach it.
Pure functions of a table; nothing here tests or compares across datasets in any other way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from yolo_gd.ablate.naming import split_config
from yolo_gd.report.document import Table

__all__ = ["DEFAULT_TAUS", "TAU_MAX", "dataset_table", "integrated_score", "performance_profile", "profile_blocks",
           "ratio_table", "rho", "seed_time", "time_table"]

#: AlgoPerf integrates the profile up to a factor 4 of the fastest.
TAU_MAX = 4.0
#: Where the report prints rho(tau).
DEFAULT_TAUS = (1.0, 1.25, 1.5, 2.0, 3.0, 4.0)


def ratio_table(table: pd.DataFrame, *, higher_is_better: bool = False) -> pd.DataFrame:
    """``table``: rows (config, dataset, value). Returns the ratios r(config, dataset) (configs and datasets in
    first-seen order): ``value / best`` for a cost (lower is better, ``best`` = the smallest), ``best / value`` for a
    quality. A value that is missing, not finite or <= 0 (a missed target, a failed run) gives ``inf``; so does
    every value on a dataset where nothing has a finite positive value."""
    datasets = list(dict.fromkeys(table["dataset"]))
    configs = list(dict.fromkeys(table["config"]))
    value = {(r.config, r.dataset): _positive(r.value) for r in table.itertuples()}
    out = pd.DataFrame(math.inf, index=pd.Index(configs, name="config"), columns=datasets, dtype="float64")
    for d in datasets:
        good = [v for c in configs if (v := value.get((c, d))) is not None]
        if not good:
            continue
        best = max(good) if higher_is_better else min(good)
        for c in configs:
            v = value.get((c, d))
            if v is not None:
                out.loc[c, d] = best / v if higher_is_better else v / best
    return out


def _positive(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def rho(ratios: Sequence[float], tau: float) -> float:
    """The fraction of datasets whose ratio is <= ``tau``."""
    return sum(r <= tau for r in ratios) / len(ratios) if len(ratios) else 0.0


def integrated_score(ratios: Sequence[float], tau_max: float = TAU_MAX) -> float:
    """``(1 / (tau_max - 1)) * integral_1^tau_max rho(tau) dtau``, exactly: rho is a step function, so a dataset with
    ratio ``r <= tau_max`` adds ``tau_max - r`` (``r >= 1`` by construction), one with ``r > tau_max`` nothing."""
    if not len(ratios):
        return 0.0
    area = sum(tau_max - max(r, 1.0) for r in ratios if r <= tau_max)
    return area / (len(ratios) * (tau_max - 1.0))


def performance_profile(table: pd.DataFrame, taus: Sequence[float] = DEFAULT_TAUS, *,
                        higher_is_better: bool = True) -> pd.DataFrame:
    """One row per config (first-seen order), one column per tau: rho(tau) over ALL datasets in ``table``."""
    r = ratio_table(table, higher_is_better=higher_is_better)
    rows = [[rho(r.loc[c].tolist(), tau) for tau in taus] for c in r.index]
    return pd.DataFrame(rows, index=r.index, columns=list(taus))


def seed_time(times: Iterable) -> float:
    """A config's time to target on one dataset: the median over its seeds, a seed that missed (None, NaN) counting
    as infinite; inf without seeds. With 2 seeds one miss makes it inf: it reached the target only sometimes."""
    x = [(_positive(t) or math.inf) for t in times]
    return float(np.median(x)) if x else math.inf


def time_table(trials_df: pd.DataFrame, configs: Sequence[str]) -> pd.DataFrame:
    """(config, dataset, value = :func:`seed_time` of the finished main trials' time to target) for every config
    whose name carries a dataset (``bccd__sgd``); a config without a finished trial gets inf."""
    done = trials_df[(trials_df["stage"] == "main") & (trials_df["state"] == "done")]
    rows = []
    for name in configs:
        data, config = split_config(str(name))
        if data is not None:
            rows.append({"config": config, "dataset": data,
                         "value": seed_time(done.loc[done["config"] == name, "time_to_target"].tolist())})
    return pd.DataFrame(rows, columns=["config", "dataset", "value"])


def dataset_table(summary: pd.DataFrame, metric: str = "final_map50_95") -> pd.DataFrame:
    """(config, dataset, value) rows from a summary table whose config names carry a dataset (``bccd__sgd``)."""
    rows = []
    for r in summary.to_dict("records"):
        data, config = split_config(str(r["config"]))
        if data is not None:
            rows.append({"config": config, "dataset": data, "value": r.get(f"{metric}_mean")})
    return pd.DataFrame(rows, columns=["config", "dataset", "value"])


def _cell(v) -> str:
    return "-" if v is None or not math.isfinite(float(v)) else f"{float(v):.3g}"


def _wide(table: pd.DataFrame, name: str) -> tuple:
    wide = table.pivot(index="config", columns="dataset", values="value").reindex(list(dict.fromkeys(table.config)))
    wide = wide[list(dict.fromkeys(table.dataset))]
    return ("table", Table([name, *wide.columns], [[c, *(_cell(v) for v in row)] for c, row in
                                                   zip(wide.index, wide.to_numpy())]))


def _profile_table(table: pd.DataFrame, higher_is_better: bool) -> tuple:
    r = ratio_table(table, higher_is_better=higher_is_better)
    rows = [[c, *(f"{rho(r.loc[c].tolist(), t):.2f}" for t in DEFAULT_TAUS),
             f"{integrated_score(r.loc[c].tolist()):.3f}"] for c in r.index]
    return ("table", Table(["config", *(f"rho({t:g})" for t in DEFAULT_TAUS), "score"], rows))


def profile_blocks(summary: pd.DataFrame, trials_df: pd.DataFrame | None = None, target: dict | None = None
                   ) -> list[tuple]:
    """Report blocks (empty without a data axis): with a target, time to target per config and dataset and the
    performance profile on it; then mean final mAP50-95 per config and dataset and its ratio profile."""
    quality = dataset_table(summary)
    if quality.empty:
        return []
    blocks: list[tuple] = [("h2", "Across datasets")]
    if target and trials_df is not None:
        times = time_table(trials_df, summary["config"].tolist())
        blocks += [("p", f"Time to target (`{target['metric']}` ≥ {target['value']:g}; s, median over seeds, a seed "
                         f"that missed counts as never) per optimizer config and dataset."),
                   _wide(times, "config"),
                   ("p", "Performance profile (Dolan-Moré; AlgoPerf's scoring): r = time to target / the fastest "
                         "config's on that dataset (a miss is infinite); rho(tau) = the fraction of datasets with r ≤ "
                         f"tau; score = the integral of rho over tau in [1, {TAU_MAX:g}] / {TAU_MAX - 1:g} (1: fastest "
                         "everywhere, 0: never within 4x). Times compare only between trials that ran alone or side "
                         "by side with an equal share (see Speed and cost)."),
                   _profile_table(times, higher_is_better=False)]
    else:
        blocks.append(("p", "No target set: no time-to-target performance profile (add `target:` to the spec)."))
    blocks += [("p", "Mean final mAP50-95 per optimizer config and dataset."), _wide(quality, "config"),
               ("p", "Final-mAP ratio profile (a second view, not AlgoPerf's): the same fractions with r = best "
                     "mean final mAP50-95 on the dataset / the config's (failed = never)."),
               _profile_table(quality, higher_is_better=True)]
    return blocks

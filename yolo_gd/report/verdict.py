"""One plain sentence per dataset: is the ranking of the two leading configs resolved at this budget?

The leader and the runner-up by mean final mAP50-95 over their finished main-stage trials; resolved when Welch's
test between them gives p < ``ALPHA`` (two-sided). With one seed on either side there is no test, so it is never
resolved; a difference of means without a test is not evidence (the default compare once gave SGD mAP50 0.091 on
one machine and 0.398 on another with the same seed). When the runner-up ended below :data:`EARLY_RATIO` of the
leader's mAP50-95, the sentence adds that at a short budget such a gap can be how fast each optimizer starts rather
than where each ends (the default compare's SGD: mAP50 0.24 after 16 epochs, bench/results/compare_stability_cpu).
Pure: tables in, sentences out.
"""

from __future__ import annotations

import pandas as pd

from yolo_gd.report.cells import p_text
from yolo_gd.report.stats import finite, welch

__all__ = ["ALPHA", "ranking_verdicts"]

#: The significance level of "resolved".
ALPHA = 0.05
#: A runner-up below this fraction of the leader's mean final mAP50-95 gets the short-budget caveat.
EARLY_RATIO = 0.5


def _values(tdf: pd.DataFrame, config: str) -> list[float]:
    rows = tdf[(tdf["config"] == config) & (tdf["stage"] == "main") & (tdf["state"] == "done")]
    return finite(rows["final_map50_95"])


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _sentence(lead: str, a: list[float], runner: str, b: list[float]) -> str:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    gap = f"`{lead}` leads `{runner}` in final mAP50-95, {ma:.3f} vs {mb:.3f}"
    test = welch(a, b)
    if test is None:
        why = ("no spread between seeds to test against" if len(a) > 1 and len(b) > 1
               else f"with {_seeds(min(len(a), len(b)))} there is no test")
        return f"**Not resolved at this budget**: {gap}, but {why}: run at least 2 seeds each (seeds: [0, 1, 2])."
    p = test[1]
    n = f"{_seeds(len(a))} vs {_seeds(len(b))}"
    if p < ALPHA:
        return f"**Resolved at this budget**: {gap} (Welch p = {p_text(p)}, {n})."
    return (f"**Not resolved at this budget**: {gap}, but Welch p = {p_text(p)} ({n}) is not below {ALPHA}: with "
            f"this spread between seeds the test cannot tell the gap from chance; more seeds would tell.")


def _early(runner: str, a: list[float], b: list[float]) -> str:
    """The short-budget caveat (see the module docstring) for leader values ``a`` and runner-up values ``b``, or
    nothing. It reads the final values only: a gap this large is not proof that the runner-up stopped early, so the
    caveat says what the gap can be, and how to find out."""
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    if ma <= 0 or mb >= EARLY_RATIO * ma:
        return ""
    return (f" `{runner}` ended below {EARLY_RATIO:g}x the leader's mAP50-95: at a short budget a gap this large can "
            f"be how fast each starts rather than where each ends; a longer budget would tell.")


def ranking_verdicts(summary: pd.DataFrame, tdf: pd.DataFrame) -> list[str]:
    """One sentence per dataset with at least two configs that finished a trial (the dataset named when there
    are several)."""
    rows = [r for r in summary.to_dict("records") if r.get("n")]
    datasets = list(dict.fromkeys(str(r.get("dataset") or "") for r in rows))
    out = []
    for ds in datasets:
        ranked = sorted((r for r in rows if str(r.get("dataset") or "") == ds),
                        key=lambda r: -float(r.get("final_map50_95_mean") or 0.0))
        if len(ranked) < 2:
            continue
        lead, runner = ranked[0]["config"], ranked[1]["config"]
        a, b = _values(tdf, lead), _values(tdf, runner)  # not empty: both have n > 0 finished trials
        text = _sentence(lead, a, runner, b) + _early(runner, a, b)
        out.append(f"On `{ds}`: {text}" if len(datasets) > 1 and ds else text)
    return out

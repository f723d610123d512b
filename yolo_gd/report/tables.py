"""A sweep directory as data: the manifest, each trial's results.csv and step table, and the two report tables.

Read contract (written by the ablation runner): ``<sweep>/manifest.json`` with ``sweep``, ``target``, ``baseline``,
``tuned`` and ``trials`` (name -> config, seed, state, reason, dir, shared_device, device, started, finished,
stage); each trial ``dir`` is an Ultralytics save dir (``results.csv``, ``telemetry/steps/part-*.parquet``).
Failed or unfinished trials may have no files: everything here tolerates that, so a report is always built.

Only ``stage == "main"`` trials in state ``done`` enter the statistics; the others are listed, not averaged.
Every number a table holds is a float or None (never NaN), so what the report prints is always a number or a
dash.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from yolo_gd.ablate.manifest import read_manifest
from yolo_gd.ablate.naming import baselines_by_dataset, split_config
from yolo_gd.report.stats import finite, summarize, target_hit, welch
from yolo_gd.telemetry.sinks import read_steps

__all__ = [
    "MAP",
    "MAP50",
    "METRICS",
    "SUMMARY_METRICS",
    "TrialResult",
    "read_manifest",
    "read_results",
    "load_trials",
    "config_order",
    "images_per_second",
    "trial_row",
    "trials_table",
    "summary_table",
]

MAP = "metrics/mAP50-95(B)"
MAP50 = "metrics/mAP50(B)"

#: Per-trial numbers: column -> what it means (also the order of trials.csv after the bookkeeping columns).
METRICS: dict[str, str] = {
    "final_map50_95": "mAP50-95 at the last epoch",
    "best_map50_95": "highest mAP50-95 of any epoch",
    "final_map50": "mAP50 at the last epoch",
    "best_map50": "highest mAP50 of any epoch",
    "final_train_loss": "sum of the train/*_loss columns in the last results.csv row",
    "epochs": "epochs done (last results.csv epoch)",
    "steps": "optimizer steps recorded",
    "target_epoch": "first epoch (1-based) reaching the target",
    "steps_to_target": "optimizer steps done by the end of that epoch",
    "time_to_target": "results.csv cumulative time (s, training + validation) at that epoch",
    "wall_time": "runner's elapsed (s, summed over attempts), else finished - started, else results.csv's last time",
    "images_per_s": "training throughput from the step table (validation pauses excluded)",
}

#: Metrics averaged over seeds in the per-config summary.
SUMMARY_METRICS = ("final_map50_95", "best_map50_95", "final_map50", "best_map50", "final_train_loss",
                   "time_to_target", "steps_to_target", "wall_time", "images_per_s")


@dataclass
class TrialResult:
    """What one trial left: its manifest entry plus what its directory holds (empty frames when nothing was written).

    Not :class:`yolo_gd.ablate.spec.Trial`, which is a trial to run (its name, config, seed and train kwargs).
    """

    name: str
    config: str
    seed: int | None
    state: str
    stage: str
    reason: str | None
    dir: Path | None
    shared_device: bool
    device: str | None
    started: float | None
    finished: float | None
    elapsed: float | None = None  # runner's seconds summed over attempts (interruptions excluded)
    lr: float | None = None  # the LR the trial trained with, when the spec or tuning fixed it
    threads: int | None = None  # torch CPU threads it was given when CPU trials ran side by side
    results: pd.DataFrame = field(default_factory=pd.DataFrame)
    steps: pd.DataFrame = field(default_factory=pd.DataFrame)
    args: dict = field(default_factory=dict)

    @property
    def used(self) -> bool:
        """Enters the statistics: a finished trial of the main stage."""
        return self.stage == "main" and self.state == "done"


def _cumulative(time: np.ndarray, restarts: frozenset = frozenset()) -> np.ndarray:
    """Ultralytics restarts results.csv's ``time`` at 0 after a resume: add the time before each restart back.

    A restart is a row listed in ``restarts`` (row indices, from the run record: exact) or, for runs without that
    record, a row whose time falls below the previous one (misses a resume after a short first epoch)."""
    out = np.asarray(time, dtype="float64").copy()
    offset = 0.0
    for i in range(1, len(out)):
        raw_prev, raw = time[i - 1], time[i]
        if i in restarts or (np.isfinite(raw) and np.isfinite(raw_prev) and raw < raw_prev):
            offset = out[i - 1]
        out[i] = raw + offset
    return out


def read_results(run_dir: str | os.PathLike | None) -> pd.DataFrame:
    """A save dir's results.csv: column names stripped (older Ultralytics pads them), one row per epoch (the last
    written wins, e.g. after a resume), ``time`` made cumulative across resumes. Empty when absent or unreadable."""
    if run_dir is None:
        return pd.DataFrame()
    path = Path(run_dir) / "results.csv"
    if not path.is_file():
        return pd.DataFrame()
    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError):
        return pd.DataFrame()
    df.columns = [str(c).strip() for c in df.columns]
    if "epoch" in df:
        df = df[pd.to_numeric(df["epoch"], errors="coerce").notna()]
        df = df.drop_duplicates("epoch", keep="last").sort_values("epoch", kind="stable").reset_index(drop=True)
    if "time" in df and len(df):
        from yolo_gd.inject.record import restart_epochs

        first = set(restart_epochs(path.parent))  # 0-based epochs a resumed loop started at: rows of epoch e + 1
        epochs = pd.to_numeric(df["epoch"], errors="coerce").tolist() if "epoch" in df else []
        restarts = frozenset(i for i, e in enumerate(epochs) if e - 1 in first)
        df["time"] = _cumulative(pd.to_numeric(df["time"], errors="coerce").to_numpy(dtype="float64"), restarts)
    return df


def _read_args(run_dir: Path | None) -> dict:
    path = run_dir / "args.yaml" if run_dir else None
    if not path or not path.is_file():
        return {}
    try:
        import yaml

        with open(path, encoding="utf-8") as f:
            out = yaml.safe_load(f)
        return out if isinstance(out, dict) else {}
    except Exception:  # a half-written args.yaml must not stop the report
        return {}


def _opt_float(v) -> float | None:
    f = finite([v])
    return f[0] if f else None


def load_trials(manifest: dict) -> list[TrialResult]:
    """Every manifest trial with its files read (failed trials: whatever exists, usually nothing)."""
    trials = []
    for name, t in (manifest.get("trials") or {}).items():
        d = Path(t["dir"]) if t.get("dir") else None
        try:
            steps = read_steps(d, latest_only=True) if d is not None and d.is_dir() else pd.DataFrame()
        except Exception:  # a corrupt part: report without telemetry rather than no report
            steps = pd.DataFrame()
        seed = t.get("seed")
        trials.append(TrialResult(
            name=name, config=str(t.get("config", name)), seed=None if seed is None else int(seed),
            state=str(t.get("state") or "pending"), stage=str(t.get("stage") or "main"), reason=t.get("reason"),
            dir=d, shared_device=bool(t.get("shared_device", False)), device=t.get("device"),
            started=_opt_float(t.get("started")), finished=_opt_float(t.get("finished")),
            elapsed=_opt_float(t.get("elapsed")) or None, lr=_opt_float(t.get("lr")), threads=t.get("threads"),
            results=read_results(d), steps=steps, args=_read_args(d),
        ))
    return trials


def config_order(manifest: dict, trials: list[TrialResult]) -> list[str]:
    """Configs of the main stage: the baseline first, then in manifest order."""
    seen = [t.config for t in trials if t.stage == "main"]
    order = list(dict.fromkeys(seen))
    base = manifest.get("baseline")
    if base in order:
        order.remove(base)
        order.insert(0, base)
    return order


def images_per_second(steps: pd.DataFrame) -> float | None:
    """Training throughput: images between consecutive steps of the same epoch over the time between them.

    Pairs that cross an epoch boundary (validation, dataloader restart) or a process restart (the step table's
    ``time`` restarts at 0 on resume) are left out, so this is the speed of the training loop itself.
    """
    if steps is None or steps.empty or not {"images_seen", "time", "epoch"} <= set(steps.columns):
        return None
    df = steps.sort_values("step", kind="stable") if "step" in steps else steps
    img = df["images_seen"].to_numpy(dtype="float64")
    t = df["time"].to_numpy(dtype="float64")
    ep = df["epoch"].to_numpy()
    d_img, d_t = np.diff(img), np.diff(t)
    ok = (ep[1:] == ep[:-1]) & (d_t > 0) & (d_img > 0) & np.isfinite(d_t) & np.isfinite(d_img)
    if not ok.any():
        return None
    return float(d_img[ok].sum() / d_t[ok].sum())


def _col(results: pd.DataFrame, name: str) -> np.ndarray:
    if results.empty or name not in results:
        return np.array([], dtype="float64")
    return pd.to_numeric(results[name], errors="coerce").to_numpy(dtype="float64")


def _last(x: np.ndarray) -> float | None:
    return _opt_float(x[-1]) if len(x) else None


def _best(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.max()) if len(x) else None


def trial_row(trial: TrialResult, target: dict | None) -> dict:
    """The per-trial numbers (see :data:`METRICS`), None where a trial has no data for one."""
    r = trial.results
    m, m50 = _col(r, MAP), _col(r, MAP50)
    losses = [c for c in r.columns if c.startswith("train/") and c.endswith("_loss")] if not r.empty else []
    final_loss = finite([r[losses].iloc[-1].astype("float64").sum(skipna=False)]) if losses and len(r) else []
    hit = target_hit(r, target["metric"], float(target["value"]), trial.steps) if target else None
    if trial.elapsed is not None:
        wall = trial.elapsed
    elif trial.started is not None and trial.finished is not None and trial.finished >= trial.started:
        wall = trial.finished - trial.started
    else:
        wall = _last(_col(r, "time"))
    epochs = _last(_col(r, "epoch"))
    return {
        "trial": trial.name, "config": trial.config, "seed": trial.seed, "lr": trial.lr, "stage": trial.stage,
        "state": trial.state, "reason": trial.reason, "device": trial.device,
        "shared_device": trial.shared_device,
        "final_map50_95": _last(m), "best_map50_95": _best(m), "final_map50": _last(m50), "best_map50": _best(m50),
        "final_train_loss": final_loss[0] if final_loss else None,
        "epochs": int(epochs) if epochs is not None else None,
        "steps": int(trial.steps["step"].max()) + 1 if not trial.steps.empty and "step" in trial.steps else None,
        "target_epoch": hit.epoch if hit else None,
        "steps_to_target": hit.steps if hit else None,
        "time_to_target": hit.time if hit else None,
        "wall_time": wall,
        "images_per_s": images_per_second(trial.steps),
    }


def trials_table(trials: list[TrialResult], target: dict | None) -> pd.DataFrame:
    """One row per trial (failed and tuning trials included), main stage first, then by config and seed.

    Numeric columns are object dtype holding float/int or None, so a writer never meets NaN.
    """
    first = {c: i for i, c in enumerate(dict.fromkeys(t.config for t in trials))}
    ordered = sorted(trials, key=lambda t: (t.stage != "main", first[t.config], t.seed if t.seed is not None else -1,
                                            t.name))
    rows = [trial_row(t, target) for t in ordered]
    cols = ["trial", "config", "seed", "lr", "stage", "state", "reason", "device", "shared_device", *METRICS]
    df = pd.DataFrame(rows, columns=cols).astype(object)
    df = df.where(df.notna(), None)
    return df


def summary_table(trials: list[TrialResult], trials_df: pd.DataFrame, configs: list[str], baseline: str | None,
                  target: dict | None = None, baselines: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per config over its used trials (main stage, done): for each of :data:`SUMMARY_METRICS`
    ``<m>_n``, ``_mean``, ``_std``, ``_ci_low``, ``_ci_high``; Welch's test of final mAP50-95 against the config's
    baseline (``t_vs_baseline``, ``p_vs_baseline``); ``best`` (highest mean final mAP50-95); ``shared_device`` (some
    used trial shared its device: time-to-target and images/s not comparable); ``target_reached`` (trials reaching
    the target, when one is set); ``failed`` (main-stage trials that failed) and ``unfinished``.

    Within one dataset only: ``baselines`` maps each config to the config it is tested against (the manifest's,
    else :func:`~yolo_gd.ablate.naming.baselines_by_dataset` from the names); ``dataset`` and ``baseline_config``
    say which, ``baseline`` marks each dataset's own baseline and ``best`` is one config per dataset.
    """
    used = {t.name for t in trials if t.used}
    main = trials_df[trials_df["stage"] == "main"]
    per = {c: main[(main["config"] == c) & main["trial"].isin(used)] for c in configs}
    derived = baselines_by_dataset(configs, baseline)
    against = {c: (baselines or {}).get(c, derived.get(c)) for c in configs}
    rows = []
    for c in configs:
        d = per[c]
        allc = main[main["config"] == c]
        base = against[c]
        row = {
            "config": c,
            "dataset": split_config(c)[0],
            "baseline_config": base,
            "n": len(d),
            "seeds": " ".join(str(s) for s in sorted(x for x in d["seed"] if x is not None)),
            "baseline": c == base,
            "failed": int((allc["state"] == "failed").sum()),
            "unfinished": int((~allc["state"].isin(["done", "failed"])).sum()),
            "shared_device": bool(d["shared_device"].any()) if len(d) else False,
            "target_reached": int(d["target_epoch"].notna().sum()) if target else None,
        }
        for m in SUMMARY_METRICS:
            s = summarize(d[m].tolist())
            row.update({f"{m}_n": s.n, f"{m}_mean": s.mean, f"{m}_std": s.std, f"{m}_ci_low": s.ci_low,
                        f"{m}_ci_high": s.ci_high})
        base_vals = per[base]["final_map50_95"].tolist() if base in per else []
        test = welch(d["final_map50_95"].tolist(), base_vals) if c != base else None
        row["t_vs_baseline"], row["p_vs_baseline"] = test if test else (None, None)
        row["baseline_n"] = len(per[base]) if base in per else 0
        rows.append(row)
    df = pd.DataFrame(rows).astype(object) if rows else pd.DataFrame(columns=["config", "n", "best"])
    df["best"] = _best_per_group(rows)
    return df.where(df.notna(), None)


def _best_per_group(rows: list[dict]) -> list[bool]:
    """The config with the highest mean final mAP50-95 among those sharing a baseline (one dataset); a tie: the
    first listed."""
    best: dict[str | None, tuple[float, int]] = {}
    for i, r in enumerate(rows):
        m = r["final_map50_95_mean"]
        if m is not None and (r["baseline_config"] not in best or m > best[r["baseline_config"]][0]):
            best[r["baseline_config"]] = (m, i)
    winners = {i for _, i in best.values()}
    return [i in winners for i in range(len(rows))]


def equal_share(trials: list[TrialResult], cpus: int | None) -> str | None:
    """A sentence when every finished main trial ran on the CPU beside the others with the same thread count (the
    runner's equal share of the cores): their times then compare with each other. None otherwise (some trial ran
    alone, on a GPU, or with Ultralytics' own thread count), and the shared-device warning stands."""
    used = [t for t in trials if t.used]
    threads = {t.threads for t in used}
    if len(used) < 2 or not cpus or not all(t.shared_device and t.device == "cpu" for t in used):
        return None
    if len(threads) != 1 or None in threads:
        return None
    n = threads.pop()
    return (f"All {len(used)} trials ran side by side on this {cpus}-core CPU with {n} torch thread"
            f"{'s' if n != 1 else ''} each (an equal share of the cores), so their wall times, times to target and "
            f"images/s compare with each other; not with trials that ran alone, or on another machine.")


"""How far a sweep is, from each trial's own files: epochs done, the last val mAP50, and an ETA from epoch times.

The runner prints, whenever a running trial finishes an epoch (and every ``status_every`` seconds)::

    [0/2 done, 1 running, 0 failed] ETA 2m40s
      sgd-lr0.01-s0  epoch 7/25  mAP50 0.123  1m02s

A running trial's progress is read from its ``results.csv`` (Ultralytics appends one row per finished epoch, after
validation), so no extra process and no message from the trial is needed; the runner reads it only when the file's
modification time changed. The ETA is remaining epochs x seconds per epoch / slots, where seconds per epoch is
the wall time of every trial that has finished at least one epoch over the epochs they finished (a trial's setup
and final evaluation are spread over its epochs, so the estimate is a little pessimistic early on).
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from yolo_gd.ablate.backend import Running
from yolo_gd.ablate.manifest import Manifest
from yolo_gd.ablate.spec import Sweep

__all__ = ["Board", "Progress", "TrialWork", "eta_seconds", "format_duration", "progress_line", "read_progress"]

MAP50 = "metrics/mAP50(B)"


@dataclass(frozen=True)
class Progress:
    """What a trial's ``results.csv`` says: epochs finished and the latest val mAP50 (None before the first)."""

    epochs_done: int = 0
    map50: float | None = None


@dataclass(frozen=True)
class TrialWork:
    """One trial as the ETA sees it. ``epochs`` is its budget (None: a time budget, no epoch count)."""

    state: str  # manifest state: pending, running, done, failed
    epochs: int | None
    epochs_done: int
    seconds: float  # wall time spent so far (all attempts)
    time_budget: float | None = None  # seconds, for a ``budget: {time: h}`` trial


def read_progress(trial_dir: str | os.PathLike) -> Progress:
    """Epochs finished and the latest mAP50 in ``trial_dir/results.csv``; a missing, empty or half-written file
    reads as no progress (the trial is writing it while we read)."""
    path = Path(trial_dir) / "results.csv"
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, skipinitialspace=True))
    except (OSError, csv.Error, UnicodeDecodeError):
        return Progress()
    rows = [r for r in rows if (r.get("epoch") or "").strip()]
    if not rows:
        return Progress()
    try:
        map50 = float(rows[-1].get(MAP50) or "nan")
    except ValueError:
        map50 = float("nan")
    return Progress(epochs_done=len(rows), map50=None if map50 != map50 else map50)


def progress_line(name: str, p: Progress, epochs: int | None, seconds: float) -> str:
    """``  sgd-lr0.01-s0  epoch 7/25  mAP50 0.123  1m02s`` (one running trial)."""
    budget = "?" if epochs is None else str(epochs)
    m50 = "-" if p.map50 is None else f"{p.map50:.3f}"
    return f"  {name}  epoch {p.epochs_done}/{budget}  mAP50 {m50}  {format_duration(seconds)}"


def seconds_per_epoch(work: Sequence[TrialWork]) -> float | None:
    """Wall seconds over epochs finished, pooled over trials that finished at least one epoch (failed ones out)."""
    seen = [w for w in work if w.state in ("done", "running") and w.epochs_done > 0]
    epochs = sum(w.epochs_done for w in seen)
    return sum(w.seconds for w in seen) / epochs if epochs else None


def eta_seconds(work: Sequence[TrialWork], slots: int) -> float | None:
    """Seconds until every pending and running trial is done, or None while no epoch has finished yet (or a
    remaining trial has no epoch budget)."""
    remaining = [w for w in work if w.state in ("pending", "running")]
    if not remaining:
        return 0.0
    per_epoch = seconds_per_epoch(work)
    left = 0.0
    for w in remaining:
        if w.time_budget is not None:
            left += max(w.time_budget - w.seconds, 0.0)
        elif w.epochs is None or per_epoch is None:
            return None
        else:
            left += max(w.epochs - w.epochs_done, 0) * per_epoch
    return left / max(min(slots, len(remaining)), 1)


def format_duration(seconds: float) -> str:
    s = int(round(max(seconds, 0)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Board:
    """The runner's view of progress: reads each trial's ``results.csv`` again only when it changed."""

    def __init__(self, sweep: Sweep):
        self.sweep = sweep
        self._seen: dict[str, tuple[float, Progress]] = {}  # trial dir -> (results.csv mtime, its progress)
        self._shown: dict[str, int] = {}  # trial dir -> epochs done when last checked

    def progress(self, trial_dir: str) -> Progress:
        try:
            mtime = (Path(trial_dir) / "results.csv").stat().st_mtime
        except OSError:
            return Progress()
        cached = self._seen.get(trial_dir)
        if cached is None or cached[0] != mtime:
            cached = self._seen[trial_dir] = (mtime, read_progress(trial_dir))
        return cached[1]

    def advanced(self, m: Manifest, slots: Sequence[Running | None]) -> bool:
        """Did a running trial finish an epoch since the last call?"""
        changed = False
        for r in slots:
            if r is not None:
                d = m.trials[r.name].dir
                n = self.progress(d).epochs_done
                changed |= n != self._shown.get(d, 0)
                self._shown[d] = n
        return changed

    def _epochs(self, stage: str) -> int | None:
        return self.sweep.tune.epochs if stage == "tune" and self.sweep.tune else self.sweep.budget.epochs

    def work(self, m: Manifest, slots: Sequence[Running | None]) -> list[TrialWork]:
        now, running = time.monotonic(), {r.name: r for r in slots if r is not None}
        hours = self.sweep.budget.time
        out = []
        for name, rec in m.trials.items():
            seconds = float(rec.elapsed or 0.0)
            if name in running:
                seconds += now - running[name].start
            done = self.progress(rec.dir).epochs_done if rec.state in ("running", "done") else 0
            out.append(TrialWork(rec.state, self._epochs(rec.stage), done, seconds,
                                 None if hours is None else hours * 3600))
        return out

    def lines(self, m: Manifest, slots: Sequence[Running | None]) -> list[str]:
        """The status line and one line per running trial."""
        c, running = m.counts(), [r for r in slots if r is not None]
        eta = eta_seconds(self.work(m, slots), len(slots))
        head = (f"[{c['done']}/{len(m.trials)} done, {len(running)} running, {c['failed']} failed] "
                f"ETA {'?' if eta is None else format_duration(eta)}")
        now = time.monotonic()
        body = [progress_line(r.name, self.progress(m.trials[r.name].dir), self._epochs(m.trials[r.name].stage),
                              float(m.trials[r.name].elapsed or 0.0) + now - r.start) for r in running]
        return [head, *body]

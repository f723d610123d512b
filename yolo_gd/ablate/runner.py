"""Run a sweep's trials as local processes, on CPU worker slots or GPUs, resumably.

Each trial is ``python -m yolo_gd.ablate.worker <dir>/trial.json`` in its own session (process group), with its
stdout and stderr appended to ``<dir>/trial.log``; on Linux it also gets a parent-death signal (SIGTERM), so trials
die with the runner even when the runner is killed with SIGKILL. On KeyboardInterrupt or SIGTERM the runner
terminates every trial's process group and marks those trials ``pending`` (they resume on the next run).

Rerunning the same command continues the sweep: ``done`` trials are skipped; trials left ``running`` by a runner
that died are resumed from their ``last.pt`` (if such a trial's process is somehow still alive, identified by pid
AND process start time so a reused pid is never touched, its process group is killed first); ``failed`` trials
are retried only with ``retry_failed=True``. A lock file (``<sweep>/.lock``) refuses a second runner on the same
sweep, so no trial ever runs twice at once.

``shared_device`` is recorded for every trial that ran while another trial was running on the same device
(on CPU with ``workers > 1`` that is every overlapping pair): their wall times and images/s are not comparable
with trials that ran alone.

Here: the loop, resuming, the tuned protocol's stages. Starting, checking and stopping trial processes is
:mod:`~yolo_gd.ablate.processes`; device slots, ``shared_device`` and the status line :mod:`~yolo_gd.ablate.slots`;
the tuned LR pick (and :func:`final_metric`) :mod:`~yolo_gd.ablate.tuning`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from yolo_gd.ablate.manifest import Manifest, TrialRecord, manifest_path
from yolo_gd.ablate.naming import num_text
from yolo_gd.ablate.processes import KILL_GRACE, exit_reason, kill_group, log_tail, ours_alive, proc_start, start_trial
from yolo_gd.ablate.slots import Running, attempt_header, device_slots, format_duration, mark_started, status_line
from yolo_gd.ablate.spec import Sweep, Trial, load_spec
from yolo_gd.ablate.tuning import final_metric, pick_lr
from yolo_gd.errors import UserError, unknown_name

__all__ = ["BACKENDS", "LOG_NAME", "SweepInterrupted", "final_metric", "format_duration", "run_sweep"]

LOG_NAME = "trial.log"
TRIAL_JSON = "trial.json"
BACKENDS = ("local", "ray")


class SweepInterrupted(KeyboardInterrupt):
    """The runner got SIGTERM: trials were stopped and marked pending (rerun to resume)."""


# ------------------------------------------------------------------------------------------------ public entry


def run_sweep(spec_path: str | os.PathLike, *, devices: str | int | list = "cpu", workers: int = 1,
              per_device: int = 1, out_root: str | os.PathLike | None = None,
              progress: Callable[[str], Any] | None = print, retry_failed: bool = False, backend: str = "local",
              status_every: float = 30.0, poll_interval: float = 0.5, address: str | None = None) -> Path:
    """Run (or continue) the sweep described by ``spec_path``; returns the sweep folder ``<out_root>/<sweep>``.

    Args:
        devices: ``'cpu'`` (with ``workers`` parallel trials), ``'mps'``, or GPU ids ``'0,1,2,3'`` (with
            ``per_device`` trials per GPU); each trial gets ``device=<id>``.
        workers: parallel trials on CPU.
        per_device: parallel trials per GPU.
        out_root: where sweeps live; default ``runs/ablate`` under the current directory (made absolute).
        progress: called with one line per event and a periodic status line (None: silent).
        retry_failed: also rerun trials that failed in an earlier run (they resume from their ``last.pt``).
        backend: ``'local'``, or ``'ray'``: each trial a Ray task (see :mod:`~yolo_gd.ablate.ray_backend`).
        address: with ``backend='ray'``: ``'local'`` (default unless ``RAY_ADDRESS`` is set), ``'auto'`` or a
            cluster address.
        status_every: seconds between status lines.

    A trial that fails is marked ``failed`` with a reason and the sweep goes on; this returns normally whatever
    the trials did (the caller reads the manifest: see :func:`yolo_gd.ablate.commands.exit_code`). Problems the
    user can fix before anything runs (spec, devices, dataset, a sweep already running) raise :class:`UserError`.
    """
    if backend not in BACKENDS:
        raise unknown_name("backend", backend, BACKENDS)
    if address is not None and backend != "ray":
        raise UserError("address= is for backend=ray (a Ray cluster's address, or 'local')")
    sweep = load_spec(spec_path)
    if backend == "ray":
        from yolo_gd.ablate.ray_backend import ray_plan

        plan = ray_plan(devices, workers, per_device, address)
    else:
        slots = device_slots(devices, workers, per_device)
    root = Path(out_root if out_root is not None else Path("runs") / "ablate").expanduser().resolve()
    sweep_dir = root / sweep.name
    sweep_dir.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda line: None)
    with _sweep_lock(sweep_dir), _sigterm_as_interrupt():
        if backend == "ray":
            plan.run(sweep, Path(spec_path), sweep_dir, say, retry_failed, status_every, poll_interval)
            return sweep_dir
        runner = _Runner(sweep, Path(spec_path), sweep_dir, slots, say, retry_failed, status_every, poll_interval)
        runner.run()
    return sweep_dir


# ------------------------------------------------------------------------------------------------ helpers


def fingerprint(kwargs: dict) -> str:
    return hashlib.sha1(json.dumps(kwargs, sort_keys=True, default=str).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _sweep_lock(sweep_dir: Path):
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    f = open(sweep_dir / ".lock", "w")  # noqa: SIM115
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserError(f"sweep {sweep_dir} is already being run by another process: wait for it, or stop it "
                            f"(its trials would otherwise run twice)") from None
        f.write(str(os.getpid()))
        f.flush()
        yield
    finally:
        f.close()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SweepInterrupted(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


# ------------------------------------------------------------------------------------------------ the runner


class _Runner:
    def __init__(self, sweep: Sweep, spec_path: Path, sweep_dir: Path, slots: list[str], say, retry_failed: bool,
                 status_every: float, poll_interval: float):
        self.sweep, self.spec_path, self.sweep_dir = sweep, spec_path, sweep_dir
        self.slots: list[Running | None] = [None] * len(slots)
        self.slot_devices = slots
        self.say, self.retry_failed = say, retry_failed
        self.status_every, self.poll_interval = status_every, poll_interval
        self.cwd = os.getcwd()
        self.data: dict[str, str] = {}
        self.trials: dict[str, Trial] = {}  # runnable trials by name (main trials of a tuned sweep once picked)
        self.queue: list[str] = []
        self.launched: set[str] = set()
        self.m = self._open_manifest()

    # -------------------------------------------------------------------------------- manifest

    def _open_manifest(self) -> Manifest:
        path = manifest_path(self.sweep_dir)
        s = self.sweep
        if path.exists():
            m = Manifest.load(path)
        else:
            m = Manifest(path=path, sweep=s.name)
        m.spec = str(self.spec_path.resolve())
        m.spec_copy = s.text
        m.protocol = s.protocol
        m.target = {"metric": s.target.metric, "value": s.target.value} if s.target else None
        m.baseline = s.baseline
        if s.protocol == "tuned" and m.tuned is None:
            m.tuned = {}
        if s.protocol != "tuned":
            m.tuned = None
        self._sync(m)
        m.save()
        return m

    def _expected(self, m: Manifest) -> list[Trial]:
        picked = {c: v["picked"] for c, v in (m.tuned or {}).items() if v.get("picked") is not None}
        return self.sweep.tune_trials() + self.sweep.main_trials(picked)

    def _sync(self, m: Manifest) -> None:
        """Bring the manifest's trial list in line with the spec; a trial that already ran may not change."""
        expected = self._expected(m)
        names = {t.name for t in expected}
        changed = []
        for t in expected:
            key = fingerprint(t.kwargs) if t.kwargs else None
            rec = m.trials.get(t.name)
            if rec is None:
                rec = m.trials[t.name] = TrialRecord(config=t.config, seed=t.seed,
                                                     dir=str(self.sweep_dir / t.name), stage=t.stage)
            elif rec.key and key and rec.key != key and rec.attempts > 0:
                changed.append(t.name)
                continue
            rec.config, rec.seed, rec.stage, rec.tunes, rec.lr = t.config, t.seed, t.stage, t.tunes, t.lr
            rec.dir = str(self.sweep_dir / t.name)
            rec.key = key
            if t.kwargs:
                self.trials[t.name] = t
        gone = [n for n, rec in m.trials.items() if n not in names and rec.attempts > 0]
        if changed or gone:
            what = []
            if changed:
                what.append(f"changed: {', '.join(changed[:5])}")
            if gone:
                what.append(f"no longer in the spec: {', '.join(gone[:5])}")
            raise UserError(f"sweep '{self.sweep.name}' in {self.sweep_dir} was started from a different spec and "
                            f"trials that already ran would change ({'; '.join(what)}): give the sweep another "
                            f"name (name: ...), or delete {self.sweep_dir} to start over")
        for n in [n for n in m.trials if n not in names]:
            del m.trials[n]
        # keep the spec's order
        order = [t.name for t in expected]
        m.trials = {n: m.trials[n] for n in order}

    # -------------------------------------------------------------------------------- main loop

    def run(self) -> None:
        m = self.m
        self._recover_stale()
        for t in self._expected(m):
            self._maybe_queue(t.name)
        self._resolve_data()
        if self.sweep.protocol == "tuned":
            for c in self.sweep.configs:
                if c.name not in m.tuned:
                    self._maybe_pick(c.name)
        total = len(m.trials)
        skipped = m.count("done")
        self.say(f"[ablate] sweep {self.sweep.name}: {total} trials ({skipped} done already, {len(self.queue)} to "
                 f"run) on {len(self.slots)} slot(s) [{', '.join(self.slot_devices)}] -> {self.sweep_dir}")
        if m.count("failed") and not self.retry_failed:
            self.say(f"[ablate] {m.count('failed')} failed trial(s) stay failed: rerun with retry_failed=True to "
                     f"retry them")
        last_status = time.monotonic()
        try:
            while self.queue or any(self.slots):
                self._fill_slots()
                time.sleep(self.poll_interval if any(self.slots) else 0)
                self._reap()
                if time.monotonic() - last_status >= self.status_every:
                    self.say(status_line(self.m, self.sweep, self.slots))
                    last_status = time.monotonic()
        except BaseException as e:
            self._stop_all(f"interrupted ({type(e).__name__}): rerun the same command to resume")
            raise
        self.say(status_line(self.m, self.sweep, self.slots))

    def _maybe_queue(self, name: str) -> None:
        rec = self.m.trials[name]
        if name not in self.trials or name in self.launched or name in self.queue:
            return
        if rec.state == "done" or (rec.state == "failed" and not self.retry_failed):
            return
        self.queue.append(name)

    def _recover_stale(self) -> None:
        """Trials left ``running`` by a runner that died: kill the process if it is still ours, then requeue."""
        for name, rec in self.m.trials.items():
            if rec.state != "running":
                continue
            if ours_alive(rec.pid, rec.pid_started):
                self.say(f"[ablate] {name}: stale trial process {rec.pid} from an earlier runner: stopping it")
                kill_group(rec.pid)
            rec.state, rec.pid, rec.pid_started = "pending", None, None
            rec.reason = "interrupted (the runner stopped): resumes from its last.pt"
        self.m.save()

    def _resolve_data(self) -> None:
        """Resolve each dataset once, here, so parallel trials never race to generate 'shapes'."""
        from yolo_gd.datasets.check import check_dataset, resolve_data

        for name in self.queue:
            data = self.trials[name].kwargs.get("data")
            if data is not None and data not in self.data:
                path = resolve_data(data)
                check_dataset(path)
                self.data[data] = str(path)

    def _fill_slots(self) -> None:
        for i, running in enumerate(self.slots):
            if running is None and self.queue:
                self._launch(self.queue.pop(0), i)

    def _launch(self, name: str, slot: int) -> None:
        t, rec, device = self.trials[name], self.m.trials[name], self.slot_devices[slot]
        trial_dir = Path(rec.dir)
        trial_dir.mkdir(parents=True, exist_ok=True)
        kwargs = dict(t.kwargs)
        if kwargs.get("data") in self.data:
            kwargs["data"] = self.data[kwargs["data"]]
        kwargs.update(project=str(self.sweep_dir), name=name, exist_ok=True, device=device)
        job = trial_dir / TRIAL_JSON
        job.write_text(json.dumps({"name": name, "dir": str(trial_dir), "sweep": self.sweep.name,
                                   "config": t.config, "seed": t.seed, "stage": t.stage, "kwargs": kwargs},
                                  indent=1, default=str), encoding="utf-8")
        log = open(trial_dir / LOG_NAME, "ab")  # noqa: SIM115  (closed when the trial ends)
        offset = log.tell()
        now = time.time()
        log.write(attempt_header(name, rec.attempts + 1, device, now))
        log.flush()
        proc = start_trial(job, log, self.cwd)
        self.launched.add(name)
        others = [r for r in self.slots if r is not None and r.device == device]
        self.slots[slot] = Running(name, proc, log, offset, time.monotonic(), device)
        mark_started(self.m, name, others, now=now, device=device, kwargs=kwargs, pid=proc.pid,
                     pid_started=proc_start(proc.pid))
        what = "started" if rec.attempts == 1 else f"restarted (attempt {rec.attempts})"
        self.say(f"[ablate] {name}: {what} on {device} (pid {proc.pid})")

    def _reap(self) -> None:
        for i, r in enumerate(self.slots):
            if r is None:
                continue
            rc = r.proc.poll()
            if rc is None:
                continue
            self.slots[i] = None
            r.log.close()
            self._finish(r, rc)

    def _finish(self, r: Running, rc: int) -> None:
        rec = self.m.trials[r.name]
        took = time.monotonic() - r.start
        rec.elapsed = float(rec.elapsed or 0.0) + took
        rec.pid = rec.pid_started = None
        rec.finished = time.time()
        if rc == 0:
            rec.state, rec.reason = "done", None
            self.m.save()
            self.say(f"[ablate] {r.name}: done in {format_duration(took)}")
        else:
            rec.state = "failed"
            how = exit_reason(rc)
            tail = log_tail(Path(rec.dir) / LOG_NAME, r.log_offset)
            rec.reason = f"{how}; last lines of {LOG_NAME}:\n{tail}" if tail else how
            self.m.save()
            last = tail.splitlines()[-1] if tail else ""
            self.say(f"[ablate] {r.name}: FAILED ({how}) after {format_duration(took)}: {last}")
        if rec.stage == "tune" and rec.tunes:
            self._maybe_pick(rec.tunes)

    def _stop_all(self, reason: str) -> None:
        for i, r in enumerate(self.slots):
            if r is None:
                continue
            kill_group(r.proc.pid)
            with contextlib.suppress(Exception):
                r.proc.wait(timeout=KILL_GRACE)
            r.log.close()
            rec = self.m.trials[r.name]
            rec.elapsed = float(rec.elapsed or 0.0) + (time.monotonic() - r.start)
            rec.state, rec.reason, rec.pid, rec.pid_started = "pending", reason, None, None
            self.slots[i] = None
        with contextlib.suppress(Exception):
            self.m.save()

    # -------------------------------------------------------------------------------- tuned protocol

    def _maybe_pick(self, config: str) -> None:
        """Once every tuning trial of ``config`` has finished, pick its LR and queue its main trials."""
        m, s = self.m, self.sweep
        if config in m.tuned:
            return
        tune = [t for t in s.tune_trials() if t.tunes == config]
        if any(m.trials[t.name].state not in ("done", "failed") or t.name in self.queue for t in tune):
            return
        metric = s.tune_metric
        best_lr, tried = pick_lr(s, m, config)
        mains = [t for t in s.main_trials() if t.config == config]
        if best_lr is None:
            reason = (f"LR tuning of {config} gave no {metric}: every tuning trial failed (see the "
                      f"{config}-tune-* trials)")
            for t in mains:
                rec = m.trials[t.name]
                if rec.state != "done":
                    rec.state, rec.reason, rec.finished = "failed", reason, time.time()
            m.save()
            self.say(f"[ablate] {config}: {reason}")
            return
        m.tuned[config] = {"tried": tried, "picked": float(best_lr), "metric": metric, "split": "val",
                           "seeds": list(s.tune.seeds), "epochs": s.tune.epochs}
        self._sync(m)
        m.save()
        shown = ", ".join(f"{lr}={'failed' if v is None else f'{v:.4f}'}" for lr, v in tried.items())
        self.say(f"[ablate] {config}: picked lr {num_text(best_lr)} on the validation split ({metric}: {shown})")
        for t in s.main_trials({config: best_lr}):
            if t.config == config:
                if t.kwargs.get("data") not in self.data:
                    self._resolve_one(t.kwargs.get("data"))
                self._maybe_queue(t.name)

    def _resolve_one(self, data) -> None:
        from yolo_gd.datasets.check import resolve_data

        if data is not None and data not in self.data:
            self.data[data] = str(resolve_data(data))

"""The sweep's bookkeeping, whatever runs the trials: manifest, queue, resume, the tuned protocol, progress lines.

Rerunning the same command continues the sweep: ``done`` trials are skipped; trials left ``running`` by a runner
that died are resumed from their ``last.pt`` (if such a trial's process is somehow still alive, identified by pid
AND process start time so a reused pid is never touched, its process group is killed first); ``failed`` trials
are retried only with ``retry_failed=True``. A trial that started on a device another running trial uses is
marked ``shared_device`` (and so is the other). Where trials run is the backend's business
(:class:`~yolo_gd.ablate.backend.TrialBackend`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path

from yolo_gd.ablate.backend import LOG_NAME, TRIAL_JSON, Running, TrialBackend
from yolo_gd.ablate.manifest import Manifest, TrialRecord, manifest_path
from yolo_gd.ablate.naming import num_text
from yolo_gd.ablate.processes import exit_reason, kill_group, log_tail, ours_alive
from yolo_gd.ablate.sweep_progress import Board, format_duration
from yolo_gd.ablate.slots import cpu_threads, mark_started
from yolo_gd.ablate.spec import Sweep, Trial
from yolo_gd.ablate.sweep_tracker import trial_axes
from yolo_gd.ablate.tuning import pick_lr
from yolo_gd.errors import UserError

__all__ = ["SweepInterrupted", "SweepRunner", "fingerprint", "sigterm_as_interrupt"]


class SweepInterrupted(KeyboardInterrupt):
    """The runner got SIGTERM: trials were stopped and marked pending (rerun to resume)."""


def fingerprint(kwargs: dict) -> str:
    return hashlib.sha1(json.dumps(kwargs, sort_keys=True, default=str).encode()).hexdigest()[:16]


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM raises :class:`SweepInterrupted` in the main thread while inside (so trials are stopped cleanly)."""
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


class SweepRunner:
    """One run of a sweep: brings the manifest in line with the spec, queues what is left, hands trials to the
    backend as slots free up, records every outcome, and for a tuned sweep picks each config's LR."""

    def __init__(self, sweep: Sweep, spec_path: Path, sweep_dir: Path, backend: TrialBackend, say,
                 retry_failed: bool, status_every: float, poll_interval: float):
        self.sweep, self.spec_path, self.sweep_dir = sweep, spec_path, sweep_dir
        self.backend = backend
        self.slots: list[Running | None] = [None] * len(backend.slots)
        self.say, self.retry_failed = say, retry_failed
        self.status_every, self.poll_interval = status_every, poll_interval
        self.data: dict[str, str] = {}  # the spec's data -> its data.yaml
        self.models: dict[str, str] = {}  # the spec's model -> a local file (checkpoints fetched once, here)
        self.trials: dict[str, Trial] = {}  # runnable trials by name (main trials of a tuned sweep once picked)
        self.queue: list[str] = []
        self.launched: set[str] = set()
        self.m = self._open_manifest()
        self.board = Board(sweep)

    # -------------------------------------------------------------------------------- manifest

    def _open_manifest(self) -> Manifest:
        path = manifest_path(self.sweep_dir)
        s = self.sweep
        if path.exists():
            m = Manifest.load(path)
        else:
            m = Manifest(path=path, sweep=s.name)
        m.spec = str(self.spec_path.resolve())
        m.cpus = os.cpu_count()
        m.spec_copy = s.text
        m.protocol = s.protocol
        m.target = {"metric": s.target.metric, "value": s.target.value} if s.target else None
        m.baseline = s.baseline
        m.baselines = s.baselines
        if s.protocol == "tuned" and m.tuned is None:
            m.tuned = {}
        if s.protocol != "tuned":
            m.tuned = None
        m.lrfind = (m.lrfind or {}) if s.protocol == "lrfind" else None
        self._sync(m)
        m.save()
        return m

    def _expected(self, m: Manifest) -> list[Trial]:
        picked = {c: v["picked"] for c, v in (m.tuned or {}).items() if v.get("picked") is not None}
        picked.update({c: v["lr"] for c, v in (m.lrfind or {}).items() if v.get("lr") is not None})
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

    def _range_test_devices(self) -> list[str | None]:
        """Where ``protocol: lrfind`` runs its tests: each local slot's device ('cpu', a GPU id), side by side; with
        Ray, one test at a time in this process on the first slot's device (None, Ultralytics' choice, for a Ray
        GPU slot, whose id means nothing here)."""
        from yolo_gd.ablate.local_backend import LocalBackend

        if isinstance(self.backend, LocalBackend):
            return [self.backend.place(i).trial_device for i in range(len(self.backend.slots))]
        place = self.backend.place(0)
        return [place.trial_device if place.device == place.trial_device else
                ("cpu" if place.device == "cpu" else None)]

    def run(self) -> None:
        m = self.m
        self._recover_stale()
        if self.sweep.protocol == "lrfind":
            from yolo_gd.ablate.lrfind_stage import run_range_tests

            devices = self._range_test_devices()
            run_range_tests(self.sweep, m, self.sweep_dir, self.say, devices, cpu_threads(devices))
            self._sync(m)
            m.save()
        for t in self._expected(m):
            self._maybe_queue(t.name)
        for name in self.queue:
            self._resolve(self.trials[name].kwargs)
        if self.sweep.protocol == "tuned":
            for c in self.sweep.configs:
                if c.name not in m.tuned:
                    self._maybe_pick(c.name)
        total = len(m.trials)
        skipped = m.count("done")
        self.say(f"[ablate] sweep {self.sweep.name}: {total} trials ({skipped} done already, {len(self.queue)} to "
                 f"run) on {len(self.slots)} slot(s) [{', '.join(self.backend.slots)}] -> {self.sweep_dir}")
        if m.count("failed") and not self.retry_failed:
            self.say(f"[ablate] {m.count('failed')} failed trial(s) stay failed: rerun with retry_failed=True to "
                     f"retry them")
        last_status = time.monotonic()
        try:
            while self.queue or any(self.slots):
                self._fill_slots()
                time.sleep(self.poll_interval if any(self.slots) else 0)
                self._reap()
                # a running trial finished an epoch (its results.csv grew), or it has been a while
                if self.board.advanced(self.m, self.slots) or time.monotonic() - last_status >= self.status_every:
                    self._status()
                    last_status = time.monotonic()
        except BaseException as e:
            self._stop_all(f"interrupted ({type(e).__name__}): rerun the same command to resume")
            raise
        self._status()

    def _status(self) -> None:
        for line in self.board.lines(self.m, self.slots):
            self.say(line)

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

    def _resolve(self, kwargs: dict) -> None:
        """Resolve a trial's dataset and fetch its checkpoint once, here in the runner: parallel trials never race to
        generate 'shapes' or to download the same weights, and trials run offline (``processes.child_env``). A
        download follows the user's own ``YOLO_OFFLINE`` (set: a clear error before any trial starts)."""
        from yolo_gd._offline import fetch_weights
        from yolo_gd.datasets.check import check_dataset, resolve_data

        data, model = kwargs.get("data"), kwargs.get("model")
        if data is not None and data not in self.data:
            path = resolve_data(data)
            check_dataset(path)
            self.data[data] = str(path)
        if model is not None and str(model) not in self.models:
            self.models[str(model)] = fetch_weights(str(model))

    def _fill_slots(self) -> None:
        for i, running in enumerate(self.slots):
            if running is None and self.queue:
                self._launch(self.queue.pop(0), i)

    def _launch(self, name: str, slot: int) -> None:
        t, rec = self.trials[name], self.m.trials[name]
        place = self.backend.place(slot)
        trial_dir = Path(rec.dir)
        trial_dir.mkdir(parents=True, exist_ok=True)
        kwargs = dict(t.kwargs)
        if kwargs.get("data") in self.data:
            kwargs["data"] = self.data[kwargs["data"]]
        if str(kwargs.get("model")) in self.models:
            kwargs["model"] = self.models[str(kwargs["model"])]
        kwargs.update(project=str(self.sweep_dir), name=name, exist_ok=True, device=place.trial_device)
        job = trial_dir / TRIAL_JSON
        job.write_text(json.dumps({"name": name, "dir": str(trial_dir), "sweep": self.sweep.name,
                                   "config": t.config, "seed": t.seed, "stage": t.stage,
                                   "axes": trial_axes(self.sweep, t), "kwargs": kwargs},
                                  indent=1, default=str), encoding="utf-8")
        now = time.time()
        running = self.backend.start(name, job, rec.attempts + 1, place, now)
        self.launched.add(name)
        others = [] if place.exclusive else [r for r in self.slots if r is not None and r.device == place.device]
        self.slots[slot] = running
        mark_started(self.m, name, others, now=now, device=place.device, kwargs=kwargs, pid=running.pid,
                     pid_started=running.pid_started, threads=running.threads)
        self.say(f"[ablate] {name}: {running.started}")

    def _reap(self) -> None:
        running = [r for r in self.slots if r is not None]
        if not running:
            return
        for done in self.backend.finished(running):
            self.slots[next(i for i, r in enumerate(self.slots) if r is done.trial)] = None
            if done.error is not None:
                self._backend_failed(done.trial, done.error)
            else:
                self._finish(done.trial, done.code)

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

    def _backend_failed(self, r: Running, reason: str) -> None:
        """The backend could not run the trial to its end (a Ray node died, a folder not shared ...)."""
        rec = self.m.trials[r.name]
        took = time.monotonic() - r.start
        rec.elapsed = float(rec.elapsed or 0.0) + took
        rec.state, rec.finished, rec.reason = "failed", time.time(), reason
        self.m.save()
        self.say(f"[ablate] {r.name}: FAILED after {format_duration(took)}: {rec.reason}")
        if rec.stage == "tune" and rec.tunes:
            self._maybe_pick(rec.tunes)

    def _stop_all(self, reason: str) -> None:
        running = [r for r in self.slots if r is not None]
        if running:
            self.backend.stop(running)
        for i, r in enumerate(self.slots):
            if r is None:
                continue
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
                self._resolve(t.kwargs)
                self._maybe_queue(t.name)

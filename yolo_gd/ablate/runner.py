"""Run a sweep's trials, on CPU worker slots or GPUs (local processes) or as Ray tasks, resumably: ``run_sweep``.

Each trial is ``python -m yolo_gd.ablate.worker <dir>/trial.json`` in its own session (process group), with its
stdout and stderr appended to ``<dir>/trial.log``; on Linux it also gets a parent-death signal (SIGTERM), so trials
die with the runner even when the runner is killed with SIGKILL. On KeyboardInterrupt or SIGTERM the runner
terminates every trial's process group and marks those trials ``pending`` (they resume on the next run).

Rerunning the same command continues the sweep: ``done`` trials are skipped; trials left ``running`` by a runner
that died are resumed from their ``last.pt`` (if such a trial's process is somehow still alive, identified by pid
AND process start time so a reused pid is never touched, its process group is killed first); ``failed`` trials
are retried only with ``retry_failed=True``. A lock file (``<sweep>/.lock``) refuses a second runner on the same
sweep, so no trial ever runs twice at once.

With MLflow on in Ultralytics' settings the sweep is a parent run in the trials' MLflow experiment and each trial's
run is nested under it (:mod:`~yolo_gd.ablate.sweep_tracker`).

``shared_device`` is recorded for every trial that ran while another trial was running on the same device
(on CPU with ``workers > 1`` that is every overlapping pair): their wall times and images/s are not comparable
with trials that ran alone.

Here: the entry point and the sweep lock. The bookkeeping (manifest, queue, resume, the tuned protocol's stages)
is :class:`~yolo_gd.ablate.sweep_runner.SweepRunner`, which hands trials to a
:class:`~yolo_gd.ablate.backend.TrialBackend`: :class:`~yolo_gd.ablate.local_backend.LocalBackend` or
:class:`~yolo_gd.ablate.ray_backend.RayBackend`. Starting, checking and stopping trial processes is
:mod:`~yolo_gd.ablate.processes`; device slots, ``shared_device`` and the status line :mod:`~yolo_gd.ablate.slots`;
the tuned LR pick (and :func:`final_metric`) :mod:`~yolo_gd.ablate.tuning`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from yolo_gd.ablate.backend import LOG_NAME
from yolo_gd.ablate.local_backend import LocalBackend
from yolo_gd.ablate.sweep_progress import format_duration
from yolo_gd.ablate.slots import device_slots
from yolo_gd.ablate.spec import load_spec
from yolo_gd.ablate.sweep_runner import SweepInterrupted, SweepRunner, sigterm_as_interrupt
from yolo_gd.ablate.sweep_tracker import sweep_parent_run
from yolo_gd.ablate.tuning import final_metric
from yolo_gd.errors import UserError, unknown_name

__all__ = ["BACKENDS", "LOG_NAME", "SweepInterrupted", "final_metric", "format_duration", "run_sweep"]

BACKENDS = ("local", "ray")


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
    with _sweep_lock(sweep_dir), sigterm_as_interrupt(), sweep_parent_run(sweep_dir, say):
        if backend == "ray":
            plan.run(sweep, Path(spec_path), sweep_dir, say, retry_failed, status_every, poll_interval)
            return sweep_dir
        runner = SweepRunner(sweep, Path(spec_path), sweep_dir, LocalBackend(slots), say, retry_failed, status_every,
                             poll_interval)
        runner.run()
    return sweep_dir


# ------------------------------------------------------------------------------------------------ helpers


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

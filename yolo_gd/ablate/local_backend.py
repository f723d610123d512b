"""The local backend (``backend='local'``): each trial a process on this machine, one per device slot.

Each trial is ``python -m yolo_gd.ablate.worker <dir>/trial.json`` in its own session (process group), with its
stdout and stderr appended to ``<dir>/trial.log``; on Linux it also gets a parent-death signal (SIGTERM), so trials
die with the runner even when the runner is killed with SIGKILL (see :mod:`~yolo_gd.ablate.processes`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

from yolo_gd.ablate.backend import LOG_NAME, Finished, Placement, Running
from yolo_gd.ablate.processes import KILL_GRACE, kill_group, proc_start, start_trial
from yolo_gd.ablate.slots import attempt_header, cpu_threads

__all__ = ["LocalBackend"]


class LocalBackend:
    """Trials as local processes; ``slots`` from :func:`~yolo_gd.ablate.slots.device_slots` (``['cpu', 'cpu']``,
    ``['0', '1']`` ...). A trial shares its device with every other trial running on the same one; CPU trials
    running side by side get an equal share of the cores as torch threads."""

    def __init__(self, slots: Sequence[str], cwd: str | None = None):
        self.slots = list(slots)
        self.cwd = cwd if cwd is not None else os.getcwd()
        self.threads = cpu_threads(self.slots)

    def place(self, slot: int) -> Placement:
        return Placement(device=self.slots[slot], trial_device=self.slots[slot])

    def start(self, name: str, job: Path, attempt: int, place: Placement, now: float) -> Running:
        log = open(job.parent / LOG_NAME, "ab")  # noqa: SIM115  (closed when the trial ends)
        offset = log.tell()
        log.write(attempt_header(name, attempt, place.device, now))
        log.flush()
        threads = self.threads if place.device == "cpu" else None
        proc = start_trial(job, log, self.cwd, threads)
        what = "started" if attempt == 1 else f"restarted (attempt {attempt})"
        return Running(name, proc, offset, time.monotonic(), place.device, f"{what} on {place.device} (pid {proc.pid})",
                       pid=proc.pid, pid_started=proc_start(proc.pid), log=log, threads=threads)

    def finished(self, running: Sequence[Running]) -> list[Finished]:
        done = []
        for r in running:
            rc = r.handle.poll()
            if rc is not None:
                r.log.close()
                done.append(Finished(r, code=rc))
        return done

    def stop(self, running: Sequence[Running]) -> None:
        for r in running:
            kill_group(r.handle.pid)
            with contextlib.suppress(Exception):
                r.handle.wait(timeout=KILL_GRACE)
            r.log.close()


"""What the sweep runner asks of a backend: where a trial goes, start it, which ones finished, stop them.

The runner (:class:`~yolo_gd.ablate.sweep_runner.SweepRunner`) keeps the books: the manifest, the queue, resuming,
the tuned protocol, the status line. A :class:`TrialBackend` only runs trials: local processes
(:class:`~yolo_gd.ablate.local_backend.LocalBackend`) or Ray tasks (:class:`~yolo_gd.ablate.ray_backend.RayBackend`).
Both run the same worker, ``python -m yolo_gd.ablate.worker <dir>/trial.json``, with its output appended to
``<dir>/trial.log``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

__all__ = ["LOG_NAME", "TRIAL_JSON", "Finished", "Placement", "Running", "TrialBackend"]

LOG_NAME = "trial.log"
TRIAL_JSON = "trial.json"


@dataclass(frozen=True)
class Placement:
    """Where the trial in a slot runs."""

    device: str  # as recorded in the manifest: 'cpu', a GPU id, or (Ray) 'cpu' / 'gpu'
    trial_device: str  # what the trial's Ultralytics ``device=`` gets
    exclusive: bool = False  # True: the trial has its device to itself, whatever else runs (never shared_device)


@dataclass(eq=False)
class Running:
    """A trial running in a slot."""

    name: str
    handle: Any  # the backend's: a subprocess.Popen, a Ray ObjectRef
    log_offset: int  # where this attempt starts in trial.log (a failure reason quotes the log from here)
    start: float  # time.monotonic() at start
    device: str  # Placement.device
    started: str = "started"  # what the runner's progress line says, e.g. "started on cpu (pid 4242)"
    pid: int | None = None  # a local process: its pid and start time (a rerun kills it only if both match)
    pid_started: float | None = None
    log: IO[bytes] | None = None  # a local process: trial.log, open while it runs
    threads: int | None = None  # torch CPU threads it was given (CPU trials side by side), None: Ultralytics' own


@dataclass(frozen=True)
class Finished:
    """A trial that stopped on its own: its worker's exit code, or why the backend could not run it."""

    trial: Running
    code: int | None = None
    error: str | None = None  # set instead of code: the backend failed (a Ray node died, a folder not shared ...)


class TrialBackend(Protocol):
    """Runs a sweep's trials; ``slots`` has one label per trial that may run at once (for the progress lines)."""

    slots: Sequence[str]

    def place(self, slot: int) -> Placement:
        """Where the trial started in ``slot`` runs (asked before its trial.json is written)."""
        ...

    def start(self, name: str, job: Path, attempt: int, place: Placement, now: float) -> Running:
        """Append the attempt header to trial.log and start the worker on ``job``."""
        ...

    def finished(self, running: Sequence[Running]) -> list[Finished]:
        """The trials among ``running`` that have ended (without waiting)."""
        ...

    def stop(self, running: Sequence[Running]) -> None:
        """Stop ``running`` trials (their whole process groups) and wait a grace period for them."""
        ...

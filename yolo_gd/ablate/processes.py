"""Trial processes: starting one, telling whether it is still ours, stopping its process group, reading its log.

A trial is ``python -m yolo_gd.ablate.worker <dir>/trial.json`` in its own session (process group), with stdout
and stderr going to its log; on Linux it also gets a parent-death signal (SIGTERM), so it dies with the runner
even when the runner is killed with SIGKILL. A recorded trial is only ever killed when its pid AND its process
start time still match (:func:`ours_alive`), so a reused pid is never touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["KILL_GRACE", "child_env", "exit_reason", "kill_group", "log_tail", "ours_alive", "proc_start",
           "start_trial"]

#: Seconds a trial's process group gets to exit after SIGTERM before SIGKILL.
KILL_GRACE = 10.0
#: Lines of a failed trial's log kept in its failure reason.
REASON_LINES = 20
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def start_trial(job: Path, log: IO[bytes], cwd: str, threads: int | None = None) -> subprocess.Popen:
    """Start the worker on trial file ``job`` in its own session, its output appended to ``log``; ``threads``:
    its CPU thread count (``THREADS_ENV``), None for Ultralytics' own."""
    env = child_env()
    if threads is not None:
        env[THREADS_ENV] = str(threads)
    return subprocess.Popen(
        [sys.executable, "-m", "yolo_gd.ablate.worker", str(job)],
        cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=pdeathsig_fn(),
    )


#: The worker's torch CPU thread count when several trials share the CPU (see ``slots.cpu_threads``).
THREADS_ENV = "YOLO_GD_CPU_THREADS"


def child_env() -> dict[str, str]:
    """The runner's environment, offline and unbuffered, with this yolo_gd first on ``PYTHONPATH``."""
    import yolo_gd

    env = dict(os.environ)
    env.pop("PYTEST_CURRENT_TEST", None)  # Ultralytics moves relative runs dirs under pytest
    env["YOLO_OFFLINE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    pkg_root = str(Path(yolo_gd.__file__).resolve().parents[1])  # the child imports the runner's yolo_gd
    env["PYTHONPATH"] = os.pathsep.join([pkg_root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def pdeathsig_fn() -> Callable[[], None] | None:
    """A preexec_fn that asks Linux to SIGTERM the child when the runner dies (prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_pdeathsig():
        prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        if os.getppid() != parent:  # the runner died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return set_pdeathsig


def proc_start(pid: int) -> float | None:
    """The process's start time (None if it is gone or a zombie, or psutil is missing)."""
    try:
        import psutil

        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc.create_time()
    except Exception:  # noqa: BLE001  (gone, no psutil, no access)
        return None


def ours_alive(pid: int | None, started: float | None) -> bool:
    """Whether ``pid`` is still the trial process we started (same pid AND same process start time)."""
    if not pid:
        return False
    now = proc_start(pid)
    if now is None:
        return False
    if started is None:
        return False  # cannot tell a reused pid from ours: never kill a stranger
    return abs(now - started) < 1.0


def kill_group(pid: int, grace: float = KILL_GRACE) -> None:
    """SIGTERM the process group led by ``pid`` (trials lead their own session), SIGKILL after ``grace``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError, OSError):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
            if not _group_alive(pid):
                return
            time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is left in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError, OSError):
        return False
    try:
        import psutil
    except ImportError:
        return True
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.info["pid"]) == pgid:
                return True
        except (ProcessLookupError, PermissionError, OSError):
            continue
    return False


def exit_reason(rc: int) -> str:
    """How a trial that exited with ``rc`` (not 0) ended, in words."""
    how = f"exit code {rc}"
    if rc < 0:
        with contextlib.suppress(ValueError):
            how = f"killed by {signal.Signals(-rc).name}"
    elif rc == 2:
        how = "exit code 2 (a UserError)"
    return how


def log_tail(log: Path, offset: int, n: int = REASON_LINES) -> str:
    """The last ``n`` non-empty lines written to ``log`` after byte ``offset``, without colours or progress bars."""
    try:
        with open(log, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    text = _ANSI.sub("", text)
    lines = []
    for line in text.split("\n"):  # not splitlines(): it also splits at the \r that progress bars redraw with
        line = line.rstrip().rsplit("\r", 1)[-1].rstrip()  # a progress bar's last redraw (a CRLF end stripped first)
        if line:
            lines.append(line)
    return "\n".join(lines[-n:])

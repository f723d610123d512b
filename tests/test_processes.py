"""Tests of yolo_gd.ablate.processes on tiny ``python -c`` processes: env, kills, parent-death signal, logs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


from yolo_gd.ablate.processes import child_env, exit_reason, kill_group, log_tail, ours_alive, proc_start

ROOT = str(Path(__file__).resolve().parents[1])


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while proc_start(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_child_env(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/x")
    monkeypatch.setenv("YOLO_OFFLINE", "0")
    monkeypatch.setenv("KEEP_ME", "1")
    env = child_env()
    assert "PYTEST_CURRENT_TEST" in os.environ and "PYTEST_CURRENT_TEST" not in env
    assert (env["YOLO_OFFLINE"], env["PYTHONUNBUFFERED"], env["KEEP_ME"]) == ("1", "1", "1")
    assert env["PYTHONPATH"] == f"{ROOT}{os.pathsep}/x"
    monkeypatch.delenv("PYTHONPATH")
    assert child_env()["PYTHONPATH"] == ROOT


def test_exit_reason():
    assert exit_reason(-9) == "killed by SIGKILL"
    assert exit_reason(-15) == "killed by SIGTERM"
    assert exit_reason(2) == "exit code 2 (a UserError)"
    assert exit_reason(1) == "exit code 1"
    assert exit_reason(-999) == "exit code -999"


def test_log_tail(tmp_path):
    log = tmp_path / "trial.log"
    log.write_bytes(b"before\n" + b"\x1b[31mred\x1b[0m line\n\n  \nbar 100%\r\nlast  \n")
    assert log_tail(log, 7) == "red line\nbar 100%\nlast"
    assert log_tail(log, 0, n=2) == "bar 100%\nlast"
    assert log_tail(log, 10_000) == ""
    assert log_tail(tmp_path / "missing.log", 0) == ""


def test_log_tail_keeps_a_progress_bar_last_redraw(tmp_path):
    (tmp_path / "trial.log").write_bytes(b"bar 10%\rbar 50%\rbar 100%\nend\n")
    assert log_tail(tmp_path / "trial.log", 0) == "bar 100%\nend"


def test_kill_group_stops_the_whole_group():
    code = ("import subprocess, sys, time; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "print(p.pid, flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    try:
        grandchild = int(proc.stdout.readline())
        kill_group(proc.pid, grace=5.0)
        assert proc.poll() is not None and _gone(grandchild, within=1.0)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    kill_group(proc.pid, grace=0.1)  # a group that is gone: nothing to do, no error


def test_kill_group_sigkills_what_ignores_sigterm():
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
            "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout.readline() == b"ready\n"
        t0 = time.monotonic()
        kill_group(proc.pid, grace=0.5)
        assert 0.5 <= time.monotonic() - t0 < 5.0 and _gone(proc.pid, within=1.0)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_a_trial_dies_with_its_parent():
    code = ("import subprocess, sys; from yolo_gd.ablate.processes import pdeathsig_fn; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL, preexec_fn=pdeathsig_fn()); print(p.pid)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, env=child_env(), check=True, timeout=30)
    assert _gone(int(out.stdout))  # the grandchild holds no pipe of ours: only the signal can end it


def test_a_reused_pid_is_never_taken_for_a_stale_trial():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = proc_start(proc.pid)
        assert started is not None
        assert ours_alive(proc.pid, started)
        assert not ours_alive(proc.pid, started - 100.0)  # same pid, another start time: someone else's process
        assert not ours_alive(proc.pid, None)
    finally:
        proc.kill()
        proc.wait()
    assert not ours_alive(proc.pid, started)

"""Tests of yolo_gd.ablate.local_backend with start_trial replaced by tiny ``python -c`` processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from yolo_gd.ablate import local_backend
from yolo_gd.ablate.backend import Placement
from yolo_gd.ablate.local_backend import LocalBackend

NOW = time.mktime((2024, 1, 2, 3, 4, 5, 0, 0, -1))
HEADER = b"=== yolo_gd ablate: trial t, attempt %d, device %s, 2024-01-02 03:04:05 ===\n"


def _fake_start(monkeypatch, code):
    calls = []

    def start_trial(job, log, cwd, threads=None):
        calls.append((job, cwd, threads))
        return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    monkeypatch.setattr(local_backend, "start_trial", start_trial)
    return calls


def test_slots_places_and_threads(tmp_path):
    b = LocalBackend(["cpu", "0"], cwd=str(tmp_path))
    assert (b.slots, b.cwd, b.threads) == (["cpu", "0"], str(tmp_path), None)
    assert b.place(1) == Placement(device="0", trial_device="0", exclusive=False)
    assert LocalBackend(["cpu"]).cwd == os.getcwd()
    assert LocalBackend(["cpu", "cpu"]).threads == max(1, (os.cpu_count() or 1) // 2)


def test_start_appends_the_header_and_finished_reports_the_exit_code(tmp_path, monkeypatch):
    calls = _fake_start(monkeypatch, "import sys; sys.stdin.read(); print('bye'); sys.exit(3)")
    (tmp_path / "trial.log").write_bytes(b"old\n")
    b = LocalBackend(["cpu", "cpu"], cwd="/some/dir")
    r = b.start("t", tmp_path / "trial.json", 1, b.place(0), NOW)
    try:
        assert calls == [(tmp_path / "trial.json", "/some/dir", b.threads)]
        assert (r.name, r.device, r.log_offset, r.threads, r.pid) == ("t", "cpu", 4, b.threads, r.handle.pid)
        assert r.started == f"started on cpu (pid {r.pid})"
        assert r.pid_started is not None and abs(r.pid_started - time.time()) < 60
        assert b.finished([r]) == []
        r.handle.stdin.close()
        deadline = time.monotonic() + 20
        while not (done := b.finished([r])) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(f.trial, f.code, f.error) for f in done] == [(r, 3, None)]
        assert r.log.closed
        assert (tmp_path / "trial.log").read_bytes() == b"old\n" + HEADER % (1, b"cpu") + b"bye\n"
    finally:
        r.handle.stdin.close()
        r.handle.kill()
        r.handle.wait()


def test_a_gpu_restart_gets_no_thread_count_and_stop_kills_it(tmp_path, monkeypatch):
    calls = _fake_start(monkeypatch, "import time; time.sleep(60)")
    b = LocalBackend(["0", "1"], cwd=str(tmp_path))
    r = b.start("t", tmp_path / "trial.json", 2, b.place(1), NOW)
    try:
        assert calls == [(tmp_path / "trial.json", str(tmp_path), None)]
        assert (r.device, r.threads, r.log_offset) == ("1", None, 0)
        assert r.started == f"restarted (attempt 2) on 1 (pid {r.pid})"
        t0 = time.monotonic()
        b.stop([r])
        assert r.handle.poll() is not None and r.log.closed and time.monotonic() - t0 < 5.0
        assert (tmp_path / "trial.log").read_bytes() == HEADER % (2, b"1")
    finally:
        r.handle.stdin.close()
        r.handle.kill()
        r.handle.wait()

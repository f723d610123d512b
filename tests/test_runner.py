"""The ablation runner: trials as processes, failures isolated, resumable (skip, resume, kill stale), tuned LRs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from yolo_gd.ablate.commands import exit_code, summary
from yolo_gd.ablate.manifest import read_manifest
from yolo_gd.ablate.processes import proc_start
from yolo_gd.ablate.runner import format_duration, run_sweep
from yolo_gd.errors import UserError

REPO = Path(__file__).resolve().parents[1]
TRIAL_KEYS = {"config", "seed", "state", "reason", "dir", "shared_device", "device", "started", "finished", "stage"}
STATUS = re.compile(r"^\[\d+/\d+ done, \d+ running, \d+ failed\] ETA (\?|\d+s|\d+m\d\ds|\d+h\d\dm\d\ds)$")


def _spec(tmp_path: Path, data: Path, name: str, optimizers: list[str], *, epochs: int = 1, extra: str = "") -> Path:
    items = "\n".join(f"    - {o}" for o in optimizers)
    text = (f"name: {name}\n"
            f"base: {{model: yolo11n.yaml, data: '{data}', imgsz: 64, batch: 8, nbs: 8, workers: 0, plots: false, "
            f"amp: false, warmup_epochs: 1}}\n"
            f"axes:\n  optimizer:\n{items}\n"
            f"seeds: [0]\n"
            f"budget: {{epochs: {epochs}}}\n{extra}")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _epochs_in(trial_dir) -> int:
    return len(pd.read_csv(Path(trial_dir) / "results.csv"))


# ------------------------------------------------------------------------------------------------ fast checks


def test_unknown_backend(tmp_path):
    with pytest.raises(UserError, match="unknown backend 'dask'"):
        run_sweep(tmp_path / "x.yaml", backend="dask", out_root=tmp_path)


def test_a_stale_trial_process_is_stopped_before_resuming(tmp_path, tiny_data):
    """A trial left 'running' whose process is still alive (same pid and start time) is killed and requeued; a
    process that merely reuses a recorded pid is left alone."""
    from yolo_gd.ablate.local_backend import LocalBackend
    from yolo_gd.ablate.spec import load_spec
    from yolo_gd.ablate.sweep_runner import SweepRunner

    spec = _spec(tmp_path, tiny_data, "stale", ["sgd"], extra="")
    spec.write_text(spec.read_text().replace("seeds: [0]", "seeds: [0, 1]"))
    sweep_dir = tmp_path / "runs" / "stale"
    sweep_dir.mkdir(parents=True)
    runner = SweepRunner(load_spec(spec), spec, sweep_dir, LocalBackend(["cpu"]), lambda line: None, False, 30.0, 0.1)
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    stale = subprocess.Popen(sleep, start_new_session=True)
    stranger = subprocess.Popen(sleep, start_new_session=True)
    try:
        a, b = runner.m.trials["sgd-s0"], runner.m.trials["sgd-s1"]
        a.state, a.pid, a.pid_started = "running", stale.pid, proc_start(stale.pid)
        b.state, b.pid, b.pid_started = "running", stranger.pid, proc_start(stranger.pid) - 50.0
        runner._recover_stale()
        stale.wait(timeout=15)  # (its return code may be 0: the runner may have reaped it itself)
        assert proc_start(stale.pid) is None
        assert stranger.poll() is None  # not ours: untouched
        for rec in (a, b):
            assert rec.state == "pending" and rec.pid is None and "interrupted" in rec.reason
        assert read_manifest(sweep_dir)["trials"]["sgd-s0"]["state"] == "pending"
    finally:
        for p in (stale, stranger):
            p.kill()
            p.wait()


def test_format_duration():
    assert format_duration(4) == "4s" and format_duration(252) == "4m12s" and format_duration(3725) == "1h02m05s"


def test_a_second_runner_on_the_same_sweep_is_refused(tmp_path, tiny_data):
    from yolo_gd.ablate.runner import _sweep_lock

    spec = _spec(tmp_path, tiny_data, "locked", ["sgd"])
    sweep_dir = tmp_path / "runs" / "locked"
    sweep_dir.mkdir(parents=True)
    code = ("import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('locked', flush=True); time.sleep(30)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(sweep_dir / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError, match="already being run by another process"):
            run_sweep(spec, out_root=tmp_path / "runs", progress=None)
    finally:
        holder.kill()
        holder.wait()
    with _sweep_lock(sweep_dir):
        pass


# ------------------------------------------------------------------------------------------------ real trials


@pytest.mark.slow
def test_two_trials_run_to_done_and_a_rerun_skips_them(tmp_path, tiny_data):
    spec = _spec(tmp_path, tiny_data, "pair", ["{name: sgd, lr: 0.01}", "adamw"])
    lines: list[str] = []
    sweep_dir = run_sweep(spec, workers=2, out_root=tmp_path / "runs", progress=lines.append, status_every=2)
    assert sweep_dir == (tmp_path / "runs" / "pair").resolve()
    m = read_manifest(sweep_dir)
    assert m["sweep"] == "pair" and m["baseline"] == "sgd-lr0.01" and m["target"] is None and m["tuned"] is None
    assert m["spec_copy"] == spec.read_text() and m["spec"] == str(spec.resolve())
    assert list(m["trials"]) == ["sgd-lr0.01-s0", "adamw-s0"]
    from yolo_gd.telemetry.sinks import read_epochs, read_steps

    logs = {}
    for name, t in m["trials"].items():
        assert TRIAL_KEYS <= set(t)
        assert t["state"] == "done", t["reason"]
        assert t["stage"] == "main" and t["seed"] == 0 and t["device"] == "cpu" and t["attempts"] == 1
        assert t["shared_device"] is True  # two CPU workers ran at the same time
        assert t["finished"] > t["started"] > m["created"] - 1
        d = Path(t["dir"])
        assert d == sweep_dir / name and d.is_absolute()
        assert t["kwargs"]["project"] == str(sweep_dir) and t["kwargs"]["name"] == name
        assert _epochs_in(d) == 1
        assert (d / "weights" / "last.pt").is_file()
        assert not read_steps(d).empty and len(read_epochs(d)) == 1
        logs[name] = (d / "trial.log").read_text()
        assert "trial finished" in logs[name]
    assert m["trials"]["sgd-lr0.01-s0"]["kwargs"]["optimizer"] == "sgd"
    assert any(STATUS.match(line) for line in lines), lines
    assert exit_code(sweep_dir) == 0
    assert "adamw-s0" in summary(sweep_dir)

    # rerun: nothing to do, no process started
    again: list[str] = []
    run_sweep(spec, workers=2, out_root=tmp_path / "runs", progress=again.append)
    m2 = read_manifest(sweep_dir)
    assert any("2 done already, 0 to run" in line for line in again), again
    for name, t in m2["trials"].items():
        assert t["attempts"] == 1 and t["state"] == "done"
        assert (Path(t["dir"]) / "trial.log").read_text() == logs[name]

    # a spec that would change trials that already ran is refused
    spec.write_text(spec.read_text().replace("lr: 0.01", "lr: 0.02"))
    with pytest.raises(UserError, match="different spec"):
        run_sweep(spec, out_root=tmp_path / "runs", progress=None)


@pytest.mark.slow
def test_a_failing_trial_is_marked_failed_and_the_other_completes(tmp_path, tiny_data):
    spec = _spec(tmp_path, tiny_data, "mixed", ["{name: sgd, lr: 0.01}", "{name: adamw, model: nope.yaml}"])
    sweep_dir = run_sweep(spec, workers=2, out_root=tmp_path / "runs", progress=None)
    trials = read_manifest(sweep_dir)["trials"]
    assert trials["sgd-lr0.01-s0"]["state"] == "done"
    bad = trials["adamw-modelnope.yaml-s0"]
    assert bad["state"] == "failed" and bad["finished"] is not None
    assert bad["reason"].startswith("exit code") and "nope.yaml" in bad["reason"], bad["reason"]
    assert len(bad["reason"].splitlines()) <= 21
    assert exit_code(sweep_dir) == 0  # not every trial failed

    # failed trials stay failed on a rerun, unless asked to retry
    run_sweep(spec, out_root=tmp_path / "runs", progress=None)
    assert read_manifest(sweep_dir)["trials"]["adamw-modelnope.yaml-s0"]["attempts"] == 1
    run_sweep(spec, out_root=tmp_path / "runs", progress=None, retry_failed=True)
    trials = read_manifest(sweep_dir)["trials"]
    assert trials["adamw-modelnope.yaml-s0"]["attempts"] == 2 and trials["sgd-lr0.01-s0"]["attempts"] == 1

    only_bad = _spec(tmp_path, tiny_data, "allbad", ["{name: sgd, model: nope.yaml}"])
    assert exit_code(run_sweep(only_bad, out_root=tmp_path / "runs", progress=None)) == 1


def _complete(checkpoint: Path) -> bool:
    """Ultralytics writes last.pt in place (not atomically): wait until the file reads back whole."""
    from yolo_gd.ablate.worker import checkpoint_epoch

    return checkpoint_epoch(checkpoint) is not None


@pytest.mark.slow
def test_a_killed_sweep_resumes_its_trial(tmp_path, tiny_data):
    spec = _spec(tmp_path, tiny_data, "resume", ["{name: sgd, lr: 0.01}"], epochs=3)
    root = tmp_path / "runs"
    env = dict(os.environ)
    env.pop("PYTEST_CURRENT_TEST", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    with open(tmp_path / "runner.log", "wb") as log:
        runner = subprocess.Popen([sys.executable, "-m", "yolo_gd.cli", "ablate", str(spec), f"out={root}"], env=env,
                                  cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    trial_dir = root / "resume" / "sgd-lr0.01-s0"
    state = trial_dir / "weights" / "last.pt"  # yolo_gd's state of an epoch is written before it
    deadline = time.monotonic() + 180
    try:
        while not (state.exists() and _complete(state)):
            assert runner.poll() is None, (tmp_path / "runner.log").read_text()
            assert time.monotonic() < deadline, "no epoch finished in time"
            time.sleep(0.05)
        trial_pid = read_manifest(root / "resume")["trials"]["sgd-lr0.01-s0"]["pid"]
        os.killpg(runner.pid, signal.SIGKILL)  # the runner dies without a chance to clean up
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
        runner.wait()
    deadline = time.monotonic() + 30
    while proc_start(trial_pid) is not None:  # the trial dies with the runner (parent-death signal)
        assert time.monotonic() < deadline, "the trial outlived its runner"
        time.sleep(0.1)
    before = read_manifest(root / "resume")["trials"]["sgd-lr0.01-s0"]
    assert before["state"] == "running" and before["attempts"] == 1
    assert _epochs_in(trial_dir) < 3

    lines: list[str] = []
    run_sweep(spec, out_root=root, progress=lines.append)
    after = read_manifest(root / "resume")["trials"]["sgd-lr0.01-s0"]
    assert after["state"] == "done" and after["attempts"] == 2, after["reason"]
    assert after["elapsed"] > 0
    results = pd.read_csv(trial_dir / "results.csv")
    results.columns = [c.strip() for c in results.columns]
    assert results["epoch"].tolist() == [1, 2, 3]
    assert "Resuming" in (trial_dir / "trial.log").read_text()


@pytest.mark.slow
def test_tuned_protocol_picks_an_lr_then_runs_the_main_trial(tmp_path, tiny_data):
    spec = _spec(tmp_path, tiny_data, "tuned", ["sgd"],
                 extra="protocol: tuned\ntune: {lrs: [0.001, 0.01], epochs: 1, seeds: [0]}\n")
    lines: list[str] = []
    sweep_dir = run_sweep(spec, workers=2, out_root=tmp_path / "runs", progress=lines.append)
    m = read_manifest(sweep_dir)
    tuned = m["tuned"]["sgd"]
    assert set(tuned["tried"]) == {"0.001", "0.01"}
    assert all(v is not None for v in tuned["tried"].values())
    assert tuned["picked"] in (0.001, 0.01)
    assert tuned["tried"][f"{tuned['picked']:g}"] == max(tuned["tried"].values())
    assert tuned["metric"] == "metrics/mAP50-95(B)" and tuned["split"] == "val"
    trials = m["trials"]
    assert list(trials) == ["sgd-tune-lr0.001-s0", "sgd-tune-lr0.01-s0", "sgd-s0"]
    for name in ("sgd-tune-lr0.001-s0", "sgd-tune-lr0.01-s0"):
        assert trials[name]["stage"] == "tune" and trials[name]["state"] == "done"
    main = trials["sgd-s0"]
    assert main["stage"] == "main" and main["config"] == "sgd" and main["state"] == "done", main["reason"]
    assert main["kwargs"]["lr"] == tuned["picked"] and main["lr"] == tuned["picked"]
    assert any("picked lr" in line for line in lines), lines

    # resumable across stages: a rerun does nothing and keeps the pick
    run_sweep(spec, out_root=tmp_path / "runs", progress=None)
    m2 = read_manifest(sweep_dir)
    assert m2["tuned"] == m["tuned"] and all(t["attempts"] == 1 for t in m2["trials"].values())

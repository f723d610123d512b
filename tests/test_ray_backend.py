"""The Ray backend: the same sweep, manifest and resume rules, each trial a Ray task on a local Ray instance."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from conftest import require
from yolo_gd.ablate.commands import exit_code, summary
from yolo_gd.ablate.manifest import read_manifest
from yolo_gd.ablate.runner import run_sweep
from yolo_gd.ablate.slots import cpu_threads
from yolo_gd.errors import UserError


def _spec(tmp_path: Path, data: Path, name: str, optimizers: list[str]) -> Path:
    items = "\n".join(f"    - {o}" for o in optimizers)
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\n"
                    f"base: {{model: yolo11n.yaml, data: '{data}', imgsz: 64, batch: 8, nbs: 8, workers: 0, "
                    f"plots: false, amp: false, warmup_epochs: 1}}\n"
                    f"axes:\n  optimizer:\n{items}\n"
                    f"seeds: [0]\n"
                    f"budget: {{epochs: 1}}\n", encoding="utf-8")
    return path


def test_ray_options_are_checked_before_anything_runs(tmp_path, tiny_data, monkeypatch):
    require("ray")
    from yolo_gd.ablate.ray_backend import ray_plan

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    plan = ray_plan("cpu", 3, 1, None)
    assert plan.local and not plan.gpu and plan.local_cpus == 3
    assert ray_plan("0,1", 1, 2, "auto").gpu and ray_plan("gpu", 1, 1, "auto").per_device == 1
    with pytest.raises(UserError, match="devices=cpu"):
        ray_plan("mps", 1, 1, None)
    with pytest.raises(UserError, match="workers= sizes a local Ray instance"):
        ray_plan("cpu", 2, 1, "auto")
    with pytest.raises(UserError, match="workers must be a positive integer"):
        ray_plan("cpu", 0, 1, None)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert ray_plan("cpu", 1, 1, None).address == "10.0.0.1:6379"
    spec = _spec(tmp_path, tiny_data, "opts", ["sgd"])
    from yolo_gd.ablate.ray_backend import RayBackend

    # CPU trials get the local backend's thread share (Ultralytics overrides Ray's OMP_NUM_THREADS otherwise)
    assert RayBackend(None, plan, 3).threads == cpu_threads(["cpu"] * 3) and RayBackend(None, plan, 1).threads is None
    assert RayBackend(None, ray_plan("cpu", 1, 1, "auto"), 8).threads == 1  # a cluster: the task's one CPU
    assert RayBackend(None, ray_plan("gpu", 1, 1, "auto"), 2).threads is None  # GPU: Ultralytics' own
    with pytest.raises(UserError, match="address= is for backend=ray"):
        run_sweep(spec, address="auto", out_root=tmp_path / "runs", progress=None)


@pytest.mark.slow
def test_two_trials_run_as_ray_tasks_and_a_rerun_skips_them(tmp_path, tiny_data, monkeypatch):
    ray = require("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # a new local Ray instance saves ~/.ray/auth_token
    spec = _spec(tmp_path, tiny_data, "raypair", ["{name: sgd, lr: 0.01}", "adamw"])
    lines: list[str] = []
    try:
        sweep_dir = run_sweep(spec, backend="ray", workers=2, out_root=tmp_path / "runs", progress=lines.append,
                              status_every=2)
        assert not ray.is_initialized()  # the private local instance is stopped at the end
        m = read_manifest(sweep_dir)
        assert list(m["trials"]) == ["sgd-lr0.01-s0", "adamw-s0"]
        logs = {}
        for name, t in m["trials"].items():
            assert t["state"] == "done", t["reason"]
            assert t["device"] == "cpu" and t["attempts"] == 1 and t["pid"] is None and t["shared_device"] is True
            d = Path(t["dir"])
            assert d == sweep_dir / name and t["kwargs"]["device"] == "cpu"
            assert len(pd.read_csv(d / "results.csv")) == 1 and (d / "weights" / "last.pt").is_file()
            logs[name] = (d / "trial.log").read_text()
            assert "=== ray task on " in logs[name] and "trial finished" in logs[name]
            share = cpu_threads(["cpu", "cpu"])
            assert t["threads"] == share and f"{share} CPU thread(s) for this trial" in logs[name]
            assert f"worker pid {os.getpid()}" not in logs[name]  # ran in a Ray worker, not in the driver
        assert any("backend ray: local Ray instance, 2 trial(s) at once" in line for line in lines), lines
        assert any("submitted to Ray" in line for line in lines) and any(" done in " in line for line in lines)
        assert exit_code(sweep_dir) == 0 and "adamw-s0" in summary(sweep_dir)

        again: list[str] = []
        run_sweep(spec, backend="ray", workers=2, out_root=tmp_path / "runs", progress=again.append)
        assert any("2 done already, 0 to run" in line for line in again), again
        for name, t in read_manifest(sweep_dir)["trials"].items():
            assert t["attempts"] == 1 and t["state"] == "done"
            assert (Path(t["dir"]) / "trial.log").read_text() == logs[name]
    finally:
        if ray.is_initialized():
            ray.shutdown()

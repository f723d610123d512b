"""Exact resume: an injected run killed with SIGKILL mid-epoch, during validation, between yolo_gd's state and
the host's checkpoint, or inside the write of last.pt (atomic, inject/checkpoints.py), then resumed, ends bit-identical to the uninterrupted run (CPU, deterministic, workers=0):
raw and EMA weights, results.csv training losses, and the kept step-table rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from yolo_gd.telemetry.sinks import read_steps

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("resume_worker.py")
SAME_COLUMNS = ("step", "epoch", "batch", "attempt", "loss_backprop", "grad_norm", "clip_coef", "lr/weight",
                "lr/bias", "momentum/weight")


def _run(*args: str, expect_kill: bool = False, mode: str = "inject") -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(WORKER.parent), os.environ.get("PYTHONPATH", "")]),
           "YOLO_GD_WORKER_MODE": mode}
    proc = subprocess.run([sys.executable, str(WORKER), *args], env=env, capture_output=True, text=True)
    if expect_kill:
        assert proc.returncode == -9, proc.stderr[-3000:]
    else:
        assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def uninterrupted(tiny_data, tmp_path_factory):
    project = tmp_path_factory.mktemp("exact")
    _run(str(tiny_data), str(project), "full", "none")
    return project / "full"


def _losses(run: Path) -> pd.DataFrame:
    df = pd.read_csv(run / "results.csv")
    return df[[c for c in df.columns if c == "epoch" or c.startswith("train/")]]


@pytest.mark.parametrize("kill", ["mid_epoch:3:2", "validation:2", "between:2", "in_write:2"])
def test_a_killed_run_resumes_bit_identical(tiny_data, uninterrupted, tmp_path, kill):
    _run(str(tiny_data), str(tmp_path), "killed", kill, expect_kill=True)
    run = tmp_path / "killed"
    _run(str(tiny_data), str(tmp_path), "killed", "none", str(run / "weights" / "last.pt"))
    a = torch.load(uninterrupted / "final_weights.pt", weights_only=True)
    b = torch.load(run / "final_weights.pt", weights_only=True)
    assert a["updates"] == b["updates"]
    for part in ("model", "ema"):
        diff = [k for k in a[part] if not torch.equal(a[part][k], b[part][k])]
        assert not diff, f"{part}: {len(diff)} tensors differ, first {diff[:3]}"
    pd.testing.assert_frame_equal(_losses(uninterrupted), _losses(run))
    sa, sb = (read_steps(r, latest_only=True) for r in (uninterrupted, run))
    assert sb["step"].tolist() == list(range(len(sa)))
    pd.testing.assert_frame_equal(sa[list(SAME_COLUMNS)], sb[list(SAME_COLUMNS)])


def test_an_observe_only_run_with_exact_resume_resumes_bit_identical(tiny_data, tmp_path):
    """Ultralytics' own SGD (observe-only), killed mid-epoch 2 and resumed with exact_resume=True: fp32 weights,
    optimizer state and random state come back, so the run ends bit-identical to the uninterrupted one."""
    _run(str(tiny_data), str(tmp_path), "full", "none", mode="observe")
    _run(str(tiny_data), str(tmp_path), "killed", "mid_epoch:2:2", expect_kill=True, mode="observe")
    run = tmp_path / "killed"
    _run(str(tiny_data), str(tmp_path), "killed", "none", str(run / "weights" / "last.pt"), mode="observe")
    a = torch.load(tmp_path / "full" / "final_weights.pt", weights_only=True)
    b = torch.load(run / "final_weights.pt", weights_only=True)
    assert a["updates"] == b["updates"]
    for part in ("model", "ema"):
        diff = [k for k in a[part] if not torch.equal(a[part][k], b[part][k])]
        assert not diff, f"{part}: {len(diff)} tensors differ, first {diff[:3]}"
    pd.testing.assert_frame_equal(_losses(tmp_path / "full"), _losses(run))

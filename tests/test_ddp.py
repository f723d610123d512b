"""Injection under Ultralytics' own DDP training, 2 CPU ranks over gloo (see tests/ddp_cpu.py for the harness).

Both ranks must resolve the same hyperparameters and end with identical parameters (not buffers: BatchNorm
statistics are per rank by design), rank 0 alone records telemetry, and a 2-rank run interrupted after epoch 1
resumes on 2 ranks. The callbacks reach the workers through Ultralytics' own cloudpickling.
"""

from __future__ import annotations

import subprocess

import pytest
import torch
from conftest import tiny_train_args
from ddp_cpu import CpuDDPTrainer, dump_rank_state, stop_at_epoch_1

import yolo_gd
from yolo_gd.telemetry.sinks import read_steps

pytestmark = pytest.mark.slow


def _train(model, data, project, name, **args):
    model.add_callback("teardown", dump_rank_state)
    # One epoch of 3 steps per rank keeps the file to a few minutes on 2 cores (each launch imports torch twice).
    model.train(trainer=CpuDDPTrainer, **tiny_train_args(data, project, name, epochs=1, batch=16, nbs=16, **args))
    save_dir = project / name
    return save_dir, [torch.load(save_dir / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("inject, ul_optimizer", [
    (dict(optimizer="sgd"), "auto"),
    (dict(optimizer="adamw"), "auto"),
    (dict(optimizer="adamw"), "SGD"),
    (dict(), "auto"),  # observe-only
    (dict(optimizer="sam", base="sgd"), "auto"),  # first pass local, second pass all-reduced (inject/sam.py)
], ids=["sgd-auto", "adamw-auto", "adamw-explicit", "observe", "sam-sgd"])
def test_two_ranks_train_the_same_run(tiny_data, tmp_path, inject, ul_optimizer):
    from ultralytics import YOLO

    model = YOLO("yolo11n.yaml")
    yolo_gd.attach(model, **inject)
    save_dir, (r0, r1) = _train(model, tiny_data, tmp_path, "ddp", optimizer=ul_optimizer)
    assert r0["optimizer"] == r1["optimizer"] and r0["initial_lr"] == r1["initial_lr"] and r0["lr"] == r1["lr"]
    if inject:
        expected = {"sgd": 0.01, "adamw": 0.001}[inject.get("base", inject["optimizer"])]  # the registry default, not auto's choice
        assert set(r0["initial_lr"]) == {expected}
    assert _same(r0["params"], r1["params"]) and _same(r0["ema"], r1["ema"])
    assert r0["updates"] == r1["updates"] > 0
    steps = read_steps(save_dir)
    assert len(steps) == r0["updates"] and steps["step"].is_unique  # rank 0 alone: one row per optimizer step


def test_an_interrupted_two_rank_run_resumes_on_two_ranks(tiny_data, tmp_path):
    from ultralytics import YOLO

    model = YOLO("yolo11n.yaml")
    yolo_gd.attach(model, "adamw", schedule="cosine")
    model.add_callback("on_train_epoch_start", stop_at_epoch_1)
    with pytest.raises(subprocess.CalledProcessError):
        model.train(trainer=CpuDDPTrainer, **tiny_train_args(tiny_data, tmp_path, "run", epochs=3, batch=16, nbs=16))
    last = tmp_path / "run" / "weights" / "last.pt"
    assert torch.load(last, weights_only=False)["epoch"] == 0

    resumed = YOLO(str(last))
    yolo_gd.attach(resumed, "adamw")  # schedule and the rest come from the resumed run
    resumed.add_callback("teardown", dump_rank_state)
    resumed.train(trainer=CpuDDPTrainer, resume=True)
    r0, r1 = (torch.load(tmp_path / "run" / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["epoch"] == r1["epoch"] == 2
    assert _same(r0["params"], r1["params"]) and r0["initial_lr"] == r1["initial_lr"] == [0.001] * 3
    assert r0["steps"].steps == r1["steps"].steps == r0["updates"]
    steps = read_steps(tmp_path / "run", latest_only=True)
    assert steps["step"].tolist() == list(range(r0["steps"].steps))

"""The host's recovery paths with an injected optimizer: out-of-memory batch halving and NaN recovery.

Both are driven through Ultralytics' own training loop on a tiny run; only the failure is simulated (an
out-of-memory RuntimeError from the backward of one batch, a non-finite loss at one epoch end).
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import require, tiny_train_args

import yolo_gd
from yolo_gd.telemetry.sinks import read_steps

pytestmark = pytest.mark.slow


def _yolo():
    from ultralytics import YOLO

    return YOLO("yolo11n.yaml")


def _oom_once_at(batch_index: int):
    """A callback that makes the backward of the given first-epoch batch raise the host's OOM error, once."""
    state = {"batch": -1, "done": False}

    def on_batch_start(trainer):
        state["batch"] += 1
        if state["batch"] == batch_index and not state["done"]:
            state["done"] = True
            scale = trainer.scaler.scale

            def boom(loss):
                trainer.scaler.scale = scale
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")

            trainer.scaler.scale = boom

    return on_batch_start


def test_out_of_memory_halving_replans_for_the_new_batch(tiny_data, tmp_path):
    model = _yolo()
    yolo_gd.attach(model, "sgd", schedule="cosine", lr=0.01, warmup=0)
    model.add_callback("on_train_batch_start", _oom_once_at(3))
    model.train(**tiny_train_args(tiny_data, tmp_path, "oom", epochs=2, batch=8, nbs=8))
    trainer = model.trainer
    run = trainer._yolo_gd_run
    assert trainer.batch_size == run.batch_size == 4  # the host halved it; yolo_gd followed
    # 48 images / batch 4 = 12 batches; accumulate nbs 8 / batch 4 = 2, ramped over the 1-epoch warmup (12 batches)
    assert (run.cadence.batches_per_epoch, run.cadence.accumulate, run.cadence.warmup_batches) == (12, 2, 12)
    total = run.cadence.total_steps
    assert run.counters.steps == total  # rewound to the epoch start, then the new plan to its end
    steps = read_steps(trainer.save_dir)
    assert set(steps["attempt"]) == {0, 1}  # the failed attempt's rows stay, marked
    assert (steps[steps.attempt == 0]["step"] < 3).all()
    kept = read_steps(trainer.save_dir, latest_only=True)
    assert kept["step"].tolist() == list(range(total))
    expected = [0.01 * 0.5 * (1 + math.cos(math.pi * k / total)) for k in range(total)]
    assert kept["lr/weight"].tolist() == pytest.approx(expected, rel=1e-12)
    wd = trainer.optimizer.param_groups[0]["weight_decay"]
    assert wd == pytest.approx(5e-4 * 4 * 2 / 8)  # ours, scaled for the new batch (batch * accumulate / nbs)


def _nan_at_epoch(epoch: int):
    state = {"done": False}

    def on_epoch_end(trainer):
        if trainer.epoch == epoch and not state["done"]:
            state["done"] = True
            trainer.loss = torch.tensor(float("nan"))

    return on_epoch_end


@pytest.mark.parametrize("optimizer, package", [("sgd", None), ("adamw", None), ("sfadamw", "schedulefree")])
def test_nan_recovery_finishes_and_keeps_the_thrown_away_rows(tiny_data, tmp_path, optimizer, package):
    if package:
        require(package)
    model = _yolo()
    yolo_gd.attach(model, optimizer)
    model.add_callback("on_train_epoch_end", _nan_at_epoch(1))
    model.train(**tiny_train_args(tiny_data, tmp_path, optimizer, epochs=3))
    trainer = model.trainer
    run = trainer._yolo_gd_run
    assert trainer.epoch == 2 and run.counters.steps == run.cadence.total_steps
    if optimizer == "sfadamw":
        assert all(g["train_mode"] for g in trainer.optimizer.param_groups)
    steps = read_steps(trainer.save_dir)
    nb = run.cadence.batches_per_epoch
    in_epoch_1 = sum(1 for b in run.cadence.step_batches if b // nb == 1)
    assert steps[steps.epoch == 1]["attempt"].value_counts().to_dict() == {0: in_epoch_1, 1: in_epoch_1}
    assert set(steps[steps.epoch != 1]["attempt"]) == {0} or set(steps[steps.epoch == 2]["attempt"]) == {1}
    kept = read_steps(trainer.save_dir, latest_only=True)
    assert kept["step"].tolist() == list(range(run.cadence.total_steps))


def test_nan_recovery_keeps_ema_control_and_the_record_holds_the_fine_tuning_keys(tiny_data, tmp_path):
    """The host rebuilds its EMA with Ultralytics' defaults after a NaN epoch: ema=false must survive that."""
    import yaml

    model = _yolo()
    yolo_gd.attach(model, "sgd", ema=False, lr_decay=0.8, telemetry="off")
    model.add_callback("on_train_epoch_end", _nan_at_epoch(1))
    model.train(**tiny_train_args(tiny_data, tmp_path, "nan_ema", epochs=2))
    trainer = model.trainer
    assert trainer.ema.decay(100) == 0.0  # still a copy of the raw model, not decay 0.9999 / tau 2000
    record = yaml.safe_load((trainer.save_dir / "yolo_gd_run.yaml").read_text())
    assert record["ema"] == {"ema": False, "ema_decay": 0.9999, "ema_tau": 2000.0}
    assert record["finetune"]["lr_decay"] == 0.8 and record["fingerprint"]["ema"] is False

"""StepRecorder's step path reads no device value on the host: counted Tensor reads on CPU, sync debug mode on CUDA."""

from __future__ import annotations

import contextlib
import types

import pytest
import torch
from torch import nn

from test_recorder import FakeRun, count_syncs
from yolo_gd.optim.progress import Progress
from yolo_gd.telemetry.recorder import StepRecorder, read_steps


def test_sync_counter_sees_host_reads():
    t = torch.ones(2)
    with count_syncs() as calls:
        t.sum().item()
        float(t[0])
        bool(t[0] > 0)
        t.cpu()
        t.tolist()
    assert calls == ["item", "__float__", "__bool__", "cpu", "tolist"]


def test_no_host_sync_between_flushes_and_one_copy_per_flush(tmp_path):
    run = FakeRun(tmp_path, level="full", clip=0.5)
    for _ in range(5):
        run.step()
    assert run.syncs == []  # five steps, zero reads of a device value
    with count_syncs() as calls:
        run.recorder.flush()
    assert calls.count("cpu") == 1  # the single device->host copy
    assert "item" not in calls and "__float__" not in calls


@pytest.mark.parametrize("level", ["basic", "full"])
def test_no_host_sync_with_amp(tmp_path, level):
    run = FakeRun(tmp_path, amp=True, level=level)
    for i in range(4):
        run.step(inf_grad=(i == 2))
    assert run.syncs == []


def test_tensor_lr_is_recorded_without_sync(tmp_path):
    run = FakeRun(tmp_path)
    run.step()
    lr = torch.tensor(0.05)
    run.optimizer.param_groups[0]["lr"] = lr
    rec, tr = run.recorder, run.trainer
    original = rec.before_step

    def keep_tensor_lr(trainer, progress, norm, clip):
        trainer.optimizer.param_groups[0]["lr"] = lr
        original(trainer, progress, norm, clip)
        lr.fill_(1.0)  # a later in-place change must not leak into the recorded value

    rec.before_step = keep_tensor_lr
    run.step()
    assert run.syncs == []
    rec.close()
    assert read_steps(tmp_path)["lr/weight"].tolist()[1] == pytest.approx(0.05)


@contextlib.contextmanager
def _sync_debug(on: bool):
    torch.cuda.set_sync_debug_mode("error" if on else "default")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on a lent GPU machine)")
def test_no_sync_on_cuda_under_sync_debug_mode(tmp_path):
    """On a GPU, the recorder's step code runs under set_sync_debug_mode('error'): any host sync raises."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)).cuda()
    optimizer = torch.optim.AdamW([{"params": list(model.parameters()), "param_group": "weight"}], lr=1e-3,
                                  fused=True)
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0**8)
    trainer = types.SimpleNamespace(optimizer=optimizer, model=model, scaler=scaler, batch_size=4, epoch=0,
                                    loss=None, loss_items=None)
    recorder = StepRecorder(tmp_path, level="full", tensorboard=False)
    for s in range(4):
        out = model(torch.randn(8, 3, device="cuda"))
        parts = {"box_loss": out[:, 0].square().mean(), "cls_loss": out[:, 1].abs().mean()}
        trainer.loss = sum(parts.values()) * 4
        trainer.loss_items = {k: v.detach() for k, v in parts.items()}
        scaler.scale(trainer.loss).backward()
        scaler.unscale_(optimizer)
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        progress = Progress(step=s, total_steps=4, batch=s, batches_per_epoch=4, epochs=1)
        # the first step allocates the buffer (setup may sync once); every later step must not sync
        with _sync_debug(s > 0):
            recorder.before_step(trainer, progress, norm, 1.0)
        scaler.step(optimizer)  # torch's own step is outside the checked region
        scaler.update()
        with _sync_debug(s > 0):
            recorder.after_step(trainer)
        optimizer.zero_grad()
    recorder.close()
    assert len(read_steps(tmp_path)) == 4

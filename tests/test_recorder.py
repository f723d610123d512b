"""StepRecorder driven by a fake trainer around a tiny model, a real torch optimizer and a real GradScaler.

Every recorded value is checked against what the test measures itself: clip_grad_norm_'s return value, the
parameter change an optimizer step really made, the LR that was in the param group. Host syncs are counted by
patching the Tensor methods that read device values.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from conftest import require
from yolo_gd.optim.progress import Progress
from yolo_gd.telemetry.recorder import StepRecorder, read_steps
from yolo_gd.telemetry.sinks import read_epochs

REPO = Path(__file__).resolve().parents[1]
SYNC_METHODS = ("item", "cpu", "tolist", "numpy", "__float__", "__int__", "__bool__", "__index__")


@contextlib.contextmanager
def count_syncs():
    """Count calls of the Tensor methods that read a device value on the host while the block runs."""
    calls: list[str] = []
    originals = {name: getattr(torch.Tensor, name) for name in SYNC_METHODS}

    def wrap(name, original):
        def counted(self, *args, **kwargs):
            calls.append(name)
            return original(self, *args, **kwargs)

        return counted

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


class FakeRun:
    """The owned step's protocol around a real model/optimizer, recording what it expects the recorder to write."""

    def __init__(self, out_dir, *, level="basic", flush_every=0, clip=None, seed=0, amp=False, rank=0,
                 batches_per_epoch=4, batch_size=4, capacity=256, tensorboard=False):
        torch.manual_seed(seed)
        self.model = nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
        m = self.model
        self.optimizer = torch.optim.SGD(
            [
                {"params": [m[0].weight, m[3].weight], "name": "weight", "param_group": "weight"},
                {"params": [m[1].weight], "param_group": "bn"},
                {"params": [m[0].bias, m[1].bias, m[3].bias], "param_group": "bias"},
            ],
            lr=0.1, momentum=0.9,
        )
        self.scaler = torch.amp.GradScaler("cpu", enabled=amp, init_scale=2.0**8)
        self.trainer = types.SimpleNamespace(
            optimizer=self.optimizer, model=self.model, scaler=self.scaler, batch_size=batch_size, epoch=0,
            loss=None, loss_items=None,
        )
        self.clip = clip
        self.bpe = batches_per_epoch
        self.recorder = StepRecorder(out_dir, level=level, flush_every=flush_every, tensorboard=tensorboard,
                                     rank=rank, capacity=capacity)
        self.expected: list[dict] = []
        self.syncs: list[str] = []
        self.step_index = 0
        self.gen = torch.Generator().manual_seed(seed + 1)

    def step(self, *, inf_grad=False, unscale_first=True, batch=None):
        s = self.step_index
        batch = s if batch is None else batch
        m, opt, scaler, tr = self.model, self.optimizer, self.scaler, self.trainer
        for i, g in enumerate(opt.param_groups):  # the "plan" writes a new LR and momentum every step
            g["lr"] = 0.1 / (s + 1) + 0.01 * i
            g["momentum"] = 0.8 + 0.01 * s
        x = torch.randn(8, 3, generator=self.gen)
        out = m(x)
        parts = {"box_loss": out[:, 0].square().mean(), "cls_loss": out[:, 1].abs().mean()}
        tr.loss = (parts["box_loss"] + parts["cls_loss"]) * tr.batch_size
        tr.loss_items = {k: v.detach() for k, v in parts.items()}
        scaler.scale(tr.loss).backward()
        if inf_grad:
            m[0].weight.grad[0, 0] = math.inf
        if unscale_first:
            scaler.unscale_(opt)
        groups = [list(g["params"]) for g in opt.param_groups]
        pre_clip = [math.sqrt(sum(p.grad.double().square().sum().item() for p in g)) for g in groups]
        total = torch.nn.utils.get_total_norm([p.grad for g in groups for p in g])
        norm = torch.nn.utils.clip_grad_norm_(m.parameters(), max_norm=self.clip) if self.clip is not None else None
        before = [[p.detach().clone() for p in g] for g in groups]
        exp = {
            "step": s, "epoch": batch // self.bpe, "batch": batch, "batch_in_epoch": batch % self.bpe,
            "images_seen": (batch + 1) * tr.batch_size,
            "lr": [g["lr"] for g in opt.param_groups], "momentum": [g["momentum"] for g in opt.param_groups],
            "loss_backprop": tr.loss.detach().clone(), "parts": {k: v.clone() for k, v in tr.loss_items.items()},
            "grad_norm": norm.clone() if norm is not None else total, "group_grad": pre_clip,
            "param_norm": [math.sqrt(sum(p.double().square().sum().item() for p in g)) for g in before],
            "amp_scale": scaler.get_scale() if scaler.is_enabled() else 1.0,
        }
        progress = Progress(s, 100, batch, self.bpe, 10)
        with count_syncs() as calls:
            self.recorder.before_step(tr, progress, norm, self.clip)
        self.syncs += calls
        scaler.step(opt)
        scaler.update()
        with count_syncs() as calls:
            self.recorder.after_step(tr)
        self.syncs += calls
        exp["update_norm"] = [
            math.sqrt(sum((p.detach().double() - b.double()).square().sum().item() for p, b in zip(g, gb)))
            for g, gb in zip(groups, before)
        ]
        exp["skipped"] = scaler.is_enabled() and scaler.get_scale() < exp["amp_scale"]
        opt.zero_grad()
        self.expected.append(exp)
        self.step_index += 1


GROUPS = ("weight", "bn", "bias")


def check_rows(df: pd.DataFrame, expected: list[dict], clip=None):
    assert len(df) == len(expected)
    for row, exp in zip(df.itertuples(index=False), expected):
        r = dict(zip(df.columns, row))
        for key in ("step", "epoch", "batch", "batch_in_epoch", "images_seen"):
            assert r[key] == exp[key], key
        for i, g in enumerate(GROUPS):
            assert r[f"lr/{g}"] == exp["lr"][i]  # host value, float64: exact
            assert r[f"momentum/{g}"] == exp["momentum"][i]
            assert r[f"grad_norm/{g}"] == pytest.approx(exp["group_grad"][i], rel=1e-5)
            if f"param_norm/{g}" not in r:  # level basic: no parameter snapshot
                assert not any(c.startswith(("update_norm/", "update_ratio/")) for c in r)
                continue
            assert r[f"param_norm/{g}"] == pytest.approx(exp["param_norm"][i], rel=1e-5)
            assert r[f"update_norm/{g}"] == pytest.approx(exp["update_norm"][i], rel=1e-4, abs=1e-7)
            if exp["param_norm"][i] > 0:
                assert r[f"update_ratio/{g}"] == pytest.approx(exp["update_norm"][i] / exp["param_norm"][i],
                                                               rel=1e-4, abs=1e-8)
        assert r["loss_backprop"] == exp["loss_backprop"].item()  # float32 in, float32 out: exact
        for k, v in exp["parts"].items():
            assert r[f"loss/{k}"] == v.item()
        assert r["loss_sum"] == pytest.approx(sum(v.item() for v in exp["parts"].values()), rel=1e-6)
        gn = exp["grad_norm"].item()
        if math.isfinite(gn):
            assert r["grad_norm"] == pytest.approx(gn, rel=1e-6)
        assert r["nonfinite"] == (not math.isfinite(gn))
        assert r["amp_scale"] == exp["amp_scale"]
        assert r["skipped"] == exp["skipped"]
        if clip is None:
            assert math.isnan(r["clip"]) and not r["clipped"] and r["clip_coef"] == 1.0
        else:
            assert r["clip"] == clip
            assert r["clipped"] == (gn > clip)
            assert r["clip_coef"] == pytest.approx(min(clip / (gn + 1e-6), 1.0), rel=1e-6)


def test_sync_counter_sees_host_reads():
    t = torch.ones(2)
    with count_syncs() as calls:
        t.sum().item()
        float(t[0])
        bool(t[0] > 0)
        t.cpu()
        t.tolist()
    assert calls == ["item", "__float__", "__bool__", "cpu", "tolist"]


@pytest.mark.parametrize("level", ["basic", "full"])
@pytest.mark.parametrize("clip", [None, 0.5, 1e6])
def test_rows_match_measured_values(tmp_path, clip, level):
    run = FakeRun(tmp_path, clip=clip, level=level)
    for _ in range(6):
        run.step()
    run.recorder.close()
    df = read_steps(tmp_path)
    assert ("update_norm/weight" in df) == (level == "full")
    check_rows(df, run.expected, clip)
    if clip == 0.5:
        assert df["clipped"].all()  # the per-group norms above were checked as PRE-clip values
    if clip == 1e6:
        assert not df["clipped"].any()


def test_grad_norm_is_clip_grad_norm_return_value_exactly(tmp_path):
    run = FakeRun(tmp_path, clip=0.5)
    for _ in range(3):
        run.step()
    run.recorder.close()
    df = read_steps(tmp_path)
    assert df["grad_norm"].tolist() == [e["grad_norm"].item() for e in run.expected]


def test_dtypes_and_columns(tmp_path):
    run = FakeRun(tmp_path, level="full")
    for _ in range(3):
        run.step()
    run.recorder.close()
    df = read_steps(tmp_path)
    for c in ("step", "epoch", "batch", "batch_in_epoch", "images_seen", "attempt", "nonfinite_count"):
        assert df[c].dtype == "int64", c
    for c in ("clipped", "skipped", "nonfinite"):
        assert df[c].dtype == bool, c
    for c in ("time", "clip", "lr/weight", "momentum/bias"):
        assert df[c].dtype == "float64", c
    assert df["optimizer"].tolist() == ["SGD"] * 3
    for c in ("loss_backprop", "loss/box_loss", "loss_sum", "grad_norm", "grad_norm/bn", "update_ratio/weight"):
        assert df[c].dtype == "float32", c
    assert list(df.columns) == run.recorder.columns
    assert any(c.startswith("layer_grad_norm/") for c in df.columns)
    assert df["time"].is_monotonic_increasing
    # parquet written by pandas/pyarrow, read back by plain pandas
    part = next((tmp_path / "steps").glob("part-*.parquet"))
    assert len(pd.read_parquet(part)) == 3


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


def test_amp_skipped_steps_and_nonfinite(tmp_path):
    run = FakeRun(tmp_path, amp=True, level="full")
    for i in range(5):
        run.step(inf_grad=(i == 2))
    run.recorder.close()
    df = read_steps(tmp_path)
    assert df["skipped"].tolist() == [False, False, True, False, False]
    assert df["amp_scale"].tolist() == [256.0, 256.0, 256.0, 128.0, 128.0]
    assert df["nonfinite"].tolist() == [False, False, True, False, False]
    assert df["nonfinite_count"].tolist() == [0, 0, 1, 1, 1]
    assert (df.loc[2, [f"update_norm/{g}" for g in GROUPS]] == 0).all()  # the skipped step changed nothing
    check_rows(df.drop(index=2).reset_index(drop=True), [e for i, e in enumerate(run.expected) if i != 2])


def test_skipped_from_scale_when_called_before_unscale(tmp_path):
    """If the caller records before unscale_, 'skipped' comes from the scale backoff in after_step."""
    run = FakeRun(tmp_path, amp=True)
    for i in range(4):
        run.step(inf_grad=(i == 1), unscale_first=False)
    run.recorder.close()
    assert read_steps(tmp_path)["skipped"].tolist() == [False, True, False, False]
    assert run.syncs == []


def test_full_level_layer_norms(tmp_path):
    run = FakeRun(tmp_path, level="full")
    grads_seen = []
    orig = run.recorder.before_step

    def spy(trainer, progress, norm, clip):
        grads_seen.append({n: p.grad.clone() for n, p in run.model.named_parameters()})
        orig(trainer, progress, norm, clip)

    run.recorder.before_step = spy
    for _ in range(3):
        run.step()
    run.recorder.close()
    df = read_steps(tmp_path)
    layers = [c for c in df.columns if c.startswith("layer_grad_norm/")]
    assert layers == ["layer_grad_norm/0", "layer_grad_norm/3", "layer_grad_norm/1"]  # optimizer order
    for row, grads in zip(df.itertuples(index=False), grads_seen):
        r = dict(zip(df.columns, row))
        for key in ("0", "1", "3"):
            want = math.sqrt(sum(g.double().square().sum().item() for n, g in grads.items() if n.startswith(key + ".")))
            assert r[f"layer_grad_norm/{key}"] == pytest.approx(want, rel=1e-5)
        assert sum(r[c] ** 2 for c in layers) == pytest.approx(r["grad_norm"] ** 2, rel=1e-5)


def test_flush_every_writes_parts_in_order(tmp_path):
    run = FakeRun(tmp_path, flush_every=2)
    for _ in range(5):
        run.step()
    parts = sorted((tmp_path / "steps").glob("part-*.parquet"))
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet"]
    run.recorder.close()
    parts = sorted((tmp_path / "steps").glob("part-*.parquet"))
    assert [len(pd.read_parquet(p)) for p in parts] == [2, 2, 1]
    assert read_steps(tmp_path)["step"].tolist() == [0, 1, 2, 3, 4]
    check_rows(read_steps(tmp_path), run.expected)


def test_buffer_grows_without_losing_rows(tmp_path):
    run = FakeRun(tmp_path, capacity=2, level="full")
    for _ in range(7):
        run.step()
    assert run.syncs == []
    run.recorder.close()
    check_rows(read_steps(tmp_path), run.expected)


def test_epochs_csv(tmp_path):
    run = FakeRun(tmp_path, clip=0.5, batches_per_epoch=3)
    for epoch in range(2):
        run.trainer.epoch = epoch
        for _ in range(3):
            run.step()
        run.recorder.epoch_end(run.trainer)
    run.recorder.close()
    ep = read_epochs(tmp_path)
    steps = read_steps(tmp_path)
    assert ep["epoch"].tolist() == [0, 1]
    assert ep["steps"].tolist() == [3, 3]
    assert ep["first_step"].tolist() == [0, 3] and ep["last_step"].tolist() == [2, 5]
    assert ep["clip_rate"].tolist() == [1.0, 1.0]
    assert ep["skipped_steps"].tolist() == [0, 0] and ep["nonfinite_steps"].tolist() == [0, 0]
    for e in range(2):
        rows = steps[steps["epoch"] == e]
        assert ep.loc[e, "grad_norm_mean"] == pytest.approx(rows["grad_norm"].astype(float).mean(), rel=1e-9)
        assert ep.loc[e, "grad_norm_max"] == pytest.approx(rows["grad_norm"].astype(float).max(), rel=1e-9)
        assert ep.loc[e, "lr/weight"] == run.expected[3 * e + 2]["lr"][0]
        assert ep.loc[e, "loss/box_loss_mean"] == pytest.approx(rows["loss/box_loss"].astype(float).mean())
        assert ep.loc[e, "loss_backprop_mean"] == pytest.approx(rows["loss_backprop"].astype(float).mean())
    assert not (tmp_path / "results.csv").exists()


def test_truncate_after_for_resume(tmp_path):
    run = FakeRun(tmp_path, flush_every=3, batches_per_epoch=4)
    for s in range(10):
        run.trainer.epoch = s // 4
        run.step()
        if s % 4 == 3:
            run.recorder.epoch_end(run.trainer)
    run.recorder.close()
    # parts: steps 0-2 (flush_every), 3 (epoch end), 4-6, 7 (epoch end), 8-9 (close)
    assert len(list((tmp_path / "steps").glob("part-*"))) == 5
    # resume from the checkpoint taken after step 4 (the first step of epoch 1 ... steps 0-4 are kept)
    resumed = StepRecorder(tmp_path, tensorboard=False)
    assert resumed.truncate_after(5) == 0
    assert read_steps(tmp_path)["step"].tolist() == [0, 1, 2, 3, 4]
    assert len(list((tmp_path / "steps").glob("part-*"))) == 3  # part 2 rewritten to step 4, parts 3-4 deleted
    assert read_epochs(tmp_path)["epoch"].tolist() == [0]  # epoch 1 (steps 4-7) contained dropped rows
    # the resumed process records steps 5.. again (same model state is not needed for this check)
    for s in range(5, 8):
        run.recorder = resumed
        run.step_index = s
        run.step()
    resumed.close()
    assert read_steps(tmp_path)["step"].tolist() == list(range(8))
    assert read_steps(tmp_path)["attempt"].tolist() == [0] * 8


def test_attempts_and_truncate_keep_thrown_away_rows(tmp_path):
    run = FakeRun(tmp_path, flush_every=4)
    for _ in range(6):  # steps 0..5
        run.step()
    run.step_index = 3  # NaN recovery reloads the checkpoint of step 3
    for _ in range(5):  # steps 3..7, attempt 1
        run.step()
    run.recorder.close()
    df = read_steps(tmp_path)
    assert df["step"].tolist() == [0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7]
    assert df["attempt"].tolist() == [0] * 6 + [1] * 5
    latest = read_steps(tmp_path, latest_only=True)
    assert latest["step"].tolist() == list(range(8))
    assert latest["attempt"].tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    # resume from step 6: attempt 1's rows 6, 7 go; attempt 0's thrown-away rows 3..5 stay
    resumed = StepRecorder(tmp_path, tensorboard=False)
    assert resumed.truncate_after(6) == 1
    assert resumed.attempt == 1
    df = read_steps(tmp_path)
    assert df["step"].tolist() == [0, 1, 2, 3, 4, 5, 3, 4, 5]
    resumed.close()


def test_two_recorders_do_not_interfere(tmp_path):
    a = FakeRun(tmp_path / "a", seed=1, clip=0.5)
    b = FakeRun(tmp_path / "b", seed=2, level="full", flush_every=2)  # two snapshots, two buffers
    for _ in range(4):
        a.step()
        b.step()
    a.recorder.close()
    b.recorder.close()
    check_rows(read_steps(tmp_path / "a"), a.expected, 0.5)
    check_rows(read_steps(tmp_path / "b"), b.expected)
    assert "layer_grad_norm/0" not in read_steps(tmp_path / "a")


def test_other_ranks_record_nothing(tmp_path):
    run = FakeRun(tmp_path, rank=1)
    for _ in range(2):
        run.step()
    run.recorder.epoch_end(run.trainer)
    run.recorder.close()
    assert not any(tmp_path.iterdir())


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="level"):
        StepRecorder(tmp_path, level="verbose")
    with pytest.raises(ValueError, match="flush_every"):
        StepRecorder(tmp_path, flush_every=-1)


def test_close_is_idempotent_and_flush_without_steps(tmp_path):
    rec = StepRecorder(tmp_path, tensorboard=False)
    assert rec.flush() is None
    rec.close()
    rec.close()
    assert read_steps(tmp_path).empty


def test_tensorboard_events(tmp_path):
    require("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = FakeRun(tmp_path, tensorboard=True, flush_every=2, level="full")
    for _ in range(3):
        run.step()
    run.recorder.close()
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "grad_norm" in tags and "lr/weight" in tags and "update_ratio/bias" in tags
    assert [e.step for e in acc.Scalars("grad_norm")] == [0, 1, 2]
    want = read_steps(tmp_path)["grad_norm"].tolist()
    assert [e.value for e in acc.Scalars("grad_norm")] == pytest.approx(want, rel=1e-6)


_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    import torch
    torch.set_num_threads(1)
    from test_recorder import FakeRun
    run = FakeRun(sys.argv[1], flush_every=5, clip=0.5, seed=3)
    kill_after = int(sys.argv[2])
    for s in range(23):
        run.step()
        if s == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    run.recorder.close()
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_leaves_readable_prefix(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(tests=str(REPO / "tests")))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

    def child(out: Path, kill_after: int) -> int:
        return subprocess.run([sys.executable, str(script), str(out), str(kill_after)], env=env,
                              cwd=tmp_path, timeout=300).returncode

    assert child(tmp_path / "full", -1) == 0
    assert child(tmp_path / "killed", 13) == -signal.SIGKILL  # killed after 14 steps: 2 flushes of 5 rows done
    full = read_steps(tmp_path / "full").drop(columns="time")
    killed = read_steps(tmp_path / "killed").drop(columns="time")
    assert len(full) == 23
    assert len(killed) == 10
    assert not list((tmp_path / "killed" / "steps").glob(".*tmp"))  # no temp file left visible as a part
    pd.testing.assert_frame_equal(killed, full.iloc[: len(killed)].reset_index(drop=True))


def test_flush_between_before_and_after_step_keeps_the_pending_row(tmp_path):
    run = FakeRun(tmp_path, level="full")
    rec = run.recorder
    original = rec.before_step
    written = []

    def before_then_flush(*args):
        original(*args)
        written.append(rec.flush())  # the row just begun has no update norms yet: it must wait

    rec.before_step = before_then_flush
    for _ in range(4):
        run.step()
    rec.close()
    assert written[0] is None  # nothing complete at the first step
    assert all(p is not None for p in written[1:])
    check_rows(read_steps(tmp_path), run.expected)


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


def test_new_attempt_and_detected_rewind_count_once(tmp_path):
    run = FakeRun(tmp_path)
    for _ in range(3):
        run.step()
    run.recorder.new_attempt()  # the caller knows: NaN recovery reloaded step 1
    run.step_index = 1
    run.step()
    run.step()
    run.recorder.new_attempt()  # an explicit mark with no rewind (counter continues) still counts
    run.step()
    run.recorder.close()
    df = read_steps(tmp_path)
    assert df["step"].tolist() == [0, 1, 2, 1, 2, 3]
    assert df["attempt"].tolist() == [0, 0, 0, 1, 1, 2]


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

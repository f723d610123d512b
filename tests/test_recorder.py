"""StepRecorder driven by a fake trainer (tiny model, real optimizer and GradScaler): rows match measured values."""

from __future__ import annotations

import contextlib
import math
import types

import pandas as pd
import pytest
import torch
from torch import nn

from yolo_gd.optim.progress import Progress
from yolo_gd.telemetry.recorder import StepRecorder, read_steps

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

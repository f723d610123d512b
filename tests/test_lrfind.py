"""The LR range test: exact math on hand-made curves, the refusals, and one tiny real run (the LR sequence is the
ramp, the model is unchanged, nothing is left behind) plus a crafted divergence that stops it."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from yolo_gd.errors import UserError
from yolo_gd.lrfind.rangetest import LrRamp, diverged, min_over_10, smooth, steepest, suggest, valley


def test_ramp_is_exponential_from_lr_min_to_lr_max():
    ramp = LrRamp(1.0, 4.0, 3)
    assert [ramp.lr(k) for k in range(4)] == [1.0, 2.0, 4.0, 4.0]  # held at lr_max after the last step
    assert ramp(SimpleNamespace(step=1)) == 2.0
    with pytest.raises(ValueError):
        LrRamp(1.0, 0.5, 4)


def test_smoothing_is_bias_corrected_ema():
    assert smooth([2.0, 4.0], beta=0.5).tolist() == [2.0, 2.5 / 0.75]
    assert smooth([3.0] * 5).tolist() == pytest.approx([3.0] * 5, rel=1e-12)  # no start-up bias


def test_stop_rule():
    assert diverged(4.01, 1.0) and not diverged(4.0, 1.0) and diverged(math.nan, 1.0)


def test_suggestion_rules_on_hand_made_curves():
    lrs = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]
    assert min_over_10(lrs[:4], [5.0, 3.0, 1.0, 9.0]) == 1e-3 / 10
    assert min_over_10(lrs[:3], [1.0, 2.0, 3.0]) is None  # never fell
    assert steepest(lrs[:5], [10.0, 9.0, 4.0, 3.5, 5.0], skip_begin=0) == 1e-4  # gradient -1, -3, -2.75, -0.5
    assert valley(lrs, [9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 10.0]) == 1e-3  # fastai: -1 + int(7/3) + int(7/6)
    s = suggest(lrs[:4], [5.0, 3.0, 1.0, 9.0])
    assert (s.lr, s.rule) == (1e-5, "valley") and s.others == {"min/10": 1e-3 / 10, "steepest": None}  # too short to skip 10


def test_range_stop_on_a_crafted_divergence():
    torch = pytest.importorskip("torch")
    from yolo_gd.lrfind.run import RangeStop

    stop = RangeStop(steps=100)
    trainer = SimpleNamespace(stop=False, loss_items=None)
    for i, loss in enumerate([1.0, 1.0, 1.0, 100.0]):
        trainer.loss_items = {"box": torch.tensor(loss / 2), "cls": torch.tensor(loss / 2)}
        stop.on_train_batch_end(trainer)
        assert trainer.stop == (i == 3)  # smoothed 29.8 > 4 x 1
    assert stop.diverged


@pytest.mark.parametrize("kwargs, match", [
    (dict(optimizer=None), "needs optimizer="), (dict(optimizer="auto"), "needs optimizer="),
    (dict(optimizer="sgd", schedule="cosine"), "sets schedule= itself"),
    (dict(optimizer="sgd", steps=1000), "steps=1000"), (dict(optimizer="sgd", lr_min=1.0, lr_max=0.1), "lr_min=1.0"),
])
def test_refusals(kwargs, match):
    from yolo_gd.lrfind.run import lr_find

    with pytest.raises(UserError, match=match):
        lr_find(**kwargs)


def test_lr_free_optimizer_is_refused(monkeypatch):
    from yolo_gd.lrfind import run

    monkeypatch.setattr(run, "LR_FREE", frozenset({"sgd"}))
    with pytest.raises(UserError, match="sets its own step size"):
        run.check_optimizer("sgd")


def test_real_range_test(tiny_data, tmp_path):
    import pandas as pd
    from ultralytics import YOLO

    from tests.conftest import tiny_train_args
    from yolo_gd.lrfind.run import lr_find

    args = tiny_train_args(tiny_data, tmp_path, "x")
    keep = {k: args[k] for k in ("imgsz", "workers", "seed", "deterministic", "amp", "verbose")}
    model = YOLO("yolo11n.yaml")
    before = {k: v.clone() for k, v in model.model.state_dict().items()}
    caches = set(tiny_data.parent.rglob("*.cache"))
    res = lr_find(model=model, data=tiny_data, optimizer="sgd", lr_min=1e-4, lr_max=1e-1, steps=9, batch=8,
                  out=tmp_path / "out", **keep)
    df = pd.read_csv(res.csv)
    ramp = LrRamp(1e-4, 1e-1, 9)
    assert df["step"].tolist() == list(range(9)) and not res.stopped_early
    assert np.allclose(df["lr"], [ramp.lr(k) for k in range(9)], rtol=1e-12, atol=0)
    assert all(torch_equal(before[k], v) for k, v in model.model.state_dict().items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in res.out.iterdir()) == ["lrfind.csv", "lrfind.png", "steps.parquet",
                                                         "suggestion.json"]
    assert set(tiny_data.parent.rglob("*.cache")) == caches
    # a crafted divergence: SGD without clipping from LR 10 up to 1e6 blows up within a few steps
    res = lr_find(model="yolo11n.yaml", data=tiny_data, optimizer="sgd", lr_min=10.0, lr_max=1e6, steps=40, batch=8,
                  clip=None, out=tmp_path / "div", **keep)
    assert res.stopped_early and res.steps < 40


def torch_equal(a, b) -> bool:
    import torch

    return torch.equal(a, b)


def test_protocol_lrfind_sweep(tiny_data, tmp_path):
    from yolo_gd.ablate.manifest import read_manifest
    from yolo_gd.ablate.runner import run_sweep

    spec = tmp_path / "lf.yaml"
    spec.write_text(f"name: lf\nbase: {{model: yolo11n.yaml, data: '{tiny_data}', imgsz: 64, batch: 8, nbs: 8, "
                    f"workers: 0, plots: false, amp: false, warmup_epochs: 1}}\naxes:\n  optimizer: [adamw]\n"
                    f"seeds: [0]\nbudget: {{epochs: 1}}\nprotocol: lrfind\nlrfind: {{steps: 12, lr_min: 1e-5, "
                    f"lr_max: 1.0}}\n", encoding="utf-8")
    lines = []
    sweep_dir = run_sweep(spec, out_root=tmp_path / "runs", progress=lines.append)
    m = read_manifest(sweep_dir)
    test = m["lrfind"]["adamw"]
    assert m["protocol"] == "lrfind" and test["split"] == "train" and 2 <= test["steps"] <= 12
    trial = m["trials"]["adamw-s0"]
    assert trial["state"] == "done" and trial["lr"] == test["lr"] and trial["kwargs"]["lr"] == test["lr"]
    from yolo_gd.report import build_report

    report = build_report(sweep_dir).markdown.read_text(encoding="utf-8")
    assert "Protocol `lrfind`" in report and "Run health (yolo-gd doctor)" in report
    assert "LR range test of adamw" in report


def test_protocol_lrfind_spec_errors(tmp_path):
    from yolo_gd.ablate.spec import load_spec

    spec = tmp_path / "bad.yaml"
    spec.write_text("axes:\n  optimizer: [sgd]\n  lr: [0.01]\nseeds: [0]\nbudget: {epochs: 1}\nprotocol: lrfind\n",
                    encoding="utf-8")
    with pytest.raises(UserError, match="protocol: lrfind picks each optimizer's LR itself"):
        load_spec(spec)
    spec.write_text("axes:\n  optimizer: [sgd]\nseeds: [0]\nbudget: {epochs: 1}\nlrfind: {steps: 10}\n",
                    encoding="utf-8")
    with pytest.raises(UserError, match="only used with 'protocol: lrfind'"):
        load_spec(spec)


@pytest.mark.parametrize("optimizer, module", [("sfadamw", "schedulefree"), ("lion", "lion_pytorch")])
def test_range_test_runs_schedule_free_and_lion(tiny_data, tmp_path, optimizer, module):
    from tests.conftest import require
    from yolo_gd.lrfind.run import lr_find

    require(module)
    res = lr_find(model="yolo11n.yaml", data=tiny_data, optimizer=optimizer, lr_min=1e-5, lr_max=1e-2, steps=4,
                  batch=8, imgsz=64, workers=0, amp=False, out=tmp_path / optimizer)
    import pandas as pd

    df = pd.read_csv(res.csv)
    ramp = LrRamp(1e-5, 1e-2, 4)
    assert np.allclose(df["lr"], [ramp.lr(k) for k in range(4)], rtol=1e-12, atol=0)

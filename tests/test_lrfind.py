"""The LR range test as users run it (yolo_gd/lrfind/run.py): the refusals, one tiny real run (the LR sequence is
the ramp, the model is unchanged, nothing is left behind), a crafted divergence that stops it, and the sweep's
``protocol: lrfind``. The rule's math on hand-made curves: test_rangetest.py."""

from __future__ import annotations


import numpy as np
import pytest

from yolo_gd.errors import UserError
from yolo_gd.lrfind.rangetest import LrRamp

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
    res = lr_find(model=model, data=tiny_data, optimizer="sgd", lr_min=1e-4, lr_max=1e-1, steps=9, batch=8, nbs=16,
                  probe=16, probe_every=1, out=tmp_path / "out", **keep)
    df = pd.read_csv(res.csv)
    ramp = LrRamp(1e-4, 1e-1, 9)
    assert df["step"].tolist() == list(range(9)) and not res.stopped_early
    assert np.allclose(df["lr"], [ramp.lr(k) for k in range(9)], rtol=1e-12, atol=0)
    assert df["signal"].notna().all()  # the probe's loss after every step
    steps = pd.read_parquet(res.out / "steps.parquet")
    assert steps["images_seen"].tolist() == [16 * (k + 1) for k in range(9)]  # nbs 16 / batch 8: 2 batches a step
    c = res.conditions
    assert (c["accumulate"], c["nbs"], c["batch"], c["mosaic"], c["device"], c["steps_run"]) == (2, 16, 8, True,
                                                                                                 "cpu", 9)
    assert c["signal"].startswith("loss on 16 fixed train images")
    assert all(torch_equal(before[k], v) for k, v in model.model.state_dict().items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in res.out.iterdir()) == ["lrfind.csv", "lrfind.png", "steps.parquet",
                                                         "suggestion.json"]
    assert set(tiny_data.parent.rglob("*.cache")) == caches
    # measuring the probe changes nothing the training sees: the same run without it trains the same losses
    plain = lr_find(model=model, data=tiny_data, optimizer="sgd", lr_min=1e-4, lr_max=1e-1, steps=9, batch=8,
                    nbs=16, probe=0, out=tmp_path / "plain", **keep)
    assert pd.read_csv(plain.csv)["loss"].tolist() == df["loss"].tolist()
    # ... and on this tiny noisy set the training loss (mosaics of 8 images) says nothing: no suggestion
    v = plain.suggestion
    assert (v.lr, v.reason) == (None, "too noisy") and v.noise > 0.5 * v.start
    # a crafted divergence: SGD without clipping from LR 10 up to 1e6 blows up within a few steps
    res = lr_find(model="yolo11n.yaml", data=tiny_data, optimizer="sgd", lr_min=10.0, lr_max=1e6, steps=40, batch=8,
                  nbs=8, probe=8, clip=None, out=tmp_path / "div", **keep)
    assert res.stopped_early and res.steps < 40
    assert (res.suggestion.lr, res.suggestion.reason) == (None, "diverged early")


def test_fraction_and_accumulation_set_the_epochs(tiny_data):
    from yolo_gd.lrfind.run import _epochs, _train_images

    # Ultralytics cuts the train split to round(48 x 0.5) = 24 images, or to an image count
    assert (_train_images(tiny_data, 1.0), _train_images(tiny_data, 0.5), _train_images(tiny_data, 10)) == (48, 24, 10)
    assert _epochs(24, 8, 100 * 2) == 67  # 3 batches an epoch, 100 steps of 2 batches
    assert _epochs(48, 8, 9 * 2) == 3


def torch_equal(a, b) -> bool:
    import torch

    return torch.equal(a, b)


def test_protocol_lrfind_sweep(tiny_data, tmp_path):
    from yolo_gd.ablate.manifest import read_manifest
    from yolo_gd.ablate.runner import run_sweep
    from yolo_gd.optim.registry import resolve_optimizer

    # LRs 1e-6..1e-5 for 12 steps barely move the weights: the probe's loss stays flat, no suggestion
    spec = tmp_path / "lf.yaml"
    spec.write_text(f"name: lf\nbase: {{model: yolo11n.yaml, data: '{tiny_data}', imgsz: 64, batch: 8, nbs: 8, "
                    f"workers: 0, plots: false, amp: false, warmup_epochs: 1}}\naxes:\n  optimizer: [adamw]\n"
                    f"seeds: [0]\nbudget: {{epochs: 1}}\nprotocol: lrfind\nlrfind: {{steps: 12, lr_min: 1e-6, "
                    f"lr_max: 1e-5}}\n", encoding="utf-8")
    lines = []
    sweep_dir = run_sweep(spec, out_root=tmp_path / "runs", progress=lines.append)
    m = read_manifest(sweep_dir)
    test = m["lrfind"]["adamw"]
    assert m["protocol"] == "lrfind" and test["split"] == "train" and test["steps"] == 12
    assert (test["suggested"], test["reason"]) == (None, "flat")
    assert test["rule"] == "fallback: no reliable suggestion (flat): the entry's LR"
    assert test["lr"] == resolve_optimizer("adamw").default_lr  # the entry names no LR: the registry's
    c = test["conditions"]  # close_mosaic 10 covers the 1-epoch budget: the trial starts without mosaic
    assert (c["batch"], c["nbs"], c["mosaic"], c["device"], c["steps_planned"]) == (8, 8, False, "cpu", 12)
    trial = m["trials"]["adamw-s0"]
    assert trial["state"] == "done" and trial["lr"] == test["lr"] and trial["kwargs"]["lr"] == test["lr"]
    from yolo_gd.report import build_report

    report = build_report(sweep_dir).markdown.read_text(encoding="utf-8")
    assert "Protocol `lrfind`" in report and "Run health (yolo-gd doctor)" in report
    assert "LR range test of adamw" in report and "**No reliable suggestion** (the entry's LR was used)" in report
    assert "`adamw`: no reliable suggestion (flat), so it trained at the entry's own LR; to do: the loss" in report
    assert "`adamw`: LR 1e-06 to 1e-05 over 12 optimizer steps (12 run); batch 8, nbs 8 (accumulate 1); mosaic " \
           "closed (as in the trial)" in report


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
                  batch=8, nbs=8, probe=8, imgsz=64, workers=0, amp=False, out=tmp_path / optimizer)
    import pandas as pd

    df = pd.read_csv(res.csv)
    ramp = LrRamp(1e-5, 1e-2, 4)
    assert np.allclose(df["lr"], [ramp.lr(k) for k in range(4)], rtol=1e-12, atol=0)

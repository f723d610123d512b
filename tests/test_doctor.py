"""yolo_gd.health: every rule fires on a crafted step table and stays silent on a healthy one; on a real tiny
observe-only run (Ultralytics' clip 10, pre-clip norms in the hundreds) clip-dominated fires."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from yolo_gd.health.rules import run_rules, spike_steps, warmup_steps

N = 100


def healthy(n: int = N) -> pd.DataFrame:
    """A run that is fine: LR warms up over 5 steps then stays, loss falls smoothly, rare clipping, AMP steady."""
    step = np.arange(n)
    lr = np.minimum((step + 1) / 5, 1.0) * 0.01
    loss = 10.0 * np.exp(-step / 50) + 1.0
    gn = np.full(n, 5.0)
    gn[[30, 60]] = 20.0
    clipped = gn > 10.0
    return pd.DataFrame({
        "step": step, "batch": step, "images_seen": (step + 1) * 16, "clip": 10.0, "lr/weights": lr,
        "loss_sum": loss.astype("float32"), "grad_norm": gn.astype("float32"), "clipped": clipped,
        "clip_coef": np.where(clipped, 10.0 / gn, 1.0).astype("float32"),
        "grad_norm/weights": gn.astype("float32"), "grad_norm/bias": (gn / 10).astype("float32"),
        "update_ratio/weights": np.full(n, 1e-3, "float32"), "update_ratio/bias": np.full(n, 2e-3, "float32"),
        "amp_scale": np.full(n, 65536.0, "float32"), "skipped": False, "nonfinite": False,
    })


def codes(df, epochs=None) -> list[str]:
    return [f.code for f in run_rules(df, epochs)]


def test_healthy_is_silent():
    assert codes(healthy()) == []
    assert codes(healthy(), pd.DataFrame({"epoch": [0, 1], "noise_scale": [40.0, 30.0]})) == []


def test_spike_and_warmup_helpers_are_exact():
    df = healthy()
    assert warmup_steps(df) == 4  # LR reaches 0.01 at step 4
    df.loc[50, "loss_sum"] = 100.0
    assert spike_steps(df) == (50,)


def test_clip_dominated():
    df = healthy()
    df["grad_norm"] = np.linspace(400, 1500, N).astype("float32")
    df["clipped"] = True
    df["clip_coef"] = (10.0 / df["grad_norm"]).astype("float32")
    [f] = run_rules(df)
    assert f.code == "clip-dominated"
    assert "100 of 100 steps clipped (rate 1.00)" in f.evidence
    assert "clip=950" in f.suggestion  # median pre-clip norm


def test_clip_often_but_mild_is_silent():
    df = healthy()
    df["clipped"] = True
    df["clip_coef"] = np.float32(0.5)
    assert codes(df) == []


def test_lr_too_high_nonfinite_skips_and_spikes():
    df = healthy()
    df.loc[[70, 71, 72], "skipped"] = True
    df.loc[40, "nonfinite"] = True
    df.loc[[50, 80, 90], "loss_sum"] = 50.0
    [f] = run_rules(df)
    assert f.code == "lr-too-high"
    assert f.evidence == ("1 non-finite steps (steps 40); 3 AMP-skipped steps in a row (steps 70-72); "
                          "3 loss spikes above 2x the running median after the warmup (steps 50, 80, 90)")


def test_lr_too_low():
    df = healthy()
    df["update_ratio/weights"] = np.float32(1e-6)
    df["update_ratio/bias"] = np.float32(1e-5)
    assert codes(df) == []  # tiny updates but the loss falls: not flagged
    df["loss_sum"] = np.float32(3.0)
    [f] = run_rules(df)
    assert f.code == "lr-too-low" and "2 of 2 below 0.0001" in f.evidence and "+0.0% decrease" in f.evidence


def test_zero_and_nonfinite_gradients():
    df = healthy()
    df["grad_norm/bias"] = np.float32(0.0)
    df["layer_grad_norm/model.9"] = np.float32(1.0)
    df.loc[33, "layer_grad_norm/model.9"] = np.inf
    assert codes(df) == ["zero-gradients", "nonfinite-gradients"]
    found = run_rules(df)
    assert "grad_norm/bias" in found[0].evidence and "layer_grad_norm/model.9" in found[1].evidence


def test_amp_scale_collapse():
    df = healthy()
    df["amp_scale"] = (65536.0 / 2.0 ** np.minimum(np.arange(N) // 5, 17)).astype("float32")
    [f] = run_rules(df)
    assert f.code == "amp-scale-collapse" and f.evidence.startswith("amp_scale 6.55e+04 at the start, 0.5")


def test_warmup_too_short_and_too_long():
    df = healthy()
    df.loc[[6, 8], "loss_sum"] = 60.0
    [f] = run_rules(df)
    assert f.code == "warmup-too-short" and f.steps == (6, 8)
    df = healthy()
    df["lr/weights"] = np.minimum((df["step"] + 1) / 50, 1.0) * 0.01
    [f] = run_rules(df)
    assert f.code == "warmup-too-long" and "49 of 100 steps (49%)" in f.evidence


def test_batch_far_from_noise_scale():
    epochs = pd.DataFrame({"epoch": [0, 1], "noise_scale": [2000.0, 1000.0]})
    [f] = run_rules(healthy(), epochs)
    assert f.code == "batch-vs-noise-scale" and "batch 16 images per step; noise scale 1e+03" in f.evidence
    assert codes(healthy(), pd.DataFrame({"epoch": [0]})) == []  # no noise_scale column: silent
    acc = healthy()
    acc["images_seen"] = (acc["step"] + 1) * 64  # accumulation: 64 images per optimizer step
    assert codes(acc, pd.DataFrame({"epoch": [0], "noise_scale": [40.0]})) == []  # 64 vs 40: near


def test_doctor_on_a_real_observe_only_run(tiny_data, tmp_path):
    import yolo_gd
    from tests.conftest import tiny_train_args

    result = yolo_gd.train(model="yolo11n.yaml", optimizer=None, **tiny_train_args(tiny_data, tmp_path, "obs"))
    found = {f.code: f for f in yolo_gd.doctor(result.save_dir)}
    assert "clip-dominated" in found, found
    from yolo_gd.cli import main

    assert main(["doctor", str(result.save_dir)]) == 0
    assert main(["doctor", str(tmp_path)]) == 2

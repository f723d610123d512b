"""plot_run on synthetic step tables: the expected PNGs exist, are valid and non-trivial."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from yolo_gd.telemetry.plots import plot_run, plot_steps
from yolo_gd.telemetry.schema import cast_steps
from yolo_gd.telemetry.sinks import ParquetParts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GROUPS = ("weight", "bn", "bias")


def synthetic_steps(n_epochs=3, per_epoch=20, clip=10.0, layers=0, update=True, seed=0) -> pd.DataFrame:
    """A step table shaped like the recorder's: warmup LR, clipped then unclipped grad norms, one skipped step."""
    rng = np.random.default_rng(seed)
    n = n_epochs * per_epoch
    step = np.arange(n)
    df = {
        "step": step, "epoch": step // per_epoch, "batch": step, "batch_in_epoch": step % per_epoch,
        "images_seen": (step + 1) * 16, "time": step * 0.3, "attempt": np.zeros(n, int),
        "clip": np.full(n, np.nan if clip is None else clip),
    }
    warm = np.clip(step / 15, 0, 1)
    for g in GROUPS:
        df[f"lr/{g}"] = 0.01 * warm * (1 - step / n) + (0.1 * (1 - warm) if g == "bias" else 0)
        df[f"momentum/{g}"] = 0.8 + 0.137 * warm
    for k, base in (("box_loss", 3.0), ("cls_loss", 4.0), ("dfl_loss", 2.0)):
        df[f"loss/{k}"] = base * np.exp(-step / 40) + rng.normal(0, 0.1, n)
    df["loss_sum"] = sum(df[f"loss/{k}"] for k in ("box_loss", "cls_loss", "dfl_loss"))
    df["loss_backprop"] = df["loss_sum"] * 16
    gn = np.exp(rng.normal(np.log(600), 0.4, n))
    gn[n - n // 6:] = np.exp(rng.normal(np.log(8), 0.4, n // 6))
    skipped = np.zeros(n, bool)
    skipped[n // 2] = True
    df.update(grad_norm=gn, clipped=gn > (clip or np.inf), clip_coef=np.minimum((clip or np.inf) / (gn + 1e-6), 1),
              amp_scale=np.full(n, 65536.0), skipped=skipped, nonfinite=skipped, nonfinite_count=np.cumsum(skipped))
    for i, g in enumerate(GROUPS):
        df[f"grad_norm/{g}"] = gn * (0.9, 0.3, 0.2)[i]
        df[f"param_norm/{g}"] = np.full(n, (60.0, 20.0, 3.0)[i])
        if update:
            un = 0.05 * df[f"lr/{g}"] / 0.01 * np.exp(rng.normal(0, 0.2, n))
            un[skipped] = 0
            df[f"update_norm/{g}"] = un
            df[f"update_ratio/{g}"] = un / df[f"param_norm/{g}"]
    for layer in range(layers):
        df[f"layer_grad_norm/model.{layer}"] = gn * np.exp(rng.normal(0, 1)) / max(layers, 1)
    return cast_steps(pd.DataFrame(df))


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 10_000, f"{path} is suspiciously small ({len(data)} bytes)"
    # IHDR: width and height of a real figure
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 500 and height >= 300


def test_plot_run_writes_all_pngs(tmp_path):
    run = tmp_path / "exp"
    ParquetParts(run / "telemetry" / "steps").append(synthetic_steps(layers=6))
    paths = plot_run(run)
    names = sorted(p.name for p in paths)
    assert names == ["grad_norm.png", "layer_grad_norm.png", "losses.png", "lr_momentum.png", "update_ratio.png"]
    for p in paths:
        assert p.parent == run / "telemetry"
        assert_png(p)


def test_plot_run_accepts_the_telemetry_folder_and_multiple_parts(tmp_path):
    df = synthetic_steps()
    parts = ParquetParts(tmp_path / "exp" / "telemetry" / "steps")
    parts.append(df.iloc[:25])
    parts.append(df.iloc[25:])
    paths = plot_run(tmp_path / "exp" / "telemetry")
    assert len(paths) == 4  # no layer heat map below level 'full'
    for p in paths:
        assert_png(p)


def test_plot_without_clip_or_update_columns(tmp_path):
    paths = plot_steps(synthetic_steps(clip=None, update=False), tmp_path, "noclip")
    assert sorted(p.name for p in paths) == ["grad_norm.png", "losses.png", "lr_momentum.png"]
    for p in paths:
        assert_png(p)


def _saved_figures(monkeypatch) -> dict:
    """File name -> the Figure saved under it, for every figure saved while the test runs."""
    from matplotlib.figure import Figure

    saved, save = {}, Figure.savefig

    def record(fig, path, *args, **kwargs):
        saved[Path(path).name] = fig
        return save(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return saved


def _line(ax, label: str):
    return next(line for line in ax.get_lines() if line.get_label() == label)


def test_plot_keeps_latest_attempt_only(tmp_path, monkeypatch):
    """Steps 5-9 were redone (a NaN recovery or OOM retry): only the redone rows are plotted, exactly."""
    df = synthetic_steps(n_epochs=1, per_epoch=10)
    redo = df.iloc[5:].copy()
    redo["attempt"] = 1
    redo["lr/weight"] = [0.5, 0.4, 0.3, 0.2, 0.1]
    redo["grad_norm"] = [50.0, 40.0, 30.0, 20.0, 10.0]
    saved = _saved_figures(monkeypatch)
    paths = plot_steps(pd.concat([df, redo], ignore_index=True), tmp_path)
    assert len(paths) == 4

    lr = _line(saved["lr_momentum.png"].axes[0], "weight")
    assert lr.get_xdata().tolist() == list(range(10))
    assert lr.get_ydata().tolist() == [*df["lr/weight"].iloc[:5], 0.5, 0.4, 0.3, 0.2, 0.1]
    gn = _line(saved["grad_norm.png"].axes[0], "global (pre-clip)")
    assert gn.get_xdata().tolist() == list(range(10))
    assert gn.get_ydata().tolist() == [*df["grad_norm"].iloc[:5], 50.0, 40.0, 30.0, 20.0, 10.0]


def test_empty_run_writes_nothing(tmp_path):
    assert plot_run(tmp_path) == []


@pytest.mark.parametrize("n", [1, 2])
def test_tiny_tables(tmp_path, n):
    paths = plot_steps(synthetic_steps(n_epochs=1, per_epoch=n), tmp_path)
    assert paths
    for p in paths:
        assert p.read_bytes()[:8] == PNG_MAGIC

"""Observe-only mode: recording an unchanged Ultralytics training does not change it."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from conftest import tiny_train_args
from test_attach import StepLog, _results, _same_weights, _yolo

import yolo_gd
from yolo_gd.telemetry.recorder import read_steps

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("optimizer", ["SGD", "auto"])
def test_observe_only_is_bit_identical_and_records_every_step(tiny_data, tmp_path, optimizer):
    # warmup 2 of 3 epochs with nbs 16 / batch 8: the host ramps accumulate 1 -> 2 and steps 12 times, not 9
    args = dict(epochs=3, warmup_epochs=2, optimizer=optimizer)
    runs = {}
    for mode in ("plain", "observed"):
        model, log = _yolo(), StepLog()
        if mode == "observed":
            yolo_gd.attach(model)
        log.watch(model)
        model.train(**tiny_train_args(tiny_data, tmp_path, mode, **args))
        runs[mode] = (model.trainer, log.rows)
    (plain, log_plain), (observed, _) = runs["plain"], runs["observed"]
    assert _same_weights(plain.model, observed.model) and _same_weights(plain.ema.ema, observed.ema.ema)
    pd.testing.assert_frame_equal(_results(plain), _results(observed))  # results.csv untouched, same values

    steps = read_steps(observed.save_dir / "telemetry")
    assert len(steps) == plain.ema.updates == len(log_plain) == 12
    assert steps["step"].tolist() == list(range(12))
    lr_cols = [c for c in steps.columns if c.startswith("lr/")]
    assert [tuple(row) for row in steps[lr_cols].itertuples(index=False)] == [r[1] for r in log_plain]
    chosen = type(plain.optimizer).__name__  # optimizer=auto picks AdamW for this short run
    assert set(steps["optimizer"]) == {chosen}
    assert (steps["clip"] == 10.0).all() and steps["grad_norm"].gt(0).all()


def test_observe_only_refuses_step_options():
    with pytest.raises(yolo_gd.UserError, match="pass optimizer="):
        yolo_gd.attach(_yolo(), schedule="cosine")

"""The tracker sinks against the real packages, offline: MLflow on a sqlite store in tmp_path, W&B in offline mode,
both read back from what the tracker stored. No training here (tests/test_trackers.py trains)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from conftest import require
from wandb_records import history_rows
from yolo_gd.telemetry.schema import cast_steps
from yolo_gd.telemetry.tracker_sinks import (STEP_AXIS, MlflowSink, WandbSink, clearml_names, series,
                                            tracker_columns)


def _table(steps=(0, 1, 2), start=0) -> pd.DataFrame:
    """A step table as the recorder flushes it (host columns, then device columns)."""
    n = len(steps)
    df = pd.DataFrame({
        "step": list(steps), "epoch": [0] * n, "batch": [2 * s + 1 for s in steps],
        "batch_in_epoch": [2 * s + 1 for s in steps], "images_seen": [8 * (s + 1) for s in steps],
        "time": [0.5 + s for s in steps], "attempt": [0] * n, "optimizer": ["SGD"] * n, "clip": [10.0] * n,
        "lr/weight": [1e-3 * (s + 1) for s in steps], "momentum/weight": [0.9] * n,
        "loss_backprop": [3.0 - s for s in steps], "loss/box_loss": [1.25 + start] * n,
        "grad_norm": [0.1 + s for s in steps], "clipped": [s % 2 == 1 for s in steps],
        "grad_norm/weight": [0.05 + s for s in steps], "layer_grad_norm/model.0": [0.01] * n,
    })
    return cast_steps(df)


def test_series_keys_skip_bookkeeping_and_keep_axes():
    keys, steps, values = series(_table())
    assert keys == ["yolo_gd/epoch", "yolo_gd/images_seen", "yolo_gd/lr/weight", "yolo_gd/momentum/weight",
                    "yolo_gd/loss_backprop", "yolo_gd/loss/box_loss", "yolo_gd/grad_norm", "yolo_gd/clipped",
                    "yolo_gd/grad_norm/weight"]
    assert steps.tolist() == [0, 1, 2]
    assert values[:, keys.index("yolo_gd/clipped")].tolist() == [0.0, 1.0, 0.0]
    assert values[:, keys.index("yolo_gd/images_seen")].tolist() == [8.0, 16.0, 24.0]
    assert "layer_grad_norm/model.0" in tracker_columns(_table(), layers=True)


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    """One sqlite store (MLflow's default kind) for the module: creating one runs its migrations (~4 s here)."""
    mlflow = require("mlflow")
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    return uri, mlflow.tracking.MlflowClient(uri)


def _mlflow_run(store):
    uri, client = store
    run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    return uri, client, run.info.run_id


def test_mlflow_sink_writes_every_row_on_the_step_axis(mlflow_store):
    uri, client, run_id = _mlflow_run(mlflow_store)
    reports = []
    sink = MlflowSink(run_id, uri, reports.append, wall_origin=1000.0)
    first, second = _table((0, 1, 2)), _table((3, 4))
    sink.write(first)
    sink.write(second)
    both = pd.concat([first, second], ignore_index=True)
    for column in ("grad_norm", "lr/weight", "loss/box_loss", "images_seen", "clipped"):
        history = sorted(client.get_metric_history(run_id, f"yolo_gd/{column}"), key=lambda m: m.step)
        assert [m.step for m in history] == both["step"].tolist()
        assert [m.value for m in history] == both[column].astype("float64").tolist()
    history = sorted(client.get_metric_history(run_id, "yolo_gd/grad_norm"), key=lambda m: m.step)
    assert [m.timestamp for m in history] == [int((1000.0 + t) * 1000) for t in both["time"]]
    assert reports == []


def test_mlflow_sink_labels_the_run(mlflow_store):
    uri, client, run_id = _mlflow_run(mlflow_store)
    MlflowSink(run_id, uri, pytest.fail).label({"optimizer": "sgd"}, {"yolo_gd.sweep": "sw"})
    run = client.get_run(run_id)
    assert run.data.params == {"yolo_gd.optimizer": "sgd"} and run.data.tags["yolo_gd.sweep"] == "sw"


def test_mlflow_sink_reports_a_deleted_run_once_and_stops(mlflow_store):
    uri, client, run_id = _mlflow_run(mlflow_store)
    client.delete_run(run_id)
    reports = []
    sink = MlflowSink(run_id, uri, reports.append)
    sink.write(_table((0, 1)))
    sink.write(_table((2, 3)))  # stopped: neither tried again nor reported again
    assert len(reports) == 1 and "\n" not in reports[0]
    assert reports[0].startswith("yolo_gd: MLflow per-step logging stopped (MlflowException: ")
    assert sink.failed


def test_mlflow_sink_reports_an_unreachable_server_once(monkeypatch):
    require("mlflow")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    reports = []
    sink = MlflowSink("0" * 32, "http://127.0.0.1:9", reports.append)  # port 9 (discard): nothing listens
    sink.write(_table((0,)))
    sink.write(_table((1,)))
    assert len(reports) == 1 and "\n" not in reports[0]
    assert reports[0].startswith("yolo_gd: MLflow per-step logging stopped (")


def test_wandb_sink_offline_rows_read_back_from_the_run_file(tmp_path, monkeypatch):
    wandb = require("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = wandb.init(project="sinks", dir=str(tmp_path), config={"a": 1})
    reports = []
    try:
        sink = WandbSink(run, reports.append)
        sink.write(_table((0, 1, 2)))
        sink.write(_table((3,), start=1))
    finally:
        run.finish()
    assert reports == []
    rows = [r for r in history_rows(tmp_path) if STEP_AXIS in r]
    both = pd.concat([_table((0, 1, 2)), _table((3,), start=1)], ignore_index=True)
    assert [r[STEP_AXIS] for r in rows] == both["step"].tolist()
    for column in ("grad_norm", "lr/weight", "loss/box_loss", "epoch", "images_seen"):
        assert [r[f"yolo_gd/{column}"] for r in rows] == both[column].astype("float64").tolist()


def test_mlflow_sink_skips_an_empty_frame_and_nan_is_a_value(mlflow_store):
    uri, client, run_id = _mlflow_run(mlflow_store)
    sink = MlflowSink(run_id, uri, pytest.fail)
    sink.write(_table(()))
    assert client.get_metric_history(run_id, "yolo_gd/grad_norm") == []
    df = _table((0,))
    df["momentum/weight"] = np.nan  # an optimizer without momentum
    sink.write(df)
    (point,) = client.get_metric_history(run_id, "yolo_gd/momentum/weight")
    assert math.isnan(point.value)


def test_clearml_names_put_a_family_in_one_plot():
    assert clearml_names("yolo_gd/grad_norm") == ("yolo_gd/grad_norm", "grad_norm")
    assert clearml_names("yolo_gd/grad_norm/weight") == ("yolo_gd/grad_norm", "weight")
    assert clearml_names("yolo_gd/lr/weight") == ("yolo_gd/lr", "weight")
    assert clearml_names("yolo_gd/layer_grad_norm/model.0.conv") == ("yolo_gd/layer_grad_norm", "model.0.conv")

"""Parquet parts, the epoch CSV, TensorBoard and the column schema the sink casts with."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from conftest import require
from yolo_gd.telemetry.schema import EPOCH_COLUMNS, SCHEMA_DOC, STEP_COLUMNS, cast_steps, column_spec
from yolo_gd.telemetry.sinks import (
    ParquetParts,
    TensorBoardSink,
    append_epoch,
    read_epochs,
    read_steps,
    telemetry_dir,
    truncate_epochs,
)


def table(steps, attempt=0, **extra) -> pd.DataFrame:
    steps = list(steps)
    df = pd.DataFrame({"step": steps, "epoch": [s // 4 for s in steps], "attempt": [attempt] * len(steps),
                       "grad_norm": np.arange(len(steps), dtype="float32") + 1, "clipped": [1.0] * len(steps),
                       **extra})
    return cast_steps(df)


def test_parts_are_read_in_numeric_order(tmp_path):
    parts = ParquetParts(tmp_path)
    for chunk in range(12):  # part-00010 must come after part-00009, not after part-00001
        parts.append(table(range(chunk * 2, chunk * 2 + 2)))
    assert [p.name for p in parts.paths()][-3:] == ["part-00009.parquet", "part-00010.parquet", "part-00011.parquet"]
    assert parts.read()["step"].tolist() == list(range(24))


def test_append_is_atomic_and_leaves_no_temp_files(tmp_path):
    parts = ParquetParts(tmp_path)
    assert parts.append(table([])) is None
    path = parts.append(table([0, 1]))
    assert path.name == "part-00000.parquet"
    assert sorted(os.listdir(tmp_path)) == ["part-00000.parquet"]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    parts = ParquetParts(tmp_path)
    parts.append(table([0]))

    def boom(self, path, *a, **k):
        open(path, "wb").write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    with pytest.raises(OSError):
        parts.append(table([1]))
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["part-00000.parquet"]
    assert parts.read()["step"].tolist() == [0]


def test_read_types_follow_the_schema(tmp_path):
    ParquetParts(tmp_path / "telemetry" / "steps").append(table([0, 1]))
    df = read_steps(tmp_path)
    assert df["step"].dtype == "int64" and df["clipped"].dtype == bool and df["grad_norm"].dtype == "float32"
    assert telemetry_dir(tmp_path) == tmp_path / "telemetry"
    assert telemetry_dir(tmp_path / "telemetry") == tmp_path / "telemetry"


def test_read_steps_of_a_missing_run_is_empty(tmp_path):
    assert read_steps(tmp_path / "nothing").empty
    assert read_epochs(tmp_path / "nothing").empty


def test_truncate_after_rewrites_and_deletes_parts(tmp_path):
    parts = ParquetParts(tmp_path)
    for chunk in ([0, 1, 2], [3, 4, 5], [6, 7]):
        parts.append(table(chunk))
    assert parts.truncate_after(4) == 0
    assert [p.name for p in parts.paths()] == ["part-00000.parquet", "part-00001.parquet"]
    assert parts.read()["step"].tolist() == [0, 1, 2, 3]
    parts.append(table([4, 5]))  # the next part numbers on after the survivors
    assert parts.paths()[-1].name == "part-00002.parquet"
    assert parts.read()["step"].tolist() == [0, 1, 2, 3, 4, 5]


def test_truncate_keeps_earlier_attempts(tmp_path):
    parts = ParquetParts(tmp_path / "steps")
    parts.append(table([0, 1, 2, 3, 4]))
    parts.append(table([2, 3, 4, 5], attempt=1))
    assert parts.truncate_after(3) == 1
    df = parts.read()
    assert list(zip(df["step"], df["attempt"])) == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (2, 1)]
    assert read_steps(tmp_path, latest_only=True)["step"].tolist() == [0, 1, 2, 3, 4]  # a telemetry folder itself
    assert read_steps(tmp_path, latest_only=True)["attempt"].tolist() == [0, 0, 1, 0, 0]


def test_epoch_csv_append_and_truncate(tmp_path):
    path = tmp_path / "epochs.csv"
    append_epoch(path, {"epoch": 0, "last_step": 3, "lr/weight": 0.01})
    append_epoch(path, {"epoch": 1, "last_step": 7, "lr/weight": 0.005})
    df = read_epochs(tmp_path)
    assert df["epoch"].tolist() == [0, 1] and df["lr/weight"].tolist() == [0.01, 0.005]
    truncate_epochs(path, 5)
    assert read_epochs(tmp_path)["epoch"].tolist() == [0]
    truncate_epochs(tmp_path / "missing.csv", 0)  # no file: nothing to do


def test_every_recorded_column_has_a_schema_entry():
    names = ["step", "epoch", "batch", "batch_in_epoch", "images_seen", "time", "attempt", "clip", "lr/weight",
             "momentum/bias:x3", "optimizer", "loss_backprop", "loss/box_loss", "loss_sum", "grad_norm", "clipped",
             "clip_coef",
             "grad_norm/bn", "param_norm/weight", "update_norm/bias", "update_ratio/bias", "amp_scale", "skipped",
             "nonfinite", "nonfinite_count", "layer_grad_norm/model.23.cv3"]
    for name in names:
        assert column_spec(name) is not None, name
    assert column_spec("grad_norm").pattern == "grad_norm"  # exact names win over 'grad_norm/<group>'
    assert column_spec("grad_norm/weight").pattern == "grad_norm/<group>"
    assert column_spec("loss/box/extra") is None  # a placeholder is one component
    assert column_spec("loss/box_loss_mean", EPOCH_COLUMNS).pattern == "loss/<part>_mean"


def test_cast_steps():
    df = cast_steps(pd.DataFrame({"step": [0.0, 1.0], "skipped": [0.0, np.nan], "clipped": [1.0, 0.0],
                                  "grad_norm": [1.5, 2.5], "lr/w": [0.1, 0.2], "unknown": [1, 2]}))
    assert df["step"].dtype == "int64" and df["step"].tolist() == [0, 1]
    assert df["skipped"].tolist() == [False, False]  # NaN flag (row without after_step) reads False
    assert df["clipped"].tolist() == [True, False]
    assert df["grad_norm"].dtype == "float32" and df["lr/w"].dtype == "float64" and df["unknown"].dtype == "float64"


def test_schema_doc_lists_every_pattern():
    for col in (*STEP_COLUMNS, *EPOCH_COLUMNS):
        assert f"`{col.pattern}`" in SCHEMA_DOC
    assert SCHEMA_DOC.count("| column | dtype |") == 2


def test_tensorboard_sink(tmp_path):
    require("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert TensorBoardSink.available()
    sink = TensorBoardSink(tmp_path)
    df = table([0, 1, 2], **{"layer_grad_norm/model.0": [1.0, 2.0, 3.0]})
    sink.write(df)
    sink.close()
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "grad_norm" in tags and "clipped" in tags
    assert "step" not in tags and "epoch" not in tags and "layer_grad_norm/model.0" not in tags
    assert [(e.step, e.value) for e in acc.Scalars("grad_norm")] == [(0, 1.0), (1, 2.0), (2, 3.0)]

"""StepRecorder's files: Parquet parts per flush, the epoch CSV, TensorBoard, resume truncation, attempts, SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from conftest import require
from test_recorder import FakeRun, check_rows
from yolo_gd.telemetry.recorder import StepRecorder, read_steps
from yolo_gd.telemetry.sinks import read_epochs

REPO = Path(__file__).resolve().parents[1]


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


def test_close_is_idempotent_and_flush_without_steps(tmp_path):
    rec = StepRecorder(tmp_path, tensorboard=False)
    assert rec.flush() is None
    rec.close()
    rec.close()
    assert read_steps(tmp_path).empty


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

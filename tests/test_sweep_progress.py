"""Sweep progress: results.csv read as it grows, the per-trial line, the ETA from epoch times, and a tiny sweep's
printed lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from yolo_gd.ablate.sweep_progress import (Progress, TrialWork, eta_seconds, format_duration, progress_line,
                                     read_progress, seconds_per_epoch)
from yolo_gd.ablate.runner import run_sweep

HEADER = "epoch,time,train/box_loss,metrics/precision(B),metrics/mAP50(B),metrics/mAP50-95(B)\n"


def _results(tmp_path: Path, text: str) -> Path:
    (tmp_path / "results.csv").write_text(text, encoding="utf-8")
    return tmp_path


def test_read_progress_counts_rows_and_takes_the_last_map50(tmp_path):
    d = _results(tmp_path, HEADER + "1,3.1,1.9,0.1,0.25,0.1\n2,6.3,1.7,0.2,0.375,0.2\n")
    assert read_progress(d) == Progress(epochs_done=2, map50=0.375)


def test_ultralytics_padded_columns_are_read(tmp_path):
    # Ultralytics <= 8.2 wrote results.csv with space-padded headers and values
    d = _results(tmp_path, "      epoch,  metrics/mAP50(B)\n          1,           0.5\n")
    assert read_progress(d) == Progress(epochs_done=1, map50=0.5)


@pytest.mark.parametrize("text", [None, "", HEADER])
def test_no_file_or_no_rows_is_no_progress(tmp_path, text):
    d = tmp_path if text is None else _results(tmp_path, text)
    assert read_progress(d) == Progress()


def test_a_half_written_last_row_still_counts_the_rows_before(tmp_path):
    d = _results(tmp_path, HEADER + "1,3.1,1.9,0.1,0.25,0.1\n2,6.3,1.7")
    p = read_progress(d)
    assert p.epochs_done == 2 and p.map50 is None  # the torn row has an epoch but no mAP50 yet


def test_progress_line():
    assert progress_line("sgd-s0", Progress(7, 0.1234), 25, 62.4) == "  sgd-s0  epoch 7/25  mAP50 0.123  1m02s"
    assert progress_line("a", Progress(), None, 3) == "  a  epoch 0/?  mAP50 -  3s"


def test_format_duration():
    assert [format_duration(s) for s in (0, 59.4, 61, 3600, 3725)] == ["0s", "59s", "1m01s", "1h00m00s",
                                                                      "1h02m05s"]


def test_seconds_per_epoch_pools_done_and_running_trials():
    work = [TrialWork("done", 10, 10, 100.0), TrialWork("running", 10, 5, 60.0),
            TrialWork("failed", 10, 3, 999.0), TrialWork("pending", 10, 0, 0.0)]
    assert seconds_per_epoch(work) == 160.0 / 15


def test_eta_before_any_epoch_is_unknown_and_after_one_is_a_number():
    assert eta_seconds([TrialWork("running", 25, 0, 9.0), TrialWork("pending", 25, 0, 0.0)], slots=1) is None
    # first epoch of the first trial took 8 s: 24 + 25 epochs left at 8 s, one slot
    assert eta_seconds([TrialWork("running", 25, 1, 8.0), TrialWork("pending", 25, 0, 0.0)], slots=1) == 49 * 8.0


def test_eta_divides_by_the_slots_the_remaining_trials_can_use():
    work = [TrialWork("running", 4, 2, 20.0), TrialWork("running", 4, 2, 20.0), TrialWork("pending", 4, 0, 0.0)]
    assert eta_seconds(work, slots=2) == (2 + 2 + 4) * 10.0 / 2
    assert eta_seconds(work[:1], slots=4) == 2 * 10.0  # one trial left: it runs on one slot only
    assert eta_seconds([TrialWork("done", 4, 4, 40.0)], slots=2) == 0.0


def test_a_time_budget_counts_its_remaining_seconds():
    hour = 3600.0
    assert eta_seconds([TrialWork("running", None, 3, 600.0, hour), TrialWork("pending", None, 0, 0.0, hour)],
                       slots=1) == 3000.0 + 3600.0


@pytest.mark.slow
def test_a_tiny_sweep_prints_each_epoch_with_a_known_eta(tmp_path, tiny_data):
    spec = tmp_path / "p.yaml"
    spec.write_text(f"name: p\nbase: {{model: yolo11n.yaml, data: '{tiny_data}', imgsz: 64, batch: 8, nbs: 8, "
                    f"plots: false, amp: false, warmup_epochs: 1}}\naxes:\n  optimizer: [sgd]\nseeds: [0]\n"
                    f"budget: {{epochs: 3}}\n", encoding="utf-8")
    lines: list[str] = []
    run_sweep(spec, out_root=tmp_path / "runs", progress=lines.append, status_every=3600, poll_interval=0.1)
    trial = [line for line in lines if line.startswith("  sgd-s0  epoch ")]
    epochs = [int(re.match(r"  sgd-s0  epoch (\d)/3  mAP50 (-|\d\.\d{3})  \d+s$", line).group(1)) for line in trial]
    # a line per finished epoch (the last one may land after the trial has already exited)
    assert epochs[:2] == [1, 2] and set(epochs) <= {1, 2, 3}, lines
    heads = [line for line in lines if re.match(r"\[\d+/1 done", line)]
    after_first_epoch = [h for h, line in zip(lines, lines[1:]) if line.startswith("  sgd-s0  epoch ")]
    assert after_first_epoch and all(not h.endswith("ETA ?") for h in after_first_epoch), lines
    assert heads[-1] == "[1/1 done, 0 running, 0 failed] ETA 0s"


def test_board_prints_when_a_running_trial_finishes_an_epoch(tmp_path, monkeypatch):
    from yolo_gd.ablate.backend import Running
    from yolo_gd.ablate.manifest import Manifest, TrialRecord
    from yolo_gd.ablate.spec import Budget
    from yolo_gd.ablate.sweep_progress import Board

    class FakeSweep:  # what the board reads of a sweep
        budget, tune = Budget(epochs=4), None

    m = Manifest(path=tmp_path / "manifest.json", sweep="s")
    m.trials["a"] = TrialRecord(config="a", seed=0, dir=str(tmp_path / "a"), state="running", elapsed=5.0)
    m.trials["b"] = TrialRecord(config="b", seed=0, dir=str(tmp_path / "b"), state="pending")
    (tmp_path / "a").mkdir()
    monkeypatch.setattr("time.monotonic", lambda: 100.0)
    slots = [Running("a", None, 0, 75.0, "cpu"), None]  # started at 75: 25 s in this attempt, 5 s before
    board = Board(FakeSweep())
    assert not board.advanced(m, slots)
    assert board.lines(m, slots) == ["[0/2 done, 1 running, 0 failed] ETA ?", "  a  epoch 0/4  mAP50 -  30s"]
    _results(tmp_path / "a", HEADER + "1,3.1,1.9,0.1,0.25,0.1\n")
    assert board.advanced(m, slots) and not board.advanced(m, slots)  # once per new epoch
    # 30 s for 1 epoch; 3 + 4 epochs left on the 2 slots, b alone on one of them after a: (7 * 30) / 2
    assert board.lines(m, slots) == ["[0/2 done, 1 running, 0 failed] ETA 1m45s", "  a  epoch 1/4  mAP50 0.250  30s"]

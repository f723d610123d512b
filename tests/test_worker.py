"""The trial worker: its CPU share when trials run side by side, and what it does with a trial folder's state."""

from __future__ import annotations

import torch

from yolo_gd.ablate import worker
from yolo_gd.ablate.processes import THREADS_ENV


def test_share_cpu_sets_the_thread_count_ultralytics_applies(monkeypatch, capsys):
    from ultralytics.utils import torch_utils

    before = torch.get_num_threads()
    monkeypatch.setattr(torch_utils, "NUM_THREADS", 7)
    monkeypatch.setenv(THREADS_ENV, "1")
    try:
        worker.share_cpu()
        assert torch_utils.NUM_THREADS == 1  # select_device (trainer, final evaluation) applies this value
        assert torch.get_num_threads() == 1
        assert "1 CPU thread(s) for this trial" in capsys.readouterr().out
    finally:
        torch.set_num_threads(before)


def test_without_the_variable_ultralytics_keeps_its_own_count(monkeypatch):
    from ultralytics.utils import torch_utils

    monkeypatch.setattr(torch_utils, "NUM_THREADS", 7)
    monkeypatch.delenv(THREADS_ENV, raising=False)
    worker.share_cpu()
    assert torch_utils.NUM_THREADS == 7


def test_a_finished_trial_is_not_trained_again(tmp_path, capsys):
    (tmp_path / "weights").mkdir()
    torch.save({"epoch": -1}, tmp_path / "weights" / "last.pt")
    assert worker.run_trial({"name": "t", "dir": str(tmp_path), "kwargs": {}}) == "finished"
    assert "already finished" in capsys.readouterr().out


def test_an_unreadable_checkpoint_reads_as_none(tmp_path, capsys):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"PK\x03\x04 torn")
    assert worker.checkpoint_epoch(bad) is None
    assert "is unreadable" in capsys.readouterr().out


def test_tracker_env_labels_the_trial_and_keeps_a_users_wandb_group():
    trial = {"name": "sgd__s0", "sweep": "sw", "config": "sgd", "seed": 0}
    assert worker.tracker_env(trial, {}) == {"YOLO_GD_SWEEP": "sw", "YOLO_GD_SWEEP_CONFIG": "sgd", "YOLO_GD_SWEEP_SEED": "0",
                                      "WANDB_RUN_GROUP": "sw"}
    assert "WANDB_RUN_GROUP" not in worker.tracker_env(trial, {"WANDB_RUN_GROUP": "mine"})
    assert worker.tracker_env({"name": "x"}, {}) == {}

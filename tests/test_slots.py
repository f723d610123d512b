"""Slots: where trials run, the CPU share of trials side by side, who is marked as sharing a device."""

from __future__ import annotations

import pytest

from yolo_gd.ablate.backend import Running
from yolo_gd.ablate.manifest import Manifest, TrialRecord
from yolo_gd.ablate.slots import cpu_threads, device_slots, mark_shared
from yolo_gd.errors import UserError


def test_device_slots():
    assert device_slots("cpu", 3, 1) == ["cpu", "cpu", "cpu"]
    assert device_slots(None, 1, 1) == ["cpu"]
    with pytest.raises(UserError, match="workers must be a positive integer"):
        device_slots("cpu", 0, 1)
    with pytest.raises(UserError, match="per_device= is for GPUs"):
        device_slots("cpu", 1, 2)
    with pytest.raises(UserError, match="devices must be 'cpu', 'mps' or GPU ids"):
        device_slots("gpu0", 1, 1)
    with pytest.raises(UserError, match="lists a GPU twice"):
        device_slots("0,0", 1, 1)
    with pytest.raises(UserError, match="workers= is for devices=cpu"):
        device_slots("0", 2, 1)
    import torch

    if torch.cuda.device_count() < 2:
        with pytest.raises(UserError, match="not found"):
            device_slots("0,1", 1, 1)
    else:
        assert device_slots("0,1", 1, 2) == ["0", "1", "0", "1"]


def test_cpu_threads_share_the_cores_between_cpu_trials():
    assert cpu_threads(["cpu"], cores=8) is None  # alone: Ultralytics' own min(8, cores - 1)
    assert cpu_threads(["cpu", "cpu"], cores=2) == 1
    assert cpu_threads(["cpu", "cpu"], cores=8) == 4
    assert cpu_threads(["cpu"] * 3, cores=8) == 2
    assert cpu_threads(["cpu"] * 4, cores=2) == 1  # never below one
    assert cpu_threads(["0", "0"], cores=8) is None  # GPU trials: not ours to set


def test_mark_shared_marks_the_new_trial_and_those_already_running(tmp_path):
    m = Manifest(path=tmp_path / "manifest.json", sweep="s")
    for n in ("a", "b", "c"):
        m.trials[n] = TrialRecord(config=n, seed=0, dir=str(tmp_path / n))
    mark_shared(m, "a", [])
    assert [t.shared_device for t in m.trials.values()] == [False, False, False]
    mark_shared(m, "b", [Running("c", None, 0, 0.0, "cpu")])
    assert [t.shared_device for t in m.trials.values()] == [False, True, True]

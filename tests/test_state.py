"""The per-epoch state files: atomic, weights_only-loadable, pruned to what a checkpoint can need."""

from __future__ import annotations

import pytest
import torch

from yolo_gd.errors import UserError
from yolo_gd.inject.state import keep_epochs, read_state, saved_epochs, state_file, write_state


def _optimizer():
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = torch.tensor([1.0, 2.0, 3.0])
    opt.step()
    return opt


def test_round_trip_keeps_fp32_state_and_loads_weights_only(tmp_path):
    opt = _optimizer()
    write_state(tmp_path, 4, {"steps": 17, "optimizer": opt.state_dict(), "fingerprint": {"optimizer": "sgd"}})
    assert not list(tmp_path.rglob("*.tmp"))
    state = read_state(tmp_path, 4)  # torch.load(weights_only=True): plain data only
    assert state["steps"] == 17 and state["epoch"] == 4
    buf = state["optimizer"]["state"][0]["momentum_buffer"]
    assert buf.dtype == torch.float32 and torch.equal(buf, torch.tensor([1.0, 2.0, 3.0]))


def test_a_state_holding_code_is_refused(tmp_path):
    write_state(tmp_path, 0, {"steps": 1, "evil": _optimizer})  # a function: not plain data
    with pytest.raises(Exception, match="Weights only load failed"):
        read_state(tmp_path, 0)


def test_pruning_keeps_the_last_two_and_every_save_period_epoch(tmp_path):
    for epoch in range(7):
        write_state(tmp_path, epoch, {"steps": epoch}, save_period=3)
    assert saved_epochs(tmp_path) == [0, 3, 5, 6]
    assert keep_epochs([0, 1, 2, 3], latest=3, save_period=-1) == {2, 3}
    assert read_state(tmp_path)["steps"] == 6  # the newest when no epoch is named
    assert read_state(tmp_path, 3)["steps"] == 3


def test_missing_state_names_what_exists(tmp_path):
    with pytest.raises(UserError, match="has none"):
        read_state(tmp_path, 0)
    write_state(tmp_path, 2, {"steps": 0})
    with pytest.raises(UserError, match=r"state for epoch 1 .* states for epochs \[2\]"):
        read_state(tmp_path, 1)
    assert state_file(tmp_path, 2).exists()

"""The fp32 state file beside last.pt: atomic, and refused when stale or foreign."""

from __future__ import annotations

import pytest
import torch

from yolo_gd.errors import UserError
from yolo_gd.inject.state import StepCounters, load_state, save_state


def _optimizer():
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = torch.tensor([1.0, 2.0, 3.0])
    opt.step()
    return opt


def test_round_trip_keeps_fp32_state(tmp_path):
    opt, path = _optimizer(), tmp_path / "state.pt"
    save_state(path, epoch=4, counters=StepCounters(17, 40), optimizer=opt, fingerprint={"optimizer": "sgd"})
    assert not (tmp_path / "state.pt.tmp").exists()
    state = load_state(path, epoch=4, fingerprint={"optimizer": "sgd"}, allow_change=False)
    assert (state["steps"], state["last_step_batch"]) == (17, 40)
    buf = state["optimizer"]["state"][0]["momentum_buffer"]
    assert buf.dtype == torch.float32 and torch.equal(buf, torch.tensor([1.0, 2.0, 3.0]))


def test_refusals(tmp_path):
    path = tmp_path / "state.pt"
    with pytest.raises(UserError, match="is missing"):
        load_state(path, epoch=0, fingerprint={}, allow_change=False)
    save_state(path, epoch=2, counters=StepCounters(), optimizer=_optimizer(), fingerprint={"optimizer": "sgd"})
    with pytest.raises(UserError, match="belongs to epoch 2 but the checkpoint is from epoch 3"):
        load_state(path, epoch=3, fingerprint={"optimizer": "sgd"}, allow_change=False)
    with pytest.raises(UserError, match="resume would change the run"):
        load_state(path, epoch=2, fingerprint={"optimizer": "adamw"}, allow_change=False)
    assert load_state(path, epoch=2, fingerprint={"optimizer": "adamw"}, allow_change=True)["epoch"] == 2

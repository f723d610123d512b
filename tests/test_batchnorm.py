"""batchnorm_kept: a training-mode forward inside it leaves every running statistic exactly as it was."""

import pytest
import torch
from torch import nn

from yolo_gd.inject.batchnorm import batchnorm_kept


def test_running_statistics_and_counters_come_back_exactly_also_after_an_error():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm2d(4)))
    model(torch.randn(2, 3, 8, 8))  # statistics away from their initial values
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}
    with batchnorm_kept(model):
        model(torch.randn(2, 3, 8, 8) * 5)
        assert not torch.equal(model[1].running_mean, before["1.running_mean"])  # the forward did move them
    with pytest.raises(RuntimeError), batchnorm_kept(model):
        model(torch.randn(2, 3, 8, 8))
        raise RuntimeError("a failed forward")
    after = {k: v for k, v in model.state_dict().items() if k in before}
    assert all(torch.equal(after[k], before[k]) for k in before) and len(before) == 6

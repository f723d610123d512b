"""Schedules from outside the catalogue: Ultralytics' own two bit for bit, torch lr_schedulers, user callables."""

from __future__ import annotations

import math
import pickle
import warnings

import pytest
import torch

from conftest import require
from test_schedules import PLAIN, RAMP, at
from yolo_gd.errors import UserError
from yolo_gd.optim.progress import Progress
from yolo_gd.optim.schedule_registry import get_schedule
from yolo_gd.optim.schedules import from_callable, from_torch, step, trace, ul_cosine, ul_linear


def half(progress: Progress) -> float:
    """A module-level (so picklable) user schedule."""
    return 0.5


# ---------------------------------------------------------------------------------------------- Ultralytics parity


def test_ul_hand_values():
    # PLAIN: 4 epochs, 25 steps each; flat within an epoch.
    lin = [ul_linear()(at(k)) for k in (0, 24, 25, 50, 75, 99)]
    assert lin == pytest.approx([1.0, 1.0, 0.7525, 0.505, 0.2575, 0.2575], abs=1e-15)
    cos = [ul_cosine()(at(k)) for k in (0, 25, 50, 75)]
    expected = [1.0, 1 - 0.99 * (1 - math.cos(math.pi / 4)) / 2, 0.505, 1 - 0.99 * (1 - math.cos(3 * math.pi / 4)) / 2]
    assert cos == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("epochs", [1, 3, 10, 300])
@pytest.mark.parametrize("lrf", [0.01, 0.1, 0.5, 1.0])
def test_ul_schedules_equal_ultralytics_bit_for_bit(epochs, lrf):
    require("ultralytics")
    from ultralytics.utils.torch_utils import one_cycle as ul_one_cycle

    ul_cos = ul_one_cycle(1, lrf, epochs)  # trainer._setup_scheduler, cos_lr=True

    def ul_lin(x):  # trainer._setup_scheduler, cos_lr=False
        return max(1 - x / epochs, 0) * (1.0 - lrf) + lrf

    lr0 = 0.01
    for ours, lf in ((ul_linear(lrf), ul_lin), (ul_cosine(lrf), ul_cos)):
        # As the trainer drives it: LambdaLR, last_epoch = start_epoch - 1, one .step() at each epoch start.
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda=lf)
        sched.last_epoch = -1
        for e in range(epochs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sched.step()
            for batch in (e * 7, e * 7 + 6):  # first and last batch of the epoch: flat within it
                p = Progress(step=batch, total_steps=7 * epochs, batch=batch, batches_per_epoch=7, epochs=epochs)
                assert ours(p) == lf(e)
                assert lr0 * ours(p) == opt.param_groups[0]["lr"]


# ---------------------------------------------------------------------------------------------- adapters


def test_from_torch_step_lr_matches_a_real_step_lr():
    s = from_torch(torch.optim.lr_scheduler.StepLR, step_size=3, gamma=0.5)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    ref = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    expected = []
    for _ in range(12):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert trace(s, RAMP) == expected == [1.0] * 3 + [0.5] * 3 + [0.25] * 3 + [0.125] * 3
    assert s(at(10, RAMP)) == 0.125 and s(at(1, RAMP)) == 1.0  # out of order: cached
    back = pickle.loads(pickle.dumps(s))  # rebuilt and replayed lazily
    assert back == s and trace(back, RAMP) == expected
    assert get_schedule(torch.optim.lr_scheduler.StepLR, step_size=3, gamma=0.5) == s
    assert get_schedule("torch.optim.lr_scheduler:StepLR", step_size=3, gamma=0.5) == s
    assert repr(s) == "from_torch(torch.optim.lr_scheduler.StepLR, step_size=3, gamma=0.5)"


def test_from_torch_errors():
    with pytest.raises(UserError, match="ReduceLROnPlateau steps on a validation metric"):
        from_torch(torch.optim.lr_scheduler.ReduceLROnPlateau)
    with pytest.raises(UserError, match="is not a torch.optim.lr_scheduler class"):
        from_torch(dict)
    with pytest.raises(UserError, match=r"StepLR\(optimizer, \*\*\{\}\) failed: .*step_size"):
        from_torch(torch.optim.lr_scheduler.StepLR)
    over = from_torch(torch.optim.lr_scheduler.OneCycleLR, max_lr=1.0, total_steps=5)
    with pytest.raises(UserError, match="cannot reach step"):
        over(Progress(step=8, total_steps=9, batch=8, batches_per_epoch=9, epochs=1))


def test_from_callable():
    s = get_schedule(half)
    assert s == from_callable(half) and s(at(3)) == 0.5
    assert pickle.loads(pickle.dumps(s)) == s
    with pytest.raises(UserError, match="is not callable"):
        from_callable(3)
    with pytest.raises(UserError, match="returned -1 at step 0: an LR multiplier must be a finite number >= 0"):
        from_callable(lambda p: -1)(at(0))
    with pytest.raises(UserError, match="returned nan"):
        from_callable(lambda p: float("nan"))(at(0))
    with pytest.raises(UserError, match="takes no options"):
        get_schedule(half, end=0.1)
    assert from_callable(step("1ep")).bind(PLAIN) == from_callable(step(25))  # a wrapped schedule is bound

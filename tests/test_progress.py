"""Cadence reproduces Ultralytics' step rule, the warmup accumulate ramp included."""

from __future__ import annotations

import numpy as np
import pytest

from yolo_gd.optim.progress import Cadence, Progress


def host_loop_steps(nb: int, epochs: int, acc0: int, nw: int) -> list[int]:
    """The host loop's decision, transcribed from engine/trainer.py 519-604 (no OOM/NaN paths)."""
    steps, last, accumulate = [], -1, acc0
    for epoch in range(epochs):
        for i in range(nb):
            ni = i + nb * epoch
            if nw and ni <= nw:
                accumulate = max(1, int(np.interp(ni, [0, nw], [1, acc0]).round()))
            if ni - last >= accumulate:
                steps.append(ni)
                last = ni
    return steps


@pytest.mark.parametrize("nb, epochs, acc0, nw", [(6, 3, 2, 12), (6, 4, 4, 6), (10, 3, 4, 20), (7, 2, 1, 0),
                                                  (5, 5, 8, 13), (3, 2, 3, 0)])
def test_cadence_matches_the_host_loop(nb, epochs, acc0, nw):
    cadence = Cadence(nb, epochs, acc0, nw)
    assert list(cadence.step_batches) == host_loop_steps(nb, epochs, acc0, nw)
    assert cadence.total_steps == len(cadence.step_batches)


def test_hand_counted_example():
    # 10 batches/epoch, accumulate 4, warmup 20 batches: 1 + 3*ni/20 rounded half-to-even gives the ramp
    # 1,1,1,1,2,2,2,2,2,2,2(ni=10: 2.5 -> 2),3,3,3,3,3,3,4,4,4,4 for ni 0..20
    cadence = Cadence(10, 3, 4, 20)
    assert [cadence.accumulate_at(ni) for ni in range(21)] == [1] * 4 + [2] * 7 + [3] * 6 + [4] * 4
    assert cadence.step_batches == (0, 1, 2, 3, 5, 7, 9, 12, 15, 19, 23, 27)
    assert cadence.steps_before_epoch(1) == 7 and cadence.steps_before_epoch(2) == 10
    assert cadence.steps_before_epoch(0.5) == 4


def test_progress_epoch_and_fraction():
    p = Progress(step=3, total_steps=12, batch=13, batches_per_epoch=6, epochs=3)
    assert p.epoch == 2 and p.fraction == 0.25

"""Cadence reproduces Ultralytics' step rule, the warmup accumulate ramp included."""

from __future__ import annotations

from yolo_gd.optim.progress import Cadence, Progress


# That Cadence reproduces the host loop's own step decisions is tested against Ultralytics' real loop (not a
# transcription of it) in tests/test_attach.py::test_injection_is_bit_identical_to_native.


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


def test_a_restarted_loop_steps_alike_only_where_no_window_crosses_the_epoch():
    """The host restarts with no step taken (last = -1) and so steps at once: alike with accumulate 1, not with 2
    (the uninterrupted run's window 6-7 becomes a step at 6 alone)."""
    assert all(Cadence(6, 3, 1, 0).restarts_alike(e) for e in (1, 2))
    assert not Cadence(6, 3, 2, 0).restarts_alike(1)
    assert Cadence(6, 3, 2, 0).restarts_alike(0)

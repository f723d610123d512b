"""resume=True epochs=N: a finished or interrupted injected run continues to N epochs with the rest of its
schedule stretched; the LR is continuous at the switch and ends at the schedule's final value; plans are recorded."""

from __future__ import annotations

import math

import pytest
import yaml
from conftest import tiny_train_args

import yolo_gd
from yolo_gd.errors import UserError
from yolo_gd.telemetry.sinks import read_steps

pytestmark = pytest.mark.slow


def _yolo(source="yolo11n.yaml"):
    from ultralytics import YOLO

    return YOLO(source)


@pytest.fixture(scope="module")
def finished(tiny_data, tmp_path_factory):
    model = _yolo()
    yolo_gd.attach(model, "sgd", schedule="cosine", lr=0.01, warmup=0, schedule_kwargs={"end": 0.05})
    model.train(**tiny_train_args(tiny_data, tmp_path_factory.mktemp("extend"), "run", epochs=3, nbs=8))
    return model.trainer


def test_a_finished_run_is_extended_continuously(finished):
    before = read_steps(finished.save_dir, latest_only=True)
    model = _yolo(str(finished.last))
    yolo_gd.attach(model, "sgd")  # schedule, lr and warmup come back from the run
    model.train(resume=True, epochs=5)
    trainer = model.trainer
    steps = read_steps(trainer.save_dir, latest_only=True)
    lr = steps["lr/weight"].tolist()
    s0 = len(before)
    assert trainer.epoch == 4 and len(steps) == trainer._yolo_gd_run.cadence.total_steps == 30  # 6 x 5, nbs 8
    assert lr[:s0] == before["lr/weight"].tolist()  # history kept
    # Continuous: the first new step's LR is where the old schedule stood at that step, nothing jumps.
    old_jump = max(abs(a - b) for a, b in zip(lr[1:s0], lr[: s0 - 1]))
    assert abs(lr[s0] - lr[s0 - 1]) <= old_jump
    # The old decay was complete: the stretched rest is its final value, held (rule in inject/extend.py).
    assert lr[s0:] == [pytest.approx(0.01 * 0.05, rel=1e-12)] * (30 - s0)
    plans = yaml.safe_load((trainer.save_dir / "yolo_gd_run.yaml").read_text())["plans"]
    assert [(p["from_step"], p["epochs"]) for p in plans] == [(0, 3), (18, 5)]


def _cosine(fraction: float) -> float:
    return 0.01 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * fraction)))


def test_an_interrupted_run_is_extended_with_the_rest_of_its_decay_stretched(tiny_data, tmp_path):
    model = _yolo()
    yolo_gd.attach(model, "sgd", schedule="cosine", lr=0.01, warmup=0, schedule_kwargs={"end": 0.05})

    def stop(trainer):
        if trainer.epoch == 2:
            raise KeyboardInterrupt

    model.add_callback("on_train_epoch_start", stop)
    with pytest.raises(KeyboardInterrupt):
        model.train(**tiny_train_args(tiny_data, tmp_path, "run", epochs=4, nbs=8))  # 24 steps planned
    resumed = _yolo(str(model.trainer.last))
    yolo_gd.attach(resumed, "sgd")
    resumed.train(resume=True, epochs=6)  # 36 steps: the 12 left of the old plan are stretched over 24
    lr = read_steps(resumed.trainer.save_dir, latest_only=True)["lr/weight"].tolist()
    assert len(lr) == 36
    assert lr[:12] == pytest.approx([_cosine(k / 24) for k in range(12)], rel=1e-12)
    assert lr[12:] == pytest.approx([_cosine((12 + (k - 12) * 12 / 24) / 24) for k in range(12, 36)], rel=1e-12)


def test_extending_to_fewer_epochs_is_refused(finished):
    model = _yolo(str(finished.last))
    yolo_gd.attach(model, "sgd")
    with pytest.raises(UserError, match="does not extend the run"):
        model.train(resume=True, epochs=2)

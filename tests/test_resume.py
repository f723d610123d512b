"""Resume checks: the fingerprint refuses silent changes, allow_resume_change applies and records them, any
epochN.pt resumes, and a crash between yolo_gd's state and the host's checkpoint still leaves a resumable pair."""

from __future__ import annotations

import pytest
import yaml
from conftest import tiny_train_args

import yolo_gd
from yolo_gd.errors import UserError
from yolo_gd.inject.state import read_state, saved_epochs

pytestmark = pytest.mark.slow


class Interrupt(Exception):
    pass


def _yolo(source="yolo11n.yaml"):
    from ultralytics import YOLO

    return YOLO(source)


def _interrupted(tiny_data, tmp_path, name, *, event="on_train_epoch_start", at=2, **options):
    model = _yolo()
    yolo_gd.attach(model, **{"optimizer": "sgd", **options})

    def stop(trainer):
        if trainer.epoch == at:
            raise Interrupt

    model.add_callback(event, stop)
    with pytest.raises(Interrupt):
        model.train(**tiny_train_args(tiny_data, tmp_path, name, epochs=4, save_period=1))
    return model.trainer


@pytest.fixture(scope="module")
def stopped(tiny_data, tmp_path_factory):
    """An sgd run (lr 0.01) killed at the start of epoch 2: last.pt is epoch 1; epoch0.pt and epoch1.pt exist."""
    return _interrupted(tiny_data, tmp_path_factory.mktemp("resume"), "run", lr=0.01)


def _start_state(model):
    seen = {}
    model.add_callback("on_train_start", lambda t: seen.update(
        start_epoch=t.start_epoch, steps=t._yolo_gd_run.counters.steps, lr=t.optimizer.param_groups[0]["initial_lr"],
        state=len(t.optimizer.state)))
    return seen


@pytest.mark.parametrize("key, value, old", [("lr", 0.02, 0.01), ("clip", 5.0, 10.0), ("telemetry", "full", "basic"),
                                             ("schedule", "cosine", None), ("lr_decay", 0.8, None),
                                             ("ema", False, True), ("unfreeze_ramp", "2it", "1ep")])
def test_a_changed_value_is_refused_with_one_line(stopped, key, value, old):
    model = _yolo(str(stopped.last))
    yolo_gd.attach(model, "sgd", **{key: value})
    with pytest.raises(UserError, match=rf"resume would change '{key}' from .* allow_resume_change=True") as e:
        model.train(resume=True)
    assert "\n" not in str(e.value)


def test_allow_resume_change_applies_and_records_the_change(stopped, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(stopped.save_dir, run)
    model = _yolo(str(run / "weights" / "last.pt"))
    yolo_gd.attach(model, "sgd", lr=0.02, allow_resume_change=True)
    seen = _start_state(model)
    model.train(resume=True, save_dir=str(run))  # Ultralytics resumes into the checkpoint's save_dir otherwise
    assert seen["lr"] == 0.02 and seen["state"] > 0  # same class and groups: the momentum buffers came back
    record = yaml.safe_load((run / "yolo_gd_run.yaml").read_text())
    change = record["resume_changes"][0]
    assert change["epoch"] == 2 and {"key": "lr", "old": 0.01, "new": 0.02} in change["changes"]
    assert record["starts"] == [{"epoch": 0}, {"epoch": 2}]  # what the report's time to target reads


def test_another_optimizer_class_starts_with_fresh_state(stopped, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(stopped.save_dir, run)
    model = _yolo(str(run / "weights" / "last.pt"))
    yolo_gd.attach(model, "adamw", allow_resume_change=True)
    seen = _start_state(model)
    model.train(resume=True, save_dir=str(run))
    assert seen["state"] == 0 and type(model.trainer.optimizer).__name__ == "AdamW"


def test_options_not_given_on_resume_come_from_the_resumed_run(stopped, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(stopped.save_dir, run)
    model = _yolo(str(run / "weights" / "last.pt"))
    yolo_gd.attach(model, "sgd")  # lr=0.01 was given to the first run and is not repeated
    seen = _start_state(model)
    model.train(resume=True, save_dir=str(run))
    assert seen["lr"] == 0.01 and seen["start_epoch"] == 2


def test_resume_from_an_epoch_checkpoint(stopped, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(stopped.save_dir, run)
    assert {0, 1} <= set(saved_epochs(run / "weights"))
    model = _yolo(str(run / "weights" / "epoch0.pt"))
    yolo_gd.attach(model, "sgd")
    seen = _start_state(model)
    model.train(resume=True, save_dir=str(run))
    assert seen["start_epoch"] == 1 and seen["steps"] == read_state(run / "weights", 0)["steps"]


def test_a_crash_between_the_state_and_the_checkpoint_still_resumes(tiny_data, tmp_path):
    """Killed after yolo_gd wrote epoch 2's state but before the host's last.pt of epoch 2."""
    trainer = _interrupted(tiny_data, tmp_path, "crash", event="on_train_epoch_end", at=2)
    wdir = trainer.wdir
    assert 2 in saved_epochs(wdir)
    import torch

    assert torch.load(wdir / "last.pt", weights_only=False)["epoch"] == 1
    model = _yolo(str(wdir / "last.pt"))
    yolo_gd.attach(model, "sgd")
    seen = _start_state(model)
    model.train(resume=True)
    assert seen["start_epoch"] == 2 and seen["steps"] == read_state(wdir, 1)["steps"]


def test_a_given_ultralytics_key_wins_even_at_its_default(tiny_data, tmp_path):
    """optimizer=adamw lr0=0.01: 0.01 is Ultralytics' default lr0, but it was given, so adamw trains at 0.01."""
    model = _yolo()
    yolo_gd.attach(model, "adamw")
    seen = _start_state(model)
    model.train(**tiny_train_args(tiny_data, tmp_path, "given", epochs=1, lr0=0.01))
    assert seen["lr"] == 0.01
    other = _yolo()
    yolo_gd.attach(other, "adamw")
    seen = _start_state(other)
    other.train(**tiny_train_args(tiny_data, tmp_path, "default", epochs=1))
    assert seen["lr"] == 0.001  # not given: adamw's registry default


def test_another_batch_on_resume_is_refused_in_one_line(stopped):
    """Ultralytics accepts batch= on resume; the injected plan is counted in the old batch size (it used to go on
    silently, taking no optimizer step in later epochs)."""
    model = _yolo(str(stopped.last))
    yolo_gd.attach(model, "sgd")
    with pytest.raises(UserError, match=r"resume would change 'batch' from 8 to 16: .*resume with batch=8") as e:
        model.train(resume=True, batch=16)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("saved_flags, fused_now", [({"fused": True, "foreach": None}, None),
                                                    ({"fused": None, "foreach": True}, True)])
def test_the_kernel_flags_come_from_the_runtime_device_not_the_checkpoint(saved_flags, fused_now):
    """A state saved on another device (fused on CUDA, foreach on CPU) loads with this optimizer's own flags."""
    import torch

    from yolo_gd.inject.resume import load_optimizer_state

    def adamw(**flags):
        w = torch.nn.Parameter(torch.ones(3))
        opt = torch.optim.AdamW([w], lr=0.1, **flags)
        w.grad = torch.ones(3)
        opt.step()
        return opt

    saved = adamw().state_dict()
    saved["param_groups"][0].update(saved_flags)
    now = adamw(fused=fused_now) if fused_now else adamw()
    before = {k: now.param_groups[0][k] for k in ("fused", "foreach", "capturable")}
    load_optimizer_state(now, saved)
    assert {k: now.param_groups[0][k] for k in before} == before
    assert now.state[now.param_groups[0]["params"][0]]["step"].item() == 1.0

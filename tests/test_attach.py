"""attach(): injected runs are faithful to native Ultralytics, resume exactly, and survive pickling."""

from __future__ import annotations

import copy
import pickle

import cloudpickle
import pandas as pd
import pytest
import torch
from conftest import require, tiny_train_args

import yolo_gd
from yolo_gd.errors import UserError
from yolo_gd.inject.attach import detach, find_injection
from yolo_gd.inject.state import read_state
from yolo_gd.inject.takeover import OptimizerTakeover

pytestmark = pytest.mark.slow


def _yolo():
    from ultralytics import YOLO

    return YOLO("yolo11n.yaml")


class StepLog:
    """Test-side record of every optimizer step: (ema.updates, LR of each group, momentum of group 0)."""

    def __init__(self):
        self.rows, self.updates, self.batches, self.batch = [], None, [], -1

    def start(self, trainer):
        self.updates = trainer.ema.updates  # a resumed run starts from the checkpoint's count
        self.batch = trainer.start_epoch * len(trainer.train_loader) - 1

    def __call__(self, trainer):
        self.batch += 1  # the host's global batch index ni (a local in its loop)
        if trainer.ema.updates != self.updates:
            self.updates = trainer.ema.updates
            self.batches.append(self.batch)
            groups = trainer.optimizer.param_groups
            self.rows.append((self.updates, tuple(g["lr"] for g in groups), groups[0].get("momentum")))

    def watch(self, model):
        model.add_callback("on_train_start", self.start)
        model.add_callback("on_train_batch_end", self)


def _results(trainer) -> pd.DataFrame:
    return pd.read_csv(trainer.csv).drop(columns=["time"])


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(
    "native, inject",
    [
        # Ultralytics' SGD: lr0 0.01, nesterov momentum 0.937, wd 5e-4 scaled, linear lrf 0.01, bias LR 0.1 warmup,
        # momentum 0.8 -> 0.937, clip 10: all of it is what attach resolves from the same Ultralytics keys.
        ("SGD", dict(optimizer="sgd", lr=0.01)),
        # Ultralytics' AdamW uses lr0 and betas (momentum, 0.999) and the SGD-style bias warmup 0.1: say so.
        ("AdamW", dict(optimizer="adamw", lr=0.01, momentum=0.937, warmup_bias_lr=0.1)),
    ],
)
def test_injection_is_bit_identical_to_native(tiny_data, tmp_path, native, inject):
    """Same per-epoch losses/LRs/metrics, same model and EMA weights, same per-step LR sequence."""
    args = dict(epochs=3, warmup_epochs=2, optimizer=native)  # warmup ramps accumulate 1 -> 2 over 12 batches
    runs, logs = {}, {}
    for mode in ("native", "inject"):
        model, log = _yolo(), StepLog()
        if mode == "inject":
            yolo_gd.attach(model, **inject)
        log.watch(model)
        model.train(**tiny_train_args(tiny_data, tmp_path, mode, **args))
        runs[mode], logs[mode] = (model.trainer, log.rows), log
    (a, log_a), (b, log_b) = runs["native"], runs["inject"]
    assert len(log_a) == a.ema.updates == b.ema.updates > 18 // 2  # the warmup ramp steps more often
    assert log_a == log_b
    # The host's own loop stepped exactly on the batches yolo_gd's Cadence predicts (warmup ramp included).
    assert runs["native"][0] is a and tuple(logs["native"].batches) == b._yolo_gd_run.cadence.step_batches
    pd.testing.assert_frame_equal(_results(a), _results(b))
    assert _same_weights(a.model, b.model)
    assert _same_weights(a.ema.ema, b.ema.ema)
    assert type(b.optimizer) is type(a.optimizer)


def test_resume_continues_the_lr_sequence_and_optimizer_state(tiny_data, tmp_path):
    """Interrupt after epoch 2 of 4, resume: the LR of every step equals the uninterrupted run's, step for step."""
    # 48 images / batch 8 = 6 batches, accumulate 4: 6 % 4 != 0, so a host-owned cadence would shift on resume.
    args = dict(epochs=4, nbs=32, warmup_epochs=1)
    full, log_full = _yolo(), StepLog()
    yolo_gd.attach(full, "sgd", schedule="cosine")
    log_full.watch(full)
    full.train(**tiny_train_args(tiny_data, tmp_path, "full", **args))

    class Interrupt(Exception):
        pass

    def stop_at_epoch_2(trainer):
        if trainer.epoch == 2:
            raise Interrupt

    part, log_part = _yolo(), StepLog()
    yolo_gd.attach(part, "sgd", schedule="cosine")
    log_part.watch(part)
    part.add_callback("on_train_epoch_start", stop_at_epoch_2)
    with pytest.raises(Interrupt):
        part.train(**tiny_train_args(tiny_data, tmp_path, "part", **args))
    last = part.trainer.last
    saved = read_state(last.parent)
    host_state = torch.load(last, weights_only=False)["optimizer"]["state"]

    from ultralytics import YOLO

    resumed, log_resumed, restored = YOLO(str(last)), StepLog(), {}
    yolo_gd.attach(resumed, "sgd", schedule="cosine")
    log_resumed.watch(resumed)
    resumed.add_callback("on_train_start", lambda t: restored.update(copy.deepcopy(t.optimizer.state_dict())))
    resumed.train(resume=True)

    def lrs(rows):
        return [r[1] for r in rows]

    n_before = saved["steps"]
    assert lrs(log_part.rows)[:n_before] == lrs(log_full.rows)[:n_before]
    assert lrs(log_resumed.rows) == lrs(log_full.rows)[n_before:]
    assert n_before + len(log_resumed.rows) == len(log_full.rows)
    # The fp32 state came back exactly; Ultralytics' own checkpoint holds SGD's momentum buffers in fp16.
    assert {v["momentum_buffer"].dtype for v in host_state.values()} == {torch.float16}
    for k, v in saved["optimizer"]["state"].items():
        for name, t in v.items():
            assert torch.equal(restored["state"][k][name].cpu(), t), (k, name)


def test_resume_with_another_optimizer_is_refused(tiny_data, tmp_path):
    model = _yolo()
    yolo_gd.attach(model, "sgd")

    def stop(trainer):
        if trainer.epoch == 1:
            raise KeyboardInterrupt

    model.add_callback("on_train_epoch_start", stop)
    with pytest.raises(KeyboardInterrupt):
        model.train(**tiny_train_args(tiny_data, tmp_path, "run", epochs=3))
    from ultralytics import YOLO

    resumed = YOLO(str(model.trainer.last))
    yolo_gd.attach(resumed, "adamw")
    with pytest.raises(UserError, match="resume would change 'optimizer' from 'sgd' to 'adamw'"):
        resumed.train(resume=True)


def test_callbacks_survive_pickle_round_trip(tiny_data, tmp_path):
    """Ultralytics cloudpickles callbacks into DDP workers: the unpickled ones must still drive a training."""
    model = _yolo()
    yolo_gd.attach(model, "adamw", schedule="linear", clip=5.0, lr=0.002)
    clone_callbacks = pickle.loads(cloudpickle.dumps(model.callbacks))
    part = next(f.__self__ for fs in clone_callbacks.values() for f in fs if hasattr(f, "__self__")
                and isinstance(f.__self__, OptimizerTakeover))
    assert part.attachment.cfg == find_injection(model).cfg and part.attachment is not find_injection(model).attachment
    fresh = _yolo()
    fresh.callbacks = clone_callbacks
    fresh.train(**tiny_train_args(tiny_data, tmp_path, "pickled", epochs=1))
    groups = fresh.trainer.optimizer.param_groups
    assert type(fresh.trainer.optimizer).__name__ == "AdamW" and groups[0]["initial_lr"] == 0.002
    assert fresh.trainer._yolo_gd_run.clip == 5.0


@pytest.mark.parametrize(
    "spec, module, cls",
    [("lion", "lion_pytorch", "Lion"), ("sfadamw", "schedulefree", "AdamWScheduleFree")],
)
def test_third_party_optimizers_train(tiny_data, tmp_path, spec, module, cls):
    require(module)
    model = _yolo()
    yolo_gd.attach(model, spec)
    model.train(**tiny_train_args(tiny_data, tmp_path, spec, epochs=2))
    trainer = model.trainer
    assert type(trainer.optimizer).__name__ == cls
    assert trainer.ema.updates == trainer._yolo_gd_run.counters.steps > 0
    assert torch.isfinite(trainer.loss).all()
    if spec == "sfadamw":  # back in train mode after the last validation, evaluation weights were validated
        assert trainer.optimizer.param_groups[0]["train_mode"] is True


def test_named_schedule_runs_per_step(tiny_data, tmp_path):
    """With schedule='linear' and no warmup, the LR falls at every optimizer step, not once per epoch."""
    model, log = _yolo(), StepLog()
    yolo_gd.attach(model, "sgd", schedule="linear", warmup=0, lr=0.01)
    log.watch(model)
    model.train(**tiny_train_args(tiny_data, tmp_path, "linear", epochs=2, nbs=8))
    lrs = [r[1][0] for r in log.rows]
    total = len(lrs)
    assert total == 12  # 6 batches x 2 epochs, accumulate 1
    assert lrs == pytest.approx([0.01 * (1 - k / total) for k in range(total)], abs=0, rel=1e-15)


def test_attach_rejects_bad_input_before_training():
    model = _yolo()
    with pytest.raises(UserError, match="Did you mean 'adamw'"):
        yolo_gd.attach(model, "adamww")
    with pytest.raises(UserError, match="pass optimizer="):
        yolo_gd.attach(model, clip=5.0)
    with pytest.raises(UserError, match="schedule"):
        yolo_gd.attach(model, "sgd", schedule="cosinee")
    with pytest.raises(UserError, match="lr must be > 0"):
        yolo_gd.attach(model, "sgd", lr=-1)
    with pytest.raises(UserError, match="attach option"):
        yolo_gd.attach(model, "sgd", learning_rate=0.1)
    yolo_gd.attach(model, "sgd")
    with pytest.raises(UserError, match="already has yolo_gd attached"):
        yolo_gd.attach(model, "adamw")
    detach(model)
    assert find_injection(model) is None


def test_injected_run_records_one_row_per_step_with_the_plans_lr(tiny_data, tmp_path, capsys):
    from yolo_gd.cli import main
    from yolo_gd.telemetry.sinks import read_epochs, read_steps

    model = _yolo()
    yolo_gd.attach(model, "sgd", schedule="linear", warmup=0, lr=0.01, telemetry="full")
    # batch 8, nbs 16: accumulate 2, ramped up from 1 during the 1-epoch warmup (6 batches)
    model.train(**tiny_train_args(tiny_data, tmp_path, "tele", epochs=2, nbs=16))
    trainer = model.trainer
    steps = read_steps(trainer.save_dir)
    total = trainer._yolo_gd_run.cadence.total_steps
    assert len(steps) == trainer.ema.updates == total == len(trainer._yolo_gd_run.cadence.step_batches) > 12 // 2
    assert steps["batch"].tolist() == list(trainer._yolo_gd_run.cadence.step_batches)
    assert steps["lr/weight"].tolist() == pytest.approx([0.01 * (1 - k / total) for k in range(total)], rel=1e-15)
    assert (steps["clip"] == 10.0).all() and steps["clipped"].dtype == bool
    assert (steps["update_norm/weight"] > 0).all() and steps["optimizer"].eq("SGD").all()
    epochs = read_epochs(trainer.save_dir)
    assert len(epochs) == 2
    assert main(["plot", str(trainer.save_dir)]) == 0
    written = capsys.readouterr().out
    for name in ("losses.png", "grad_norm.png", "lr_momentum.png", "update_ratio.png"):
        assert (trainer.save_dir / "telemetry" / name).stat().st_size > 10_000 and name in written


@pytest.mark.parametrize("source", ["yolo26n.yaml", "local.pt"])
def test_other_model_sources_train_injected(tiny_data, tmp_path, source):
    """YOLO26 (end-to-end head, its own loss parts) and a local checkpoint both run with an injected optimizer."""
    from ultralytics import YOLO

    from yolo_gd.telemetry.sinks import read_steps

    if source == "local.pt":
        first = _yolo()
        first.train(**tiny_train_args(tiny_data, tmp_path, "first", epochs=1))
        source = str(first.trainer.best)
    model = YOLO(source)
    yolo_gd.attach(model, "musgd" if source.endswith(".yaml") else "radam")
    model.train(**tiny_train_args(tiny_data, tmp_path, "second", epochs=1))
    trainer = model.trainer
    steps = read_steps(trainer.save_dir)
    assert len(steps) == trainer.ema.updates > 0 and steps["grad_norm"].gt(0).all()
    loss_cols = sorted(c for c in steps.columns if c.startswith("loss/"))
    assert loss_cols == sorted(f"loss/{k}" for k in trainer.loss_items)
    assert type(trainer.optimizer).__name__ == ("MuSGD" if source.endswith(".yaml") else "RAdam")

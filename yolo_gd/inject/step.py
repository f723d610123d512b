"""The optimizer step yolo_gd owns: set LR/momentum -> unscale -> norm/clip -> step -> zero_grad -> EMA.

(and, in observe-only mode, the host's own step, unchanged, with the pre-clip norm kept for telemetry.)

It replaces ``trainer.optimizer_step`` on one trainer instance and is called by the host at EVERY batch (yolo_gd
sets the host's ``accumulate`` to 1); it decides itself, with Ultralytics' own rule (:class:`Cadence`), whether
this batch ends an accumulation window. Owning the decision keeps a resumed run stepping on the same batches as an
uninterrupted one (the host resets its own counter on every start). Everything here except the LR writes runs on
the device: no ``.item()``, no host syncs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from yolo_gd.inject.state import StepCounters
from yolo_gd.optim.plan import HyperPlan
from yolo_gd.optim.progress import Cadence, Progress


@dataclass
class RunState:
    """One trainer's injected run: the plan, where it stands, and the telemetry recorder (or None)."""

    plan: HyperPlan | None  # None in observe-only mode: the host sets LR and momentum
    cadence: Cadence
    clip: float | None
    counters: StepCounters
    recorder: Any = None
    train_eval_mode: bool = False  # schedule-free: optimizer.eval() around validation and saving
    batch: int = -1  # global batch index of the batch being trained (the host's ni)
    batch_in_epoch: int = -1
    batches_per_epoch: int = 1

    def progress(self) -> Progress:
        return Progress(
            self.counters.steps, self.cadence.total_steps, self.batch, self.batches_per_epoch, self.cadence.epochs
        )


def owned_step(trainer, run: RunState) -> None:
    """One call per batch from the host loop; steps when the cadence says this batch ends a window."""
    if not run.cadence.steps_at(run.batch, run.counters.last_step_batch):
        return  # gradients keep accumulating, as in the host loop
    progress = run.progress()
    run.plan.apply(trainer.optimizer.param_groups, progress)
    _step(trainer, run.clip, run.recorder, progress)
    run.counters.steps += 1
    run.counters.last_step_batch = run.batch


def observed_step(trainer, run: RunState) -> None:
    """Observe-only: the host decided to step and set LR/momentum itself; do exactly its step, and record it.

    The operations and their order are Ultralytics' ``optimizer_step`` (engine/trainer.py 909-920) with its fixed
    clip of 10.0, so weights stay bit-identical; only the pre-clip norm it throws away is kept.
    """
    progress = run.progress()
    _step(trainer, 10.0, run.recorder, progress, foreach=False if trainer.device.type == "npu" else None)
    run.counters.steps += 1
    run.counters.last_step_batch = run.batch


def _step(trainer, clip: float | None, recorder, progress: Progress, foreach: bool | None = None) -> None:
    optimizer, scaler, model = trainer.optimizer, trainer.scaler, trainer.model
    scaler.unscale_(optimizer)
    norm = None
    if clip is not None:
        # The host's own call (model.parameters(), default foreach): its return value is the pre-clip norm.
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=clip, foreach=foreach)
    if recorder is not None:
        recorder.before_step(trainer, progress, norm, clip)
    scaler.step(optimizer)
    scaler.update()
    if recorder is not None:
        recorder.after_step(trainer)  # update norms need the params after the step, grads before zero_grad
    optimizer.zero_grad()
    if trainer.ema:
        trainer.ema.update(model)

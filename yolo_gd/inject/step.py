"""The optimizer step yolo_gd owns: set LR/momentum -> unscale -> norm/clip -> step -> zero_grad -> EMA.

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

    plan: HyperPlan
    cadence: Cadence
    clip: float | None
    counters: StepCounters
    recorder: Any = None
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
    optimizer, scaler, model = trainer.optimizer, trainer.scaler, trainer.model
    progress = run.progress()
    run.plan.apply(optimizer.param_groups, progress)
    scaler.unscale_(optimizer)
    norm = None
    if run.clip is not None:
        # The same call as the host's (model.parameters(), default foreach): its return value is the pre-clip norm.
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=run.clip)
    recorder = run.recorder
    if recorder is not None:
        recorder.before_step(trainer, progress, norm, run.clip)
    scaler.step(optimizer)
    scaler.update()
    if recorder is not None:
        recorder.after_step(trainer)  # update norms need the params after the step, grads before zero_grad
    optimizer.zero_grad()
    if trainer.ema:
        trainer.ema.update(model)
    run.counters.steps += 1
    run.counters.last_step_batch = run.batch

"""The optimizer step: set LR/momentum -> unscale -> norm/clip -> step -> zero_grad -> EMA.

:func:`owned_step` replaces ``trainer.optimizer_step`` on one trainer instance when an optimizer is injected. The
host calls it at EVERY batch (yolo_gd holds the host's ``accumulate`` at 1) and it decides itself, with
Ultralytics' own rule (:class:`~yolo_gd.optim.progress.Cadence`), whether this batch ends an accumulation window.
Owning the decision keeps a resumed run stepping on the same batches as an uninterrupted one (the host resets its
own counter on every start).

:func:`observed_step` is observe-only mode: the host decided to step and set LR/momentum itself; this is exactly
its step (engine/trainer.py 909-920, fixed clip 10.0, so weights stay bit-identical) with the pre-clip norm kept.

Everything here except the LR writes runs on the device: no ``.item()``, no host syncs. The step reads the host
through :class:`~yolo_gd.inject.host.Host` only.
"""

from __future__ import annotations

import torch

from yolo_gd.inject.host import Host
from yolo_gd.inject.run import RunState
from yolo_gd.inject.sam import second_pass
from yolo_gd.optim.progress import Progress
from yolo_gd.telemetry.norms import clip_read_, read_grads


def owned_step(host: Host, run: RunState) -> None:
    """One call per batch from the host loop; steps when the cadence says this batch ends a window."""
    if not run.cadence.steps_at(run.batch, run.counters.last_step_batch):
        if run.recorder is not None and run.batch == run.counters.last_step_batch + 1 and not host.distributed:
            run.recorder.first_microbatch(host, run.batch)  # noise scale (full level only; a no-op otherwise)
        return  # gradients keep accumulating, as in the host loop
    progress = run.progress()
    run.plan.apply(host.optimizer.param_groups, progress)
    if run.sam is not None:
        second_pass(host, run, progress)  # SAM family: the gradient at the perturbed weights (inject/sam.py)
    _step(host, run.clip, run.recorder, progress)
    run.counters.steps += 1
    run.counters.last_step_batch = run.batch


def observed_step(host: Host, run: RunState) -> None:
    """Observe-only: the host's own step, unchanged, recorded."""
    progress = run.progress()
    _step(host, 10.0, run.recorder, progress, foreach=False if host.device_type == "npu" else None)
    run.counters.steps += 1
    run.counters.last_step_batch = run.batch


def _step(host: Host, clip: float | None, recorder, progress: Progress, foreach: bool | None = None) -> None:
    optimizer, scaler, model = host.optimizer, host.scaler, host.model
    scaler.unscale_(optimizer)
    if recorder is not None:
        # ONE read of the gradients for the clip and the recorder (issue 15): the host's clip order
        # (model.parameters()) and torch's own total-norm arithmetic, so the clip is the same numbers as
        # clip_grad_norm_'s (tests/test_step.py proves it against the host's optimizer_step).
        read = read_grads(model.parameters(), foreach=foreach)
        if clip is not None:
            clip_read_(read, clip, foreach=foreach)
        recorder.before_step(host, progress, read, clip)
    elif clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=clip, foreach=foreach)  # the host's own call
    scaler.step(optimizer)
    scaler.update()
    if recorder is not None:
        recorder.after_step(host)  # update norms need the params after the step, grads before zero_grad
    optimizer.zero_grad()
    if host.ema:
        host.ema.update(model)

"""The injected optimizer's full-precision state and the schedule position, kept beside ``last.pt``.

Ultralytics stores optimizer state in fp16 and no scheduler state, and rebuilds its own optimizer on resume. So
after every ``save_model`` yolo_gd writes ``weights/yolo_gd_state.pt`` (plain tensors and numbers: loadable
without yolo_gd) with the fp32 optimizer state, the step counters and the run's fingerprint, and reads it back on
resume and after Ultralytics' NaN recovery. The file is written to a temp name and renamed, so a crash never
leaves a half-written state. (Not named ``last*.pt``: Ultralytics' ``get_latest_run`` globs for that.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from yolo_gd.errors import UserError

STATE_NAME = "yolo_gd_state.pt"


@dataclass
class StepCounters:
    """Where the owned step stands: optimizer steps taken and the global batch index of the last one."""

    steps: int = 0
    last_step_batch: int = -1


def state_path(checkpoint: str | os.PathLike) -> Path:
    return Path(checkpoint).parent / STATE_NAME


def save_state(path: Path, *, epoch: int, counters: StepCounters, optimizer, fingerprint: dict) -> None:
    payload = {
        "format": 1,
        "epoch": int(epoch),
        "steps": counters.steps,
        "last_step_batch": counters.last_step_batch,
        "optimizer": optimizer.state_dict(),
        "optimizer_class": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}",
        "fingerprint": fingerprint,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_state(path: Path, *, epoch: int | None, fingerprint: dict, allow_change: bool) -> dict:
    """Read the state saved with the checkpoint of ``epoch`` (None: any); refuse a missing, stale or foreign one."""
    if not path.exists():
        raise UserError(
            f"resume needs {path.name} beside the checkpoint ({path.parent}) to restore the injected optimizer "
            f"and schedule exactly; it is missing (was this run trained without yolo_gd?). Start a new run from "
            f"these weights instead of resuming"
        )
    state = torch.load(path, map_location="cpu", weights_only=False)
    if epoch is not None and state.get("epoch") != epoch:
        raise UserError(
            f"{path} belongs to epoch {state.get('epoch')} but the checkpoint is from epoch {epoch} (a crash between "
            f"the two writes?): start a new run from these weights instead of resuming"
        )
    if state.get("fingerprint") != fingerprint and not allow_change:
        raise UserError(
            f"resume would change the run: checkpoint was trained with {state.get('fingerprint')}, now {fingerprint}. "
            f"Resume with the same optimizer and schedule, or pass allow_resume_change=True to continue anyway"
        )
    return state

"""The injected run's own state, one file per epoch, written BEFORE the host's checkpoint of that epoch.

Ultralytics stores optimizer state in fp16 and no schedule position, and rebuilds its optimizer on resume. So at
every epoch end yolo_gd writes ``weights/yolo_gd/state_epoch{N}.pt`` with the fp32 optimizer state, the step
counters, the run's fingerprint and its (plain) config, and reads the file of the checkpoint's epoch back on
resume and after NaN recovery. Why one file per epoch, written first: the host writes ``last.pt`` later in the
same epoch, so whatever moment a crash hits, the checkpoint on disk has its matching state file (the newest two
are kept, and every epoch that ``save_period`` keeps an ``epoch{N}.pt`` for, so those resume too).

The files hold only tensors, numbers, strings, lists and dicts: they load with ``torch.load(weights_only=True)``,
so a tampered state file cannot run code, and no yolo_gd class is pickled anywhere. (Not named ``last*.pt``:
Ultralytics' ``get_latest_run`` globs for that.) Each file is written to a temp name and renamed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from yolo_gd.errors import UserError

STATE_DIR = "yolo_gd"
FORMAT = 2
_NAME = re.compile(r"^state_epoch(\d+)\.pt$")
_RNG_NAME = "rng_epoch{}.pt"


def state_dir(weights_dir: str | os.PathLike) -> Path:
    return Path(weights_dir) / STATE_DIR


def state_file(weights_dir: str | os.PathLike, epoch: int) -> Path:
    return state_dir(weights_dir) / f"state_epoch{int(epoch)}.pt"


def saved_epochs(weights_dir: str | os.PathLike) -> list[int]:
    d = state_dir(weights_dir)
    found = (_NAME.match(p.name) for p in d.iterdir()) if d.is_dir() else ()
    return sorted(int(m.group(1)) for m in found if m)


def keep_epochs(epochs: list[int], latest: int, save_period: int) -> set[int]:
    """Which state files to keep after writing ``latest``: it, the one before, and every save_period epoch."""
    keep = {e for e in epochs if e >= latest - 1}
    if save_period > 0:
        keep |= {e for e in epochs if e % save_period == 0}
    return keep


def write_state(weights_dir: Path, epoch: int, payload: dict, *, save_period: int = -1) -> Path:
    """Write ``payload`` as the state of ``epoch`` (atomically) and prune files no checkpoint can need."""
    path = state_file(weights_dir, epoch)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "epoch": int(epoch), **payload}, tmp)
    os.replace(tmp, path)
    epochs = saved_epochs(weights_dir)
    for e in set(epochs) - keep_epochs(epochs, int(epoch), save_period):
        state_file(weights_dir, e).unlink(missing_ok=True)
        (state_dir(weights_dir) / _RNG_NAME.format(e)).unlink(missing_ok=True)
    return path


def write_rng(weights_dir: Path, epoch: int, rng_state: dict) -> None:
    """The random state after the epoch's validation (which draws from Python's ``random``), written after the
    epoch's state and before the host's checkpoint; :func:`read_state` prefers it over the state's own."""
    path = state_dir(weights_dir) / _RNG_NAME.format(int(epoch))
    tmp = path.with_name(path.name + ".tmp")
    torch.save(rng_state, tmp)
    os.replace(tmp, path)


def read_state(weights_dir: Path, epoch: int | None = None) -> dict:
    """The state of ``epoch`` (None: the newest); a missing one is a one-line :class:`UserError`."""
    epochs = saved_epochs(weights_dir)
    if epoch is None and epochs:
        epoch = epochs[-1]
    path = state_file(weights_dir, epoch if epoch is not None else 0)
    if epoch is None or not path.exists():
        have = f"it has states for epochs {epochs}" if epochs else "it has none"
        raise UserError(
            f"resume needs yolo_gd's state for epoch {epoch} in {state_dir(weights_dir)} to restore the injected "
            f"optimizer and schedule exactly, and {have} (was this checkpoint trained without yolo_gd, or by "
            f"an older yolo_gd?). Start a new run from these weights (model=...pt without resume) instead"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != FORMAT:
        raise UserError(f"{path} has state format {state.get('format')}, this yolo_gd reads {FORMAT}: start a new run")
    after_validation = state_dir(weights_dir) / _RNG_NAME.format(epoch)
    if after_validation.exists():
        state["rng"] = torch.load(after_validation, map_location="cpu", weights_only=True)
    return state

"""Where trials run: device slots, who shares a device, what a trial's start records.

A slot is one trial at a time on one device: ``devices=cpu workers=N`` gives N CPU slots, ``devices=0,1
per_device=2`` four GPU slots. A trial that starts on a device another running trial uses is ``shared_device``
(and so is that other trial): their wall times and images/s are not comparable with trials that ran alone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from yolo_gd.ablate.backend import Running
from yolo_gd.ablate.manifest import Manifest
from yolo_gd.errors import UserError

__all__ = ["Running", "attempt_header", "cpu_threads", "device_slots", "mark_shared", "mark_started"]

def device_slots(devices, workers, per_device) -> list[str]:
    """One entry per parallel trial: the device it runs on."""
    for name, v in (("workers", workers), ("per_device", per_device)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UserError(f"{name} must be a positive integer, got {v!r}")
    if isinstance(devices, (list, tuple)):
        devices = ",".join(str(d) for d in devices)
    text = str(devices if devices is not None else "cpu").strip().lower()
    if text in ("cpu", "mps"):
        if per_device != 1:
            raise UserError(f"per_device= is for GPUs; on {text} set workers=N for N parallel trials")
        if text == "mps" and workers != 1:
            raise UserError("devices=mps runs one trial at a time: drop workers=")
        return [text] * workers
    ids = [d.strip() for d in text.split(",") if d.strip()]
    if not ids or not all(d.isdigit() for d in ids):
        raise UserError(f"devices must be 'cpu', 'mps' or GPU ids like '0,1', got {devices!r}")
    if len(set(ids)) != len(ids):
        raise UserError(f"devices lists a GPU twice ({devices!r}): use per_device=N for N trials per GPU")
    if workers != 1:
        raise UserError("workers= is for devices=cpu; with GPUs set per_device=N for N parallel trials per GPU")
    import torch

    n = torch.cuda.device_count()
    missing = [d for d in ids if int(d) >= n]
    if missing:
        raise UserError(f"GPU {', '.join(missing)} not found: this machine has {n} CUDA device(s)"
                        f"{' (ids 0..' + str(n - 1) + ')' if n else ''}; use devices=cpu workers=N otherwise")
    return [d for _ in range(per_device) for d in ids]  # interleaved: spread over GPUs first


def cpu_threads(slots: Sequence[str], cores: int | None = None) -> int | None:
    """Torch threads per CPU trial when several run at once: an equal share of the cores, so N trials never ask
    for more threads than the machine has (Ultralytics alone takes ``min(8, cores - 1)`` each: 7 + 7 on 8 cores).
    None with at most one CPU slot: a lone trial keeps Ultralytics' own count."""
    n = sum(s == "cpu" for s in slots)
    if n <= 1:
        return None
    return max(1, (cores if cores is not None else os.cpu_count() or 1) // n)


def mark_shared(m: Manifest, name: str, others: Sequence[Running]) -> None:
    """Trial ``name`` started while ``others`` ran on its device: mark them all ``shared_device``."""
    if others:
        m.trials[name].shared_device = True
        for r in others:
            m.trials[r.name].shared_device = True


def attempt_header(name: str, attempt: int, device: str, now: float) -> bytes:
    """The line written to trial.log before each attempt (both backends)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    return f"=== yolo_gd ablate: trial {name}, attempt {attempt}, device {device}, {stamp} ===\n".encode()


def mark_started(m: Manifest, name: str, others: Sequence, *, now: float, device: str, kwargs: dict,
                 pid: int | None = None, pid_started: float | None = None, threads: int | None = None) -> None:
    """Record that trial ``name`` started (state, times, device, threads, attempt count, shared device) and save."""
    rec = m.trials[name]
    rec.state, rec.reason, rec.pid, rec.pid_started = "running", None, pid, pid_started
    rec.threads = threads
    rec.started, rec.finished, rec.device, rec.kwargs = now, None, device, kwargs
    rec.attempts += 1
    mark_shared(m, name, others)
    m.save()

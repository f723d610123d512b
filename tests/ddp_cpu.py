"""Test-only: Ultralytics' own DDP training path on CPU, 2 ranks over gloo.

Importable by the DDP workers (Ultralytics' launch file copies the parent's ``sys.path``, which holds ``tests/``
under pytest). Only what ties the host's DDP path to CUDA is changed, on this subclass and in the worker process:

1. the world size: ``device='cpu'`` makes the host count 0 devices, so the parent is told there are 2 (and becomes
   the DDP launcher: ``generate_ddp_command`` -> ``torch.distributed.run``), and a worker reads ``WORLD_SIZE``;
2. ``_setup_ddp``: ``init_process_group('gloo')`` with no ``set_device`` (the host would pick a CUDA device);
3. ``DistributedDataParallel`` without ``device_ids`` (the host passes ``[device.index]``, ``[None]`` for CPU);
4. ``final_eval`` is skipped (its DDP validator asks CUDA for the current device).

Everything else (the launch, the pickling of callbacks into the workers, samplers, the training loop, resume) is
the host's own code.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import LOCAL_RANK, RANK

WORLD = 2


class _CpuDDP(torch.nn.parallel.DistributedDataParallel):
    def __init__(self, module, device_ids=None, **kwargs):
        super().__init__(module, **kwargs)


class CpuDDPTrainer(DetectionTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if LOCAL_RANK == -1:  # the launching process
            self.world_size, self.ddp = WORLD, True
        else:
            self.world_size = int(os.environ["WORLD_SIZE"])

    def _setup_ddp(self):
        torch.nn.parallel.DistributedDataParallel = _CpuDDP  # this worker process only
        dist.init_process_group("gloo", rank=RANK, world_size=self.world_size, timeout=timedelta(seconds=300))

    def final_eval(self):
        pass


def dump_rank_state(trainer) -> None:
    """``teardown`` on every rank: what each rank trained with and ended with, for the test to compare."""
    from ultralytics.utils.torch_utils import unwrap_model

    if LOCAL_RANK == -1 or trainer.ema is None:  # the launcher, or a worker that failed before training
        return
    groups = trainer.optimizer.param_groups
    torch.save({
        "params": {k: v.detach().clone() for k, v in unwrap_model(trainer.model).named_parameters()},
        "ema": {k: v.detach().clone() for k, v in trainer.ema.ema.named_parameters()},
        "updates": trainer.ema.updates,
        "optimizer": type(trainer.optimizer).__name__,
        "initial_lr": [g.get("initial_lr") for g in groups],
        "lr": [g["lr"] for g in groups],
        "steps": getattr(getattr(trainer, "_yolo_gd_run", None), "counters", None),
        "epoch": getattr(trainer, "epoch", None),
    }, trainer.save_dir / f"rank{RANK}.pt")


def stop_at_epoch_1(trainer) -> None:
    if trainer.epoch == 1:
        raise KeyboardInterrupt("simulated interruption after epoch 1")

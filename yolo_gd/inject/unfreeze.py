"""Unfreezing on a schedule (the callback behind ``unfreeze=``; injected runs only).

Ultralytics' ``freeze=`` sets ``requires_grad=False`` on ``model.<i>.`` parameters in ``_setup_train``, before the
optimizer is built. :func:`late_parameters` tells the injected optimizer's builder (inject/takeover.py) which of
them join later and at which stage, so they get groups of their own (``'<tag>:unfreeze<i>'``, see
:mod:`yolo_gd.optim.unfreeze`); the plan ramps those groups' LR from their join step. :class:`UnfreezeSchedule`
sets ``requires_grad=True`` at the first batch of the optimizer step a stage joins at (the start of an
accumulation window), and records the event in ``yolo_gd_run.yaml`` (``unfreeze_events``).

BatchNorm: like Ultralytics, yolo_gd keeps the whole model in ``train()`` mode, so the running statistics of
frozen BatchNorm layers keep following the new data while their affine weights stay frozen (Lightning's
``BackboneFinetuning`` default ``train_bn=True`` goes further and trains the BN weights too).

Not under DDP (more than one process): DDP registers its gradient hooks for the parameters that require grad when
it wraps the model, so a parameter unfrozen later would not be all-reduced; refused with a clear error.
"""

from __future__ import annotations

from yolo_gd.errors import UserError
from yolo_gd.inject.host import Host, rank
from yolo_gd.optim.unfreeze import assign_stages, parse_unfreeze


def late_parameters(host: Host, cfg) -> dict[str, int]:
    """Name -> unfreeze stage of each parameter ``freeze=`` froze that ``cfg.unfreeze`` unfreezes ({} if none)."""
    if cfg.unfreeze is None:
        return {}
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        raise UserError("unfreeze= is not supported with several devices (DDP wraps only the parameters that are "
                        "trainable at the start): train on one device, or drop unfreeze=")
    return assign_stages(host.frozen_by_freeze(), parse_unfreeze(cfg.unfreeze))


class UnfreezeSchedule:
    """Sets ``requires_grad=True`` on each unfreeze stage's parameters when the plan says it joins."""

    def on_train_batch_start(self, trainer) -> None:
        host = Host(trainer)
        run = host.run
        joins = run.plan.joins
        if joins is None:
            return
        step = run.counters.steps
        for g in host.optimizer.param_groups:
            stage = g.get("join")
            if stage is None or not g["params"] or not joins.joined(stage, step) or g["params"][0].requires_grad:
                continue
            for p in g["params"]:
                p.requires_grad_(True)
            if rank() in {-1, 0}:
                _record(host, g, stage, step)


def _record(host: Host, group: dict, stage: int, step: int) -> None:
    from ultralytics.utils import LOGGER

    from yolo_gd.inject.record import update_record

    event = {"group": group.get("name"), "stage": stage, "step": step, "epoch": host.epoch,
             "n_params": len(group["params"])}
    LOGGER.info(f"yolo_gd: unfroze {event['n_params']} tensors of group {event['group']} at step {step}")
    update_record(host.save_dir, {}, append={"unfreeze_events": event})

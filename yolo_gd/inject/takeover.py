"""Taking over the optimizer and the step (the callback behind ``attach(model, optimizer=...)``).

In host order (``engine/trainer.py`` 8.4.190):

- ``on_pretrain_routine_start`` (rank -1/0 only, inside the trainer's ``__init__``): snapshot the args before the
  host can rewrite them, and replace THIS trainer's ``build_optimizer`` with ours, so the host never builds its
  own (``optimizer=auto`` would rewrite ``lr0``) and its resume loader meets the optimizer that wrote the state.
- ``on_pretrain_routine_end`` (every rank): share rank 0's args snapshot (a DDP collective), build ours where the
  host built its own (DDP ranks >= 1 never see ``on_pretrain_routine_start``), then take over the step:
  ``optimizer_step`` -> :func:`~yolo_gd.inject.step.owned_step`, the host's warmup -> 0 batches (the plan has its
  own), its per-epoch scheduler -> a holder.
- ``on_train_epoch_start``: the host halves the batch on out-of-memory in the first epoch and restarts it; the
  cadence, plan and weight decay are then rebuilt for the new batch size and the counters rewound.
- ``on_train_batch_start``: count the global batch index (a local in the host) and hold ``accumulate`` at 1, so
  the host calls our step on every batch and the cadence decides.
"""

from __future__ import annotations

import copy
import functools

from yolo_gd.inject.host import Host, rank
from yolo_gd.inject.record import announce
from yolo_gd.inject.resolve import Resolved, TrainerFacts, resolve
from yolo_gd.inject.resume import effective_config
from yolo_gd.inject.run import Attachment, RunState, StepCounters
from yolo_gd.inject.step import owned_step
from yolo_gd.inject.unfreeze import late_parameters
from yolo_gd.optim.groups import build_param_groups, parse_rules
from yolo_gd.optim.registry import build_optimizer
from yolo_gd.optim.replan import PlanSegment


class OptimizerTakeover:
    """Builds the injected optimizer and owns the step, cadence and LR."""

    def __init__(self, attachment: Attachment):
        self.attachment = attachment

    def on_pretrain_routine_start(self, trainer) -> None:
        host = Host(trainer)
        host.snapshot_args()
        host.replace("build_optimizer", functools.partial(self._build_for_host, trainer))

    def _build_for_host(self, trainer, model=None, name=None, lr=None, momentum=None, decay=None, iterations=None):
        """Called by the host's ``_build_train_pipeline`` in place of its own ``build_optimizer``."""
        return self._build(Host(trainer))

    def _build(self, host: Host):
        cfg, saved_given = effective_config(self.attachment.cfg, host)
        given = self.attachment.ul_given
        given = given | saved_given if (given is not None and saved_given is not None) else given
        resolved = resolve(cfg, facts_from(host, given))
        groups = build_param_groups(
            host.bare_model,
            lr=resolved.hparams["lr"],
            weight_decay=resolved.weight_decay,
            rules=parse_rules(cfg.groups) if cfg.groups else (),
            muon=resolved.info.muon_groups,
            late=late_parameters(host, cfg),
            lr_decay=cfg.lr_decay,
        )
        hparams = {k: v for k, v in resolved.hparams.items() if k != "lr"}
        optimizer = build_optimizer(resolved.info, groups, device_type=host.device_type, **hparams)
        # The host loads its fp16 copy of the optimizer state on resume and NaN recovery, by position; yolo_gd
        # restores its own fp32 state right after (inject/resume.py), so the host's load is skipped on THIS
        # optimizer instance (a group layout the host does not know can then never fail its load).
        optimizer.load_state_dict = _skip_host_load
        run = RunState(resolved.cadence, StepCounters(), resolved.plan, resolved.clip, resolved=resolved,
                       batch_size=host.batch_size)
        run.cfg, run.optimizer, run.ul_given, run.sam = cfg, optimizer, given, cfg.sam
        run.plans = [PlanSegment.of(resolved.cadence)]
        run.wd_ratios = [g["weight_decay"] / resolved.weight_decay if resolved.weight_decay else 0.0
                         for g in optimizer.param_groups]
        host.run = run
        return optimizer

    def on_pretrain_routine_end(self, trainer) -> None:
        host = Host(trainer)
        host.share_args_snapshot()  # a collective under DDP: every rank calls it here
        run = host.run
        if run is None or host.optimizer is not run.optimizer:  # a DDP rank >= 1: the host built its own
            host.set_optimizer(self._build(host))
            run = host.run
        host.replace("optimizer_step", functools.partial(owned_step, host, run))
        host.disable_host_warmup()
        host.hold_scheduler()
        run.epoch_start = copy.copy(run.counters)
        if rank() in {-1, 0}:
            announce(host, run.resolved, run.cfg)

    def on_train_epoch_start(self, trainer) -> None:
        host = Host(trainer)
        run = host.run
        if host.batch_size != run.batch_size:  # the host halved the batch after an out-of-memory error
            self._replan_for_batch(host, run)
        run.epoch_start = copy.copy(run.counters)
        run.start_epoch(host.batches_per_epoch)

    def _replan_for_batch(self, host: Host, run: RunState) -> None:
        """Rebuild cadence, plan and weight decay for the new batch size; rewind the counters to the epoch start."""
        resolved: Resolved = resolve(run.cfg, facts_from(host, run.ul_given))
        run.resolved, run.cadence, run.plan, run.batch_size = resolved, resolved.cadence, resolved.plan, host.batch_size
        saved, run.plans = [p.plain() for p in run.plans[:-1]], []
        start = run.epoch_start
        run.adopt_plans(saved, start.steps, start.last_step_batch + 1)  # the halved batch's plan from here
        for g, r in zip(host.optimizer.param_groups, run.wd_ratios):
            g["weight_decay"] = resolved.weight_decay * r  # the host reset it with its own scaling
        run.counters = copy.copy(run.epoch_start)
        if run.recorder is not None:
            run.recorder.new_attempt()  # the retried epoch's rows supersede the failed attempt's

    def on_train_batch_start(self, trainer) -> None:
        host = Host(trainer)
        host.run.next_batch(host.epoch)
        host.set_accumulate(1)  # the host then calls our step on every batch; the cadence decides


def facts_from(host: Host, given: frozenset | None) -> TrainerFacts:
    """The plain values resolution needs, read through the host view."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    args = host.args
    nb = host.batches_per_epoch
    nominal = max(round(args["nbs"] / host.batch_size), 1)
    accumulate = nominal if args.get("time") else min(nominal, nb * host.epochs)
    return TrainerFacts(
        args=args,
        defaults=DEFAULT_CFG_DICT,
        batch_size=host.batch_size,
        batches_per_epoch=nb,
        epochs=host.epochs,
        warmup_batches=host.host_warmup_batches(nb),  # the host's own rule, unpatched
        accumulate=accumulate,
        device_type=host.device_type,
        given=given,
    )


def _skip_host_load(state_dict) -> None:
    """Stands in for ``load_state_dict`` on the injected optimizer: see :meth:`OptimizerTakeover._build`."""

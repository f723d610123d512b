"""Observe-only mode (``attach(model)`` with no optimizer): Ultralytics keeps its optimizer, warmup, schedule,
clip and cadence; yolo_gd replaces ``optimizer_step`` with the host's own step plus the record of it
(:func:`~yolo_gd.inject.step.observed_step`, bit-identical weights) and counts batches for the telemetry.
Native resume is untouched: the step count comes back from the host's EMA update count.
"""

from __future__ import annotations

import functools

from yolo_gd.inject.host import Host, rank
from yolo_gd.inject.record import plain_rows, update_record, versions
from yolo_gd.inject.run import RunState, StepCounters
from yolo_gd.inject.step import observed_step
from yolo_gd.inject.takeover import facts_from
from yolo_gd.optim.groups import describe_groups
from yolo_gd.optim.progress import Cadence


class ObservedStep:
    """Installs the observed step and the batch clock."""

    def on_pretrain_routine_end(self, trainer) -> None:
        host = Host(trainer)
        counters = StepCounters(steps=host.ema.updates if host.ema else 0)  # resumed runs carry the count
        host.run = RunState(_cadence(host), counters, batch_size=host.batch_size)
        host.replace("optimizer_step", functools.partial(observed_step, host, host.run))
        host.wrap("_handle_nan_recovery", functools.partial(self._after_recovery, trainer))
        if rank() in {-1, 0}:  # record what Ultralytics chose (optimizer=auto picks AdamW or MuSGD and its LR)
            update_record(host.save_dir, {
                "observe_only": {"optimizer": type(host.optimizer).__name__,
                                 "optimizer_steps": host.run.cadence.total_steps,
                                 "groups": plain_rows(describe_groups(host.optimizer.param_groups))},
                "versions": versions()})

    def on_train_epoch_start(self, trainer) -> None:
        host = Host(trainer)
        if host.batch_size != host.run.batch_size:  # the host halved the batch after an out-of-memory error
            host.run.cadence, host.run.batch_size = _cadence(host), host.batch_size
        host.run.start_epoch(host.batches_per_epoch)

    def on_train_batch_start(self, trainer) -> None:
        host = Host(trainer)
        host.run.next_batch(host.epoch)

    def _after_recovery(self, trainer, recovered: bool) -> None:
        if recovered:  # the host's own optimizer and EMA update count came back from last.pt
            host = Host(trainer)
            host.run.counters.steps = host.ema.updates


def _cadence(host: Host) -> Cadence:
    facts = facts_from(host, None)
    return Cadence(facts.batches_per_epoch, facts.epochs, facts.accumulate, facts.warmup_batches)

"""One trainer's run as yolo_gd follows it: the plan, where the step stands, the batch clock (pure data).

It lives on the trainer instance (``Host.run``), so two runs in one process never share it, and the callbacks
that make up an attached run (inject/takeover.py, observe.py, resume.py, schedule_free.py and
telemetry/lifecycle.py) meet only here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from yolo_gd.optim.plan import HyperPlan
from yolo_gd.optim.progress import Cadence, Progress
from yolo_gd.optim.replan import PlanSegment, chain, chain_joins
from yolo_gd.optim.schedule_base import bind
from yolo_gd.optim.unfreeze import join_plan, parse_unfreeze


@dataclass
class StepCounters:
    """Where the step stands: optimizer steps taken and the global batch index of the last one."""

    steps: int = 0
    last_step_batch: int = -1


@dataclass
class RunState:
    """One trainer's run.

    ``plan`` is None in observe-only mode (the host sets LR and momentum). ``resolved`` is the injected run's
    :class:`~yolo_gd.inject.resolve.Resolved` (None when observing). ``recorder`` is set by the telemetry callback.
    """

    cadence: Cadence
    counters: StepCounters
    plan: HyperPlan | None = None
    clip: float | None = 10.0
    resolved: Any = None
    recorder: Any = None
    batch: int = -1  # global batch index of the batch being trained (the host's ni, a local there)
    batch_in_epoch: int = -1
    batches_per_epoch: int = 1
    batch_size: int = 0  # the batch size the cadence was built for (the host halves it on out-of-memory)
    saved_epoch: int = -1  # epoch of the checkpoint last written (what NaN recovery reloads)
    epoch_start: StepCounters | None = None  # the counters when this epoch started (an OOM retry rewinds to them)
    cfg: Any = None  # the effective InjectConfig (on resume: merged with the resumed run's)
    optimizer: Any = None  # the optimizer yolo_gd built (to tell it from one the host built)
    ul_given: frozenset | None = None  # the Ultralytics keys the user gave (see Attachment)
    wd_ratios: list = field(default_factory=list)
    plans: list = field(default_factory=list)  # the plan history: PlanSegment, oldest first (optim/replan.py)
    pending_rng: Any = None  # after a resume: random state to put back at the next epoch start (inject/rng.py)
    loader_state: Any = None  # the shuffle generator's state to set again when the loader makes its iterator
    pending_grads: Any = None  # an open accumulation window's gradients to put back at the next epoch start  # each group's weight decay / the resolved one
    sam: Any = None  # the SAM-family rule (optim/sam.SamRule) when optimizer=sam|asam|gsam, else None
    sam_batch: Any = None  # the batch the host preprocessed last (the SAM second pass runs on it)
    sam_stats: Any = None  # device tensors of the last SAM step: (first-pass norm the radius used, ||e||)

    def progress(self) -> Progress:
        return Progress(
            self.counters.steps, self.cadence.total_steps, self.batch, self.batches_per_epoch, self.cadence.epochs
        )

    def adopt_plans(self, saved: list[dict], from_step: int, from_batch: int) -> bool:
        """Continue a run planned as ``saved``; if its cadence differs from this one (e.g. more epochs), a new
        plan takes over at ``from_step`` with the rest of the schedule stretched. Returns whether it re-planned."""
        plans = [PlanSegment(**p) for p in saved] or [PlanSegment.of(self.cadence)]
        replanned = plans[-1].cadence != self.cadence
        if replanned:
            plans.append(PlanSegment.of(self.cadence, from_step, from_batch))
        self.plans = plans
        if len(plans) > 1:
            joins = self.plan.joins
            if joins is not None:  # the join steps stretch like the schedule; joined stages stay joined
                first = join_plan(parse_unfreeze(self.cfg.unfreeze), self.cfg.unfreeze_ramp, plans[0].cadence)
                joins = chain_joins(first, plans)
            self.plan = dataclasses.replace(self.plan, schedule=chain(self.resolved.unbound_schedule, plans, bind),
                                            joins=joins)
        return replanned

    def start_epoch(self, batches_per_epoch: int) -> None:
        self.batch_in_epoch = -1
        self.batches_per_epoch = batches_per_epoch

    def next_batch(self, epoch: int) -> None:
        self.batch_in_epoch += 1
        self.batch = epoch * self.batches_per_epoch + self.batch_in_epoch


@dataclass
class Attachment:
    """What one ``attach`` call shares between its callbacks (pickled with them into DDP workers).

    ``ul_given``: the Ultralytics keys the user passed to ``model.train`` (recorded by ``attach``), so resolution
    can tell "given" from "left at the default"; None when unknown (then: a value that differs from the default).
    """

    cfg: Any
    ul_given: frozenset | None = None

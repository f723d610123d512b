"""Per-step hyperparameters: what the owned optimizer step writes into every param group (pure).

A :class:`HyperPlan` turns a :class:`~yolo_gd.optim.progress.Progress` into the LR (and momentum, or Adam beta1)
of each group: ``base_lr * schedule(progress)``, preceded by a warmup that blends linearly (or exponentially)
from an absolute start value. Ultralytics' own warmup is exactly such a blend, in batch units:
``np.interp(ni, [0, nw], [start, target])`` with ``start`` 0.0 for LR, ``warmup_bias_lr`` for the bias group and
``warmup_momentum`` for momentum; the ``'linear'`` kind calls ``np.interp`` the same way so the floats are
bit-identical to the host's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from yolo_gd.errors import UserError
from yolo_gd.optim.progress import Progress
from yolo_gd.optim.unfreeze import JoinPlan

Schedule = Callable[[Progress], float]


@dataclass(frozen=True)
class WarmupPlan:
    """A warmup prefix, already converted to its clock's units.

    Args:
        length: warmup length in ``clock`` units (0: no warmup).
        clock: ``'batch'`` counts global batch indices (Ultralytics' warmup), ``'step'`` counts optimizer steps.
        kind: ``'linear'`` (np.interp, as the host) or ``'exp'`` (``(1 - e^{-5x}) / (1 - e^{-5})``, x = progress).
        bias_lr: LR the ``bias`` groups start from (Ultralytics' ``warmup_bias_lr``, times a group rule's ``lr_mult``);
            others start at 0.
        momentum: momentum (SGD) or beta1 (Adam family) at the start of warmup; None leaves it alone.
    """

    length: int = 0
    clock: Literal["batch", "step"] = "step"
    kind: Literal["linear", "exp"] = "linear"
    bias_lr: float = 0.0
    momentum: float | None = None

    def __post_init__(self):
        if self.length < 0:
            raise UserError(f"warmup length must be >= 0, got {self.length}")
        if self.clock not in ("batch", "step"):
            raise UserError(f"warmup clock must be 'batch' or 'step', got '{self.clock}'")
        if self.kind not in ("linear", "exp"):
            raise UserError(f"warmup kind must be 'linear' or 'exp', got '{self.kind}'")
        if self.bias_lr < 0:
            raise UserError(f"warmup bias LR must be >= 0, got {self.bias_lr}")

    def position(self, p: Progress) -> int:
        return p.batch if self.clock == "batch" else p.step

    def active(self, p: Progress) -> bool:
        # The host writes warmup values for ni <= nw: at ni == nw the blend lands exactly on the target.
        return self.length > 0 and self.position(p) <= self.length

    def blend(self, p: Progress, start: float, target: float) -> float:
        x = self.position(p)
        if self.kind == "linear":
            return float(np.interp(x, [0, self.length], [start, target]))
        f = (1.0 - math.exp(-5.0 * x / self.length)) / (1.0 - math.exp(-5.0))
        return start + min(f, 1.0) * (target - start)


@dataclass(frozen=True)
class HyperPlan:
    """LR and momentum of every param group at every optimizer step.

    Args:
        schedule: LR multiplier as a function of progress (bound: durations already in steps).
        warmup: the warmup prefix.
        momentum: target momentum (``has_momentum``) or beta1 (``has_betas``); None: never written.
        momentum_key: ``'momentum'``, ``'betas'`` or None (which group key carries it).
        joins: unfreeze stages (groups carrying ``join=<stage>`` get the stage's LR ramp on top); None: no stage.
    """

    schedule: Schedule
    warmup: WarmupPlan = WarmupPlan()
    momentum: float | None = None
    momentum_key: Literal["momentum", "betas"] | None = None
    joins: JoinPlan | None = None

    def lr(self, p: Progress, initial_lr: float, tag: str, lr_mult: float = 1.0) -> float:
        """``lr_mult``: the group rule's multiplier (``groups=``, ``lr_decay``), already in ``initial_lr``; the bias
        warmup starts at ``warmup_bias_lr * lr_mult`` so a group scaled down is not started far above its target."""
        target = initial_lr * self.schedule(p)
        if self.warmup.active(p):
            start = self.warmup.bias_lr * lr_mult if tag == "bias" else 0.0
            return self.warmup.blend(p, start, target)
        return target

    def momentum_at(self, p: Progress) -> float | None:
        if self.momentum is None or self.momentum_key is None:
            return None
        if self.warmup.momentum is not None and self.warmup.active(p):
            return self.warmup.blend(p, self.warmup.momentum, self.momentum)
        return self.momentum

    def apply(self, param_groups: list[dict], p: Progress) -> None:
        """Write this step's hyperparameters into ``param_groups`` (host-side floats only: no device work)."""
        m = self.momentum_at(p)
        for g in param_groups:
            g["lr"] = self.lr(p, g["initial_lr"], g.get("param_group", ""), g.get("lr_mult", 1.0))
            if self.joins is not None and "join" in g:
                g["lr"] *= self.joins.multiplier(g["join"], p.step)
            if m is None:
                continue
            if self.momentum_key == "momentum":
                g["momentum"] = m
            else:
                g["betas"] = (m, *g["betas"][1:])  # Adan has three

"""Turn an :class:`InjectConfig` plus the trainer's settings into the exact run plan (pure: no trainer objects).

Rules (README "How values are chosen"):
- a yolo_gd key given to ``attach`` wins;
- else an Ultralytics key the user changed from its default (``lr0``, ``momentum``, ``weight_decay``,
  ``warmup_bias_lr``) feeds the injected optimizer (``momentum`` is beta1 for the Adam family, as in Ultralytics);
- else the optimizer registry's default (adaptive optimizers get ~10x lower LRs than SGD, and a bias-LR warmup
  start of 0 instead of Ultralytics' SGD habit of 0.1).
With no schedule named, the schedule is Ultralytics' own: its per-epoch staircase (``lrf``, ``cos_lr``) and its
batch-index warmup; a named schedule runs per optimizer step, with warmup in optimizer steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from yolo_gd.errors import UserError
from yolo_gd.inject.config import InjectConfig
from yolo_gd.optim.durations import parse_duration
from yolo_gd.optim.groups import scale_weight_decay
from yolo_gd.optim.plan import HyperPlan, WarmupPlan
from yolo_gd.optim.progress import Cadence
from yolo_gd.optim.registry import OptimInfo, resolve_optimizer
from yolo_gd.optim.schedule_registry import get_schedule
from yolo_gd.optim.schedules import ul_cosine, ul_linear


@dataclass(frozen=True)
class TrainerFacts:
    """What resolution needs from the trainer, as plain values."""

    args: dict  # the trainer's args (vars(trainer.args))
    defaults: dict  # Ultralytics' default cfg (to tell a value the user set from a default)
    batch_size: int
    batches_per_epoch: int
    epochs: int
    warmup_batches: int  # the host's nw
    accumulate: int  # nominal, capped at batches*epochs (the host's acc0)
    device_type: str = "cpu"

    def changed(self, key: str) -> bool:
        return key in self.args and self.args[key] != self.defaults.get(key)


@dataclass(frozen=True)
class Resolved:
    """The run plan: optimizer class info and hyperparameters, per-step plan, cadence, clipping."""

    info: OptimInfo
    hparams: dict
    weight_decay: float
    plan: HyperPlan
    cadence: Cadence
    clip: float | None
    sources: dict = field(default_factory=dict)  # value name -> where it came from (printed and recorded)

    def summary(self) -> dict:
        """Plain-data description for the printed table and the run record."""
        return {
            "optimizer": self.info.name,
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in self.hparams.items()},
            "weight_decay": self.weight_decay,
            "schedule": repr(self.plan.schedule),
            "warmup": {
                "length": self.plan.warmup.length,
                "clock": self.plan.warmup.clock,
                "kind": self.plan.warmup.kind,
                "bias_lr": self.plan.warmup.bias_lr,
                "momentum": self.plan.warmup.momentum,
            },
            "clip": self.clip,
            "optimizer_steps": self.cadence.total_steps,
            "accumulate": self.cadence.accumulate,
            "sources": dict(self.sources),
        }


def resolve(cfg: InjectConfig, facts: TrainerFacts) -> Resolved:
    """Resolve every value of the run; raises :class:`UserError` for anything the user can fix."""
    if facts.args.get("time"):
        raise UserError(
            "time= (a wall-clock budget) re-estimates epochs every epoch, so an injected schedule has no fixed "
            "length: pass epochs= instead, or drop optimizer= to keep Ultralytics' own schedule"
        )
    info = resolve_optimizer(cfg.optimizer)
    args, sources = facts.args, {}

    def pick(name: str, given: Any, ul_key: str | None, registry_default: Any):
        if given is not None:
            sources[name] = "attach"
            return given
        if ul_key and facts.changed(ul_key):
            sources[name] = f"ultralytics {ul_key}"
            return args[ul_key]
        sources[name] = f"{info.name} default"
        return registry_default

    hparams = dict(info.defaults)
    hparams.update(cfg.optimizer_kwargs)
    hparams["lr"] = pick("lr", cfg.lr, "lr0", info.defaults.get("lr", args.get("lr0")))
    momentum = None
    if info.has_momentum:
        momentum = pick("momentum", cfg.momentum, "momentum", info.defaults.get("momentum", args.get("momentum")))
        hparams["momentum"] = momentum
    elif info.has_betas:
        b1, b2 = hparams.get("betas", (0.9, 0.999))
        momentum = pick("beta1", cfg.momentum, "momentum", b1)
        hparams["betas"] = (momentum, b2)
    elif cfg.momentum is not None:
        raise UserError(f"optimizer '{info.name}' has no momentum or betas: drop momentum=")

    base_wd = cfg.weight_decay if cfg.weight_decay is not None else args["weight_decay"]
    sources["weight_decay"] = "attach" if cfg.weight_decay is not None else "ultralytics weight_decay"
    weight_decay = base_wd
    if cfg.scale_weight_decay:
        # Ultralytics scales with the accumulate computed BEFORE its cap (trainer.py 321-324).
        acc = max(round(args["nbs"] / facts.batch_size), 1)
        weight_decay = scale_weight_decay(base_wd, facts.batch_size, acc, args["nbs"])
    hparams.pop("weight_decay", None)  # per group, set by the param groups

    cadence = Cadence(facts.batches_per_epoch, facts.epochs, facts.accumulate, facts.warmup_batches)
    bias_lr = cfg.warmup_bias_lr
    if bias_lr is None:
        bias_lr = args["warmup_bias_lr"] if (not info.adaptive or facts.changed("warmup_bias_lr")) else 0.0
    warm_m = cfg.warmup_momentum if cfg.warmup_momentum is not None else args["warmup_momentum"]
    # Ultralytics warms any group with a 'momentum' key; schedule-free optimizers assume a constant momentum.
    warms = (info.has_momentum and not info.has_train_eval_mode) or (info.has_betas and cfg.warmup_beta1)
    warm_m = warm_m if warms else None

    if cfg.schedule is None:
        lrf = args["lrf"]
        schedule = ul_cosine(lrf=lrf) if args.get("cos_lr") else ul_linear(lrf=lrf)
        if cfg.warmup is None:
            warmup = WarmupPlan(facts.warmup_batches, "batch", cfg.warmup_kind, bias_lr, warm_m)
        else:
            warmup = WarmupPlan(_steps(cfg.warmup, cadence), "step", cfg.warmup_kind, bias_lr, warm_m)
        sources["schedule"] = "ultralytics (per-epoch staircase)"
    else:
        schedule = get_schedule(cfg.schedule, **cfg.schedule_kwargs)
        if cfg.warmup is None:  # Ultralytics' warmup_epochs, capped as the host caps it (leave the last epoch)
            length = _steps(f"{min(args['warmup_epochs'], max(facts.epochs - 1, 0))}ep", cadence)
        else:
            length = _steps(cfg.warmup, cadence)
        warmup = WarmupPlan(length, "step", cfg.warmup_kind, bias_lr, warm_m)
        sources["schedule"] = "attach (per optimizer step)"
    schedule = schedule.bind(cadence) if hasattr(schedule, "bind") else schedule
    key = "momentum" if info.has_momentum else ("betas" if info.has_betas else None)
    plan = HyperPlan(schedule, warmup, momentum, key)
    return Resolved(info, hparams, weight_decay, plan, cadence, cfg.clip_norm, sources)


def _steps(duration: Any, cadence: Cadence) -> int:
    steps = parse_duration(duration).to_steps(cadence)
    if steps > cadence.total_steps:
        raise UserError(
            f"warmup '{duration}' is {steps} optimizer steps but training has only {cadence.total_steps}: "
            f"shorten the warmup or train longer"
        )
    return steps

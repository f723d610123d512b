"""Turn an :class:`InjectConfig` plus the trainer's settings into the exact run plan (pure: no trainer objects).

Rules (docs/api.md, "How values are chosen"):
- a yolo_gd key given to ``attach`` wins;
- else an Ultralytics key the user GAVE (``lr0``, ``momentum``, ``weight_decay``, ``warmup_bias_lr``) feeds the
  injected optimizer (``momentum`` is beta1 for the Adam family, as in Ultralytics). Which keys were given is
  tracked (``attach`` records the keys passed to ``model.train``; the CLI and sweeps go through it), so
  ``optimizer=adamw lr0=0.01`` trains at 0.01 although 0.01 is Ultralytics' default ``lr0``;
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
from yolo_gd.optim.unfreeze import join_plan, parse_unfreeze
from yolo_gd.optim.progress import Cadence
from yolo_gd.optim.registry import OptimInfo, resolve_optimizer
from yolo_gd.optim.schedule_base import bind
from yolo_gd.optim.schedule_registry import get_schedule
from yolo_gd.optim.schedules import ul_cosine, ul_linear


@dataclass(frozen=True)
class TrainerFacts:
    """What resolution needs from the trainer, as plain values."""

    args: dict  # the trainer's args as the user gave them (Host.args: a snapshot from before any host rewrite)
    defaults: dict  # Ultralytics' default cfg (only used when ``given`` is unknown)
    batch_size: int
    batches_per_epoch: int
    epochs: int
    warmup_batches: int  # the host's nw
    accumulate: int  # nominal, capped at batches*epochs (the host's acc0)
    device_type: str = "cpu"
    given: frozenset | None = None  # the Ultralytics keys the user gave; None: unknown (then: differs from default)

    def changed(self, key: str) -> bool:
        """Whether the user set Ultralytics key ``key`` (explicitly given, or else different from the default)."""
        if self.given is not None:
            return key in self.given
        return key in self.args and self.args[key] != self.defaults.get(key)


@dataclass(frozen=True)
class Resolved:
    """The run plan: optimizer class info and hyperparameters, per-step plan, cadence, clipping."""

    info: OptimInfo
    hparams: dict
    weight_decay: float  # as applied to decayed groups (scaled by batch * accumulate / nbs unless turned off)
    plan: HyperPlan
    cadence: Cadence
    clip: float | None
    sources: dict = field(default_factory=dict)  # value name -> where it came from (printed and recorded)
    base_weight_decay: float = 0.0  # before scaling
    unbound_schedule: Any = None  # the schedule before its durations were bound to this cadence (for re-plans)

    def fingerprint(self, cfg: InjectConfig) -> dict:
        """What must match for a resume to continue the same run (plain data, stored with the checkpoint)."""
        s = self.summary()
        return {
            "optimizer": self.info.name,
            **({"sam": cfg.sam.plain()} if cfg.sam is not None else {}),  # the SAM family wraps info's optimizer
            **{k: s[k] for k in self.hparams if k != "lr" and isinstance(s[k], (int, float, str, bool, list))},
            "lr": self.hparams["lr"],
            "weight_decay": self.base_weight_decay,
            "scale_weight_decay": cfg.scale_weight_decay,
            # Unbound: independent of the run's length, so extending a run (resume epochs=N) is not a change.
            "schedule": repr(self.unbound_schedule),
            "warmup": {"spec": repr(cfg.warmup), **{k: v for k, v in s["warmup"].items() if k != "length"}},
            "clip": self.clip,
            "groups": repr(cfg.groups),
            "telemetry": cfg.telemetry,
            **finetune_keys(cfg),
        }

    def summary(self) -> dict:
        """Plain-data description for the printed table and the run record."""
        return {
            "optimizer": self.info.name,
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in self.hparams.items()},
            "weight_decay": self.weight_decay,
            **({"weight_decay_style": self.info.weight_decay_style} if self.info.weight_decay_style else {}),
            "schedule": repr(self.plan.schedule),
            "warmup": {
                "length": self.plan.warmup.length,
                "clock": self.plan.warmup.clock,
                "kind": self.plan.warmup.kind,
                "bias_lr": self.plan.warmup.bias_lr,
                "momentum": self.plan.warmup.momentum,
            },
            "clip": self.clip,
            **({"unfreeze": {"join_steps": list(self.plan.joins.steps), "ramp_steps": self.plan.joins.ramp}}
               if self.plan.joins is not None else {}),
            "optimizer_steps": self.cadence.total_steps,
            "accumulate": self.cadence.accumulate,
            "sources": dict(self.sources),
        }


def finetune_keys(cfg: InjectConfig) -> dict:
    """The fine-tuning options as plain data (part of the fingerprint and of the run record)."""
    def plain(v: Any) -> Any:
        return v if v is None or isinstance(v, (str, int, float, bool)) else repr(v)

    unfreeze = cfg.unfreeze if cfg.unfreeze is None or isinstance(cfg.unfreeze, (str, int, float)) else \
        [[str(a), plain(b)] for a, b in (cfg.unfreeze.items() if isinstance(cfg.unfreeze, dict) else cfg.unfreeze)]
    return {"lr_decay": cfg.lr_decay, "unfreeze": unfreeze, "unfreeze_ramp": plain(cfg.unfreeze_ramp),
            "ema": cfg.ema, "ema_decay": cfg.ema_decay, "ema_tau": cfg.ema_tau}


def resolve(cfg: InjectConfig, facts: TrainerFacts) -> Resolved:
    """Resolve every value of the run; raises :class:`UserError` for anything the user can fix."""
    if facts.args.get("time"):
        raise UserError(
            "time= (a wall-clock budget) re-estimates epochs every epoch, so an injected schedule has no fixed "
            "length: pass epochs= instead, or drop optimizer= to keep Ultralytics' own schedule"
        )
    info = resolve_optimizer(cfg.optimizer_to_build)
    sources: dict = {}
    hparams, momentum = _hparams(cfg, facts, info, sources)
    base_wd = cfg.weight_decay if cfg.weight_decay is not None else facts.args["weight_decay"]
    sources["weight_decay"] = "attach" if cfg.weight_decay is not None else "ultralytics weight_decay"
    weight_decay = base_wd
    if cfg.scale_weight_decay:
        # Ultralytics scales with the accumulate computed BEFORE its cap (trainer.py 321-324).
        acc = max(round(facts.args["nbs"] / facts.batch_size), 1)
        weight_decay = scale_weight_decay(base_wd, facts.batch_size, acc, facts.args["nbs"])
    cadence = Cadence(facts.batches_per_epoch, facts.epochs, facts.accumulate, facts.warmup_batches)
    plan, unbound = _plan(cfg, facts, info, cadence, momentum, sources)
    return Resolved(info, hparams, weight_decay, plan, cadence, cfg.clip_norm, sources, base_weight_decay=base_wd,
                    unbound_schedule=unbound)


def _hparams(cfg: InjectConfig, facts: TrainerFacts, info: OptimInfo, sources: dict) -> tuple[dict, float | None]:
    """The optimizer's constructor hyperparameters (without weight decay: that is per group) and the momentum."""
    args = facts.args

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
        b1, *rest = hparams.get("betas", (0.9, 0.999))  # Adan has three
        momentum = pick("beta1", cfg.momentum, "momentum", b1)
        hparams["betas"] = (momentum, *rest)
    elif cfg.momentum is not None:
        raise UserError(f"optimizer '{info.name}' has no momentum or betas: drop momentum=")
    hparams.pop("weight_decay", None)  # per group, set by the param groups
    return hparams, momentum


def _plan(cfg: InjectConfig, facts: TrainerFacts, info: OptimInfo, cadence: Cadence, momentum: float | None,
          sources: dict) -> tuple[HyperPlan, Any]:
    """The per-step LR/momentum plan (Ultralytics' own schedule and warmup, or the named schedule per step) and
    the schedule before binding."""
    args = facts.args
    bias_lr = cfg.warmup_bias_lr
    if bias_lr is None:
        bias_lr = args["warmup_bias_lr"] if (not info.adaptive or facts.changed("warmup_bias_lr")) else 0.0
    warm_m = cfg.warmup_momentum if cfg.warmup_momentum is not None else args["warmup_momentum"]
    # Ultralytics warms any group with a 'momentum' key; schedule-free optimizers assume a constant momentum.
    warms = (info.has_momentum and not info.has_train_eval_mode) or (info.has_betas and cfg.warmup_beta1)
    warm_m = warm_m if warms else None
    if cfg.schedule is None:
        schedule = ul_cosine(lrf=args["lrf"]) if args.get("cos_lr") else ul_linear(lrf=args["lrf"])
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
    unbound, schedule = schedule, bind(schedule, cadence)
    key = "momentum" if info.has_momentum else ("betas" if info.has_betas else None)
    joins = None
    if cfg.unfreeze is not None:
        joins = join_plan(parse_unfreeze(cfg.unfreeze), cfg.unfreeze_ramp, cadence)
    return HyperPlan(schedule, warmup, momentum, key, joins), unbound


def _steps(duration: Any, cadence: Cadence) -> int:
    steps = parse_duration(duration).to_steps(cadence)
    if steps > cadence.total_steps:
        raise UserError(
            f"warmup '{duration}' is {steps} optimizer steps but training has only {cadence.total_steps}: "
            f"shorten the warmup or train longer"
        )
    return steps

"""What the user asked ``attach`` for, checked at construction (pure data, picklable).

:class:`InjectConfig` is the schema of every yolo_gd option (a pydantic dataclass, see :mod:`yolo_gd.schema`):
``attach``, ``yolo_gd.train``, ``yolo-gd train`` and sweep specs build one, so a bad value is one
:class:`~yolo_gd.errors.UserError` line (key, rule, fix) before any model is built or folder created. Optimizer and
schedule names, group rules and durations are checked against their registries here too.

The config travels with the callbacks into DDP workers (Ultralytics cloudpickles them), so it holds only plain
values, registry names and user callables, never trainer objects. Unpickling does not validate again.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import field_validator, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

from yolo_gd.errors import UserError
from yolo_gd.optim.sam import SAM_FAMILY
from yolo_gd.schema import SCHEMA_CONFIG, Count, Flag, Fraction, NonNegative, Positive, checked, option, show

TELEMETRY_LEVELS = ("off", "basic", "full")
WARMUP_KINDS = ("linear", "exp")
#: Options that change the optimizer, its step or its schedule: they need an injected optimizer.
STEP_OPTIONS = ("clip", "schedule", "schedule_kwargs", "warmup", "warmup_kind", "lr", "momentum", "weight_decay",
                "optimizer_kwargs", "warmup_bias_lr", "warmup_momentum", "warmup_beta1", "scale_weight_decay",
                "groups", "lr_decay", "unfreeze", "unfreeze_ramp")
#: yolo_gd options that share their name with an Ultralytics train key: in observe-only mode ``yolo_gd.train``
#: and the CLI hand them to Ultralytics unchanged.
SHARED_WITH_ULTRALYTICS = ("momentum", "weight_decay", "warmup_bias_lr", "warmup_momentum")
#: Options of the SAM family (optimizer=sam|asam|gsam); refused with any other optimizer.
SAM_OPTIONS = ("base", "rho", "sam_alpha")


class _Unset:
    """Sentinel for "not given" where ``None`` has a meaning (``clip=None`` means no clipping)."""

    _instance = None

    def __new__(cls):  # one instance, also after unpickling, so `is UNSET` keeps working
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __reduce__(self):
        return (_Unset, ())

    def __repr__(self):
        return "UNSET"

    def __bool__(self):
        return False


UNSET: Any = _Unset()

_DURATION = "a duration: optimizer steps (500, '500it'), epochs ('3ep') or a fraction of the run ('0.05dur')"


@checked
@dataclass(frozen=True, config=SCHEMA_CONFIG)
class InjectConfig:
    """The optimizer, schedule and step options of one attached run.

    ``optimizer=None`` (or ``'auto'``) is observe-only: Ultralytics keeps its optimizer, schedule and clipping,
    yolo_gd records. Any hyperparameter left ``None`` is resolved at train time from Ultralytics' keys (``lr0``,
    ``momentum``, ``weight_decay``, ``warmup_*``, ``lrf``, ``cos_lr``) or the registry's defaults (see
    ``inject/resolve.py``).
    """

    optimizer: Any = option(None, "optimizer to inject; none or auto: observe-only, Ultralytics' own",
                            "a registry name (sgd, adamw, lion...), 'pkg.mod:Class', a class or a callable", "adamw")
    lr: Positive | None = option(None, "base learning rate of the injected optimizer; default: lr0 if given, "
                                       "else the registry's", "> 0 (a number)", 0.001)
    momentum: Fraction | None = option(None, "SGD momentum, or beta1 of Adam-style optimizers",
                                       "a number in [0, 1)", 0.9)
    weight_decay: NonNegative | None = option(None, "weight decay; default: Ultralytics' weight_decay",
                                              ">= 0 (a number)", 0.0005)
    optimizer_kwargs: dict[str, Any] = option(meaning="other optimizer constructor arguments: betas, eps...",
                                              rule="a mapping of constructor arguments", example="{betas: [0.9, 0.99]}",
                                              factory=dict)
    schedule: Any = option(None, "LR schedule; none: Ultralytics' own lrf/cos_lr staircase",
                           "a schedule name (cosine, wsd, one_cycle...), a callable or an lr_scheduler class", "cosine")
    schedule_kwargs: dict[str, Any] = option(meaning="options of the named schedule", factory=dict,
                                             rule="a mapping of schedule options", example="{final: 0.01}")
    warmup: Any = option(None, "warmup length; none: Ultralytics' warmup_epochs", _DURATION, "1ep")
    warmup_kind: Literal["linear", "exp"] = option("linear", "warmup curve", "linear or exp", "linear")
    warmup_bias_lr: NonNegative | None = option(None, "bias LR at the start of warmup", ">= 0 (a number)", 0.1)
    warmup_momentum: Fraction | None = option(None, "momentum at the start of warmup", "a number in [0, 1)", 0.8)
    warmup_beta1: Flag = option(False, "also warm beta1 of Adam-style optimizers", "true or false", "true")
    clip: Any = option(UNSET, "max gradient norm; none: no clipping", "> 0 (a max-norm), or none for no clipping",
                       10.0, shown="10.0")
    scale_weight_decay: Flag = option(True, "scale weight decay by batch*accumulate/nbs as Ultralytics does",
                                      "true or false", "true")
    groups: Any = option(None, "per-parameter LR/WD multipliers by glob or preset (backbone, neck, head)",
                         "a mapping {glob: {lr: mult, wd: mult}} or 'glob:mult,...'",
                         "{'model.[0-9].*': {lr: 0.1}}")
    lr_decay: Positive | None = option(None, "layer-wise LR: head at lr, each earlier top-level module x lr_decay",
                                       "a number in (0, 1]", 0.8)
    unfreeze: Any = option(None, "unfreeze what freeze= froze: at a duration, or [glob, duration] pairs",
                           "a duration ('3ep') or a list of [glob, duration] pairs", "3ep")
    unfreeze_ramp: Any = option("1ep", "LR ramp (linear from 0) of unfrozen parameters after they join",
                                _DURATION, "1ep")
    ema: Flag = option(True, "keep Ultralytics' EMA of the weights (false: validate and save the raw model)",
                       "true or false", "false")
    ema_decay: Fraction | None = option(None, "EMA max decay (Ultralytics' 0.9999)", "a number in [0, 1)", 0.999)
    ema_tau: Positive | None = option(None, "EMA ramp time constant in updates (Ultralytics' 2000)", "> 0 (a number)",
                                      500)
    telemetry: Literal["off", "basic", "full"] = option("basic", "per-step telemetry: off, basic or full",
                                                        "off, basic or full", "basic")
    telemetry_every: Count = option(0, "flush telemetry every N optimizer steps; 0: at epoch ends",
                                    "a whole number >= 0", 0)
    base: Any = option(None, "base optimizer of optimizer=sam|asam|gsam (the one that takes the step)",
                       "a registry name (sgd, adamw...)", "sgd")
    rho: Positive | None = option(None, "SAM-family perturbation radius (sam, gsam 0.05; asam 0.5)", "> 0 (a number)",
                                  0.05)
    sam_alpha: Fraction | None = option(None, "GSAM's surrogate-gap weight (default 0.4)", "a number in [0, 1)", 0.4)
    mlflow_steps: Flag = option(True, "per-step telemetry into the MLflow run Ultralytics' integration opened "
                                      "(only when it is enabled: yolo settings mlflow=True)", "true or false", "false")
    wandb_steps: Flag = option(True, "per-step telemetry into the W&B run Ultralytics' integration opened "
                                     "(only when it is enabled: yolo settings wandb=True)", "true or false", "false")
    comet_steps: Flag = option(True, "per-step telemetry into the Comet experiment Ultralytics' integration opened "
                                     "(only when it is enabled: yolo settings comet=True)", "true or false", "false")
    clearml_steps: Flag = option(True, "per-step telemetry into the ClearML task Ultralytics' integration opened "
                                       "(only when it is enabled: yolo settings clearml=True)", "true or false",
                                 "false")
    exact_resume: Flag = option(False, "observe-only: keep fp32 weights, optimizer state and the random state per "
                                       "epoch so a resume is bit-identical (injected runs always do)",
                                "true or false", "true")
    allow_resume_change: Flag = option(False, "let a resume change the optimizer or schedule", "true or false",
                                       "true")

    # -- per-field rules ----------------------------------------------------------------------------------------
    @field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip()
            if v.lower() == "auto":
                return None
            if not v:
                raise UserError("an optimizer name is empty: name one (sgd, adamw...), or none for observe-only")
        if isinstance(v, str) and v.lower() in SAM_FAMILY:
            return v.lower()  # a SAM-family wrapper: its `base` is checked with the other fields
        if v is not None:
            from yolo_gd.optim.registry import resolve_optimizer

            resolve_optimizer(v)  # unknown names: did-you-mean; missing extras: the pip command
        return v

    @field_validator("telemetry", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("warmup_kind", mode="before")
    @classmethod
    def _lower_kind(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("clip", mode="before")
    @classmethod
    def _clip(cls, v: Any) -> Any:
        if v is UNSET or v is None:
            return v
        if isinstance(v, str) and v.strip().lower() in ("none", "null", "off"):
            return None
        try:
            number = float(v) if not isinstance(v, bool) else float("nan")
        except (TypeError, ValueError):
            number = float("nan")
        if not number > 0 or number == float("inf"):
            raise PydanticCustomError("bad_clip", "not a positive max-norm")
        return number

    @field_validator("warmup", mode="before")
    @classmethod
    def _warmup(cls, v: Any) -> Any:
        if v is not None:
            from yolo_gd.optim.durations import parse_duration

            parse_duration(v)  # malformed, negative, a 'dur' fraction above 1: the accepted forms
        return v

    @field_validator("groups", mode="before")
    @classmethod
    def _groups(cls, v: Any) -> Any:
        if v is not None:
            from yolo_gd.optim.groups import parse_rules

            parse_rules(v)
        return v

    @field_validator("lr_decay", mode="after")
    @classmethod
    def _lr_decay(cls, v: Any) -> Any:
        if v is not None and not 0 < v <= 1:
            raise PydanticCustomError("bad_lr_decay", "not in (0, 1]")
        return v

    @field_validator("unfreeze", mode="before")
    @classmethod
    def _unfreeze(cls, v: Any) -> Any:
        from yolo_gd.optim.unfreeze import parse_unfreeze

        parse_unfreeze(v)
        return v

    @field_validator("unfreeze_ramp", mode="before")
    @classmethod
    def _unfreeze_ramp(cls, v: Any) -> Any:
        from yolo_gd.optim.durations import parse_duration

        parse_duration(v)
        return v

    @field_validator("optimizer_kwargs", mode="after")
    @classmethod
    def _optimizer_kwargs(cls, v: dict) -> dict:
        for key, value in v.items():
            rule = _HPARAM_RULES.get(key)
            if rule is not None and not rule[0](value):
                example = "; e.g. optimizer_kwargs={betas: [0.9, 0.999]}" if key == "betas" else ""
                raise UserError(f"{key} must be {rule[1]}, got {show(value)}{example}", key="optimizer_kwargs")
        return v

    # -- rules across fields ------------------------------------------------------------------------------------
    @model_validator(mode="after")
    def _together(self) -> InjectConfig:
        if self.optimizer is None:
            _check_observe_only(self)
            _check_sam(self)
        else:
            _check_with_optimizer(self)
        return self

    @property
    def observe_only(self) -> bool:
        return self.optimizer is None

    @property
    def sam(self):
        """The SAM-family rule (``optim/sam.SamRule``) of ``optimizer=sam|asam|gsam``, else None."""
        from yolo_gd.optim.sam import sam_rule

        return sam_rule(self.optimizer, self.rho, self.sam_alpha) if self.optimizer in SAM_FAMILY else None

    @property
    def optimizer_to_build(self) -> Any:
        """The optimizer that takes the step: ``base`` for the SAM family, else ``optimizer``."""
        return self.base if self.optimizer in SAM_FAMILY else self.optimizer

    @property
    def clip_norm(self) -> float | None:
        return 10.0 if self.clip is UNSET else (None if self.clip is None else float(self.clip))

    def given_options(self) -> dict[str, str]:
        """The options that differ from their defaults, as short text (tracker parameters, e.g. ``optimizer``)."""
        return {name: show(getattr(self, name)) for name in InjectConfig.__pydantic_fields__ if _given(self, name)}

    def fingerprint(self) -> dict:
        """What must match for a resume to continue the same run (plain data, stored beside the checkpoint)."""
        sam = {"sam": {**self.sam.plain(), "base": _spec_name(self.base)}} if self.sam is not None else {}
        return {
            **sam,
            "optimizer": _spec_name(self.optimizer),
            "schedule": _spec_name(self.schedule),
            "schedule_kwargs": {k: repr(v) for k, v in sorted(self.schedule_kwargs.items())},
            "warmup": repr(self.warmup),
        }


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


#: optimizer_kwargs the schema range-checks (others are the optimizer constructor's to check).
_HPARAM_RULES = {
    "betas": (lambda v: isinstance(v, (list, tuple)) and len(v) in (2, 3) and all(_num(b) and 0 <= b < 1 for b in v),
              "two numbers in [0, 1) (three for Adan)"),
    "momentum": (lambda v: _num(v) and 0 <= v < 1, "a number in [0, 1)"),
    "lr": (lambda v: _num(v) and v > 0, "> 0 (a number)"),
    "eps": (lambda v: _num(v) and v > 0, "> 0 (a number)"),
    "weight_decay": (lambda v: _num(v) and v >= 0, ">= 0 (a number)"),
    "dampening": (lambda v: _num(v) and 0 <= v <= 1, "a number in [0, 1]"),
}


def _given(cfg: InjectConfig, name: str) -> bool:
    f = InjectConfig.__pydantic_fields__[name]
    default = f.default_factory() if f.default_factory is not None else f.default
    value = getattr(cfg, name)
    return value is not default and value != default


def _check_observe_only(cfg: InjectConfig) -> None:
    given = [k for k in STEP_OPTIONS if _given(cfg, k)]
    if not given:
        return
    shared = [k for k in given if k in SHARED_WITH_ULTRALYTICS or k == "lr"]
    hint = ""
    if shared:
        hint = (f"; or, to keep Ultralytics' own optimizer, give its keys to model.train instead "
                f"({', '.join(('lr0' if k == 'lr' else k) + '=...' for k in shared)})")
    raise UserError(f"{', '.join(given)} given without an optimizer: observe-only mode keeps Ultralytics' own "
                    f"optimizer, schedule and clipping; pass optimizer=... (e.g. optimizer='sgd') to inject them"
                    f"{hint}", key=given[0])


def _check_sam(cfg: InjectConfig) -> None:
    if cfg.optimizer not in SAM_FAMILY:
        given = [k for k in SAM_OPTIONS if getattr(cfg, k) is not None]
        if given:
            raise UserError(f"{given[0]} is an option of the SAM family: use optimizer=sam|asam|gsam with "
                            f"base=<optimizer>, or remove {given[0]}=", key=given[0])
        return
    if cfg.base is None or (isinstance(cfg.base, str) and cfg.base.lower() in SAM_FAMILY):
        raise UserError(f"optimizer={cfg.optimizer} needs base=<optimizer> (the optimizer that takes the step), "
                        f"e.g. optimizer={cfg.optimizer} base=sgd", key="base")
    cfg.sam  # noqa: B018 (checks rho/sam_alpha against the variant)


def _check_with_optimizer(cfg: InjectConfig) -> None:
    from yolo_gd.optim.registry import accepted_hparams, refuse_hparams, resolve_optimizer
    from yolo_gd.optim.schedule_registry import get_schedule

    _check_sam(cfg)
    info = resolve_optimizer(cfg.optimizer_to_build)
    try:
        refuse_hparams(info, cfg.optimizer_kwargs)
    except UserError as e:
        raise UserError(str(e), key="optimizer_kwargs") from None
    if info.has_train_eval_mode and cfg.unfreeze is not None:
        # schedulefree's bias correction counts a group's steps from the start of training: a group joining late
        # would take a first step far too large (~10x for one joining at step 100).
        raise UserError(f"unfreeze= with the schedule-free optimizer '{info.name}' is not supported (a group that "
                        f"joins late would get a wrong first step): use another optimizer, or drop unfreeze=",
                        key="unfreeze")
    if cfg.optimizer_kwargs and isinstance(info.load(), type):
        accepted = accepted_hparams(info)
        for key in cfg.optimizer_kwargs:
            if accepted is not None and key not in accepted:
                raise UserError(f"optimizer '{info.name}' does not take '{key}' (it takes: {', '.join(accepted)}): "
                                f"remove it from optimizer_kwargs", key="optimizer_kwargs")
    if cfg.schedule is not None:
        try:
            get_schedule(cfg.schedule, **cfg.schedule_kwargs)
        except UserError as e:
            raise UserError(str(e), key="schedule") from None
        except TypeError as e:
            raise UserError(f"bad options for schedule {show(cfg.schedule)}: {e}", key="schedule") from None


def _spec_name(spec: Any) -> str | None:
    if spec is None or isinstance(spec, str):
        return spec.lower() if isinstance(spec, str) else None
    return f"{getattr(spec, '__module__', '?')}:{getattr(spec, '__qualname__', type(spec).__name__)}"

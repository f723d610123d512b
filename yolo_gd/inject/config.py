"""What the user asked ``attach`` for, checked at construction (pure data, picklable).

The config travels with the callbacks into DDP workers (Ultralytics cloudpickles them), so it holds only plain
values, registry names and user callables, never trainer objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from yolo_gd.errors import UserError

TELEMETRY_LEVELS = ("off", "basic", "full")


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


@dataclass(frozen=True)
class InjectConfig:
    """The optimizer, schedule and step options of one attached run.

    ``optimizer=None`` is observe-only: Ultralytics keeps its optimizer, schedule and clipping, yolo_gd records.
    Any hyperparameter left ``None`` is resolved at train time from Ultralytics' keys (``lr0``, ``momentum``,
    ``weight_decay``, ``warmup_*``, ``lrf``, ``cos_lr``) or the registry's defaults (see ``inject/resolve.py``).
    """

    optimizer: Any = None
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    optimizer_kwargs: dict = field(default_factory=dict)
    schedule: Any = None
    schedule_kwargs: dict = field(default_factory=dict)
    warmup: Any = None  # Duration-like ('3ep', '500it', 0.05 'dur'...); None: Ultralytics' warmup_epochs
    warmup_kind: str = "linear"
    warmup_bias_lr: float | None = None
    warmup_momentum: float | None = None
    warmup_beta1: bool = False
    clip: Any = UNSET  # float max-norm, None for no clipping; UNSET: Ultralytics' 10.0
    scale_weight_decay: bool = True
    groups: Any = None  # glob -> {'lr': mult, 'wd': mult}
    telemetry: str = "basic"
    telemetry_every: int = 0  # flush every N optimizer steps (0: at epoch ends and exit only)
    allow_resume_change: bool = False

    def __post_init__(self):
        if self.telemetry not in TELEMETRY_LEVELS:
            raise UserError(f"telemetry must be one of {', '.join(TELEMETRY_LEVELS)}, got '{self.telemetry}'")
        if self.telemetry_every < 0:
            raise UserError(f"telemetry_every must be >= 0 optimizer steps, got {self.telemetry_every}")
        if self.optimizer is None:
            given = [k for k in ("schedule", "warmup", "lr", "momentum", "weight_decay", "groups") if getattr(self, k)]
            if self.clip is not UNSET:
                given.insert(0, "clip")
            if given:
                raise UserError(
                    f"{', '.join(given)} given without an optimizer: observe-only mode keeps Ultralytics' own "
                    f"optimizer, schedule and clipping; pass optimizer=... (e.g. optimizer='sgd') to inject them"
                )
            return
        if self.clip is not UNSET and self.clip is not None and not (float(self.clip) > 0):
            raise UserError(f"clip must be a positive max-norm or None (no clipping), got {self.clip}")
        for name in ("lr", "weight_decay"):
            v = getattr(self, name)
            if v is not None and not (v > 0 if name == "lr" else v >= 0):
                rule = "> 0" if name == "lr" else ">= 0"
                raise UserError(f"{name} must be {rule}, got {v}")
        if self.warmup_kind not in ("linear", "exp"):
            raise UserError(f"warmup_kind must be 'linear' or 'exp', got '{self.warmup_kind}'")

    @property
    def observe_only(self) -> bool:
        return self.optimizer is None

    @property
    def clip_norm(self) -> float | None:
        return 10.0 if self.clip is UNSET else (None if self.clip is None else float(self.clip))

    def fingerprint(self) -> dict:
        """What must match for a resume to continue the same run (plain data, stored beside the checkpoint)."""
        return {
            "optimizer": _spec_name(self.optimizer),
            "schedule": _spec_name(self.schedule),
            "schedule_kwargs": {k: repr(v) for k, v in sorted(self.schedule_kwargs.items())},
            "warmup": repr(self.warmup),
        }


def _spec_name(spec: Any) -> str | None:
    if spec is None or isinstance(spec, str):
        return spec.lower() if isinstance(spec, str) else None
    return f"{getattr(spec, '__module__', '?')}:{getattr(spec, '__qualname__', type(spec).__name__)}"

"""Schedules by name: the :data:`SCHEDULES` registry and :func:`get_schedule`, which also takes callables, torch
lr_scheduler classes and 'package.module:Name' import paths.

Names, aliases, the unknown-name error and import paths work exactly as for optimizers: both registries are a
:class:`~yolo_gd.optim.named_registry.NamedRegistry`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from yolo_gd.errors import UserError
from yolo_gd.optim.builtin_schedules import (
    constant,
    cosine,
    cyclic,
    exponential,
    linear,
    multistep,
    one_cycle,
    polynomial,
    step,
    wsd,
)
from yolo_gd.optim.named_registry import NamedRegistry, import_path
from yolo_gd.optim.schedule_adapters import _is_torch_scheduler_class, from_callable, from_torch, ul_cosine, ul_linear
from yolo_gd.optim.schedule_base import Schedule, _Base

__all__ = ["SCHEDULES", "SchedInfo", "get_schedule"]


@dataclass(frozen=True)
class SchedInfo:
    """One registered schedule: its factory, a one-line summary, aliases, and example options for required args."""

    name: str
    factory: Callable[..., Schedule]
    summary: str
    aliases: tuple[str, ...] = ()
    example: Mapping[str, Any] = field(default_factory=dict)


def _info_of(factory: Callable[..., Schedule], summary: str, aliases: tuple[str, ...] = (), **example: Any
             ) -> SchedInfo:
    return SchedInfo(factory.__name__, factory, summary, aliases, example)


SCHEDULES: NamedRegistry[SchedInfo] = NamedRegistry("schedule")
"""Canonical name -> :class:`SchedInfo` (a read-only mapping; :meth:`~NamedRegistry.lookup` takes any spelling)."""

for _info in (
    _info_of(constant, "base LR throughout", ("const", "fixed", "none")),
    _info_of(linear, "1 -> end in a straight line", ("lin",)),
    _info_of(cosine, "1 -> end along a half-cosine", ("cos",)),
    _info_of(one_cycle, "Smith's one-cycle: start -> max_mult -> end (torch OneCycleLR)", ("onecycle", "1cycle")),
    _info_of(step, "times gamma every interval (torch StepLR)", ("steplr",), every="0.25dur"),
    _info_of(multistep, "times gamma at each milestone", ("multi_step",), milestones=["0.5dur", "0.75dur"]),
    _info_of(exponential, "geometric decay 1 -> end", ("exp",)),
    _info_of(polynomial, "end + (1 - end) * (1 - t) ** power", ("poly",)),
    _info_of(wsd, "warmup-stable-decay: 1, then decay over the last part", ("warmup_stable_decay",)),
    _info_of(cyclic, "cycle low -> high -> low every period", ("cyclical", "clr"), period="0.25dur"),
    _info_of(ul_linear, "Ultralytics' default per-epoch linear (1 -> lrf)", ("ultralytics_linear",)),
    _info_of(ul_cosine, "Ultralytics' cos_lr per-epoch cosine (1 -> lrf)", ("ultralytics_cosine", "ul_cos")),
):
    SCHEDULES.register(_info.name, _info, _info.aliases)
del _info


def _from_object(obj: Any, kwargs: dict[str, Any], label: str) -> Schedule:
    if _is_torch_scheduler_class(obj):
        return from_torch(obj, **kwargs)
    if isinstance(obj, type):
        try:
            made = obj(**kwargs)
        except TypeError as e:
            raise UserError(f"schedule {label}: {obj.__name__}(**{kwargs!r}) failed: {e}.") from None
        return _from_object(made, {}, label)
    if callable(obj):
        if kwargs:
            raise UserError(
                f"schedule {label} is a function and takes no options (got {', '.join(sorted(kwargs))}): "
                f"bind them yourself with functools.partial, or give a class that takes them."
            )
        return obj if isinstance(obj, _Base) else from_callable(obj)
    raise UserError(f"schedule {label} is {type(obj).__name__}, not a schedule: give a name, a callable or a class.")


def _call_factory(info: SchedInfo, kwargs: dict[str, Any]) -> Schedule:
    params = inspect.signature(info.factory).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        valid = ", ".join(params) or "none"
        raise UserError(
            f"schedule '{info.name}' has no option {', '.join(repr(u) for u in unknown)}: valid options: {valid}."
        )
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in kwargs]
    if missing:
        examples = ", ".join(f"{n}={info.example[n]!r}" for n in missing if n in info.example)
        hint = f" (e.g. {examples})" if examples else ""
        raise UserError(f"schedule '{info.name}' needs option {', '.join(repr(m) for m in missing)}{hint}.")
    return info.factory(**kwargs)


def get_schedule(spec: str | Schedule | type, **kwargs: Any) -> Schedule:
    """A schedule from a registered name, a callable, a torch lr_scheduler class or a 'package.module:Name' path.

    Names are case-insensitive and accept aliases ('cos', 'onecycle', 'warmup_stable_decay', 'exp'); ``kwargs``
    are the schedule's options, checked against its factory (unknown or missing options raise
    :class:`UserError` naming the valid ones). A torch scheduler class is adapted with :func:`from_torch` (its
    kwargs passed through), another class is instantiated with the kwargs, a plain callable is wrapped with
    :func:`from_callable`.
    """
    if isinstance(spec, str):
        text = spec.strip()
        if ":" in text:
            return _from_object(import_path(text, "schedule", "Name"), kwargs, f"'{text}'")
        return _call_factory(SCHEDULES.lookup(text), kwargs)
    return _from_object(spec, kwargs, repr(spec))

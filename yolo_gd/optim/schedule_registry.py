"""Schedules by name: the :data:`SCHEDULES` registry and :func:`get_schedule`, which also takes callables, torch
lr_scheduler classes and 'package.module:Name' import paths.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from yolo_gd.errors import UserError, unknown_name
from yolo_gd.optim.schedule_adapters import _is_torch_scheduler_class, from_callable, from_torch, ul_cosine, ul_linear
from yolo_gd.optim.schedule_base import Schedule, _Base
from yolo_gd.optim.schedules import (
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

__all__ = ["SCHEDULES", "SchedInfo", "get_schedule"]


@dataclass(frozen=True)
class SchedInfo:
    """One registered schedule: its factory, a one-line summary, aliases, and example options for required args."""

    name: str
    factory: Callable[..., Schedule]
    summary: str
    aliases: tuple[str, ...] = ()
    example: Mapping[str, Any] = field(default_factory=dict)


def _info(factory: Callable[..., Schedule], summary: str, aliases: tuple[str, ...] = (), **example: Any) -> SchedInfo:
    return SchedInfo(factory.__name__, factory, summary, aliases, example)


SCHEDULES: dict[str, SchedInfo] = {
    i.name: i
    for i in (
        _info(constant, "base LR throughout", ("const", "fixed", "none")),
        _info(linear, "1 -> end in a straight line", ("lin",)),
        _info(cosine, "1 -> end along a half-cosine", ("cos",)),
        _info(one_cycle, "Smith's one-cycle: start -> max_mult -> end (torch OneCycleLR)", ("onecycle", "1cycle")),
        _info(step, "times gamma every interval (torch StepLR)", ("steplr",), every="0.25dur"),
        _info(multistep, "times gamma at each milestone", ("multi_step",), milestones=["0.5dur", "0.75dur"]),
        _info(exponential, "geometric decay 1 -> end", ("exp",)),
        _info(polynomial, "end + (1 - end) * (1 - t) ** power", ("poly",)),
        _info(wsd, "warmup-stable-decay: 1, then decay over the last part", ("warmup_stable_decay",)),
        _info(cyclic, "cycle low -> high -> low every period", ("cyclical", "clr"), period="0.25dur"),
        _info(ul_linear, "Ultralytics' default per-epoch linear (1 -> lrf)", ("ultralytics_linear",)),
        _info(ul_cosine, "Ultralytics' cos_lr per-epoch cosine (1 -> lrf)", ("ultralytics_cosine", "ul_cos")),
    )
}

_LOOKUP: dict[str, SchedInfo] = {
    key: info for info in SCHEDULES.values() for key in (info.name, *info.aliases)
}


def _import_path(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UserError(f"schedule '{spec}' is not an import path: write it as 'package.module:Name'.")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise UserError(f"schedule '{spec}': cannot import module '{module_name}' ({e}).") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UserError(f"schedule '{spec}': module '{module_name}' has no attribute '{attr}'.") from None
    return obj


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
            return _from_object(_import_path(text), kwargs, f"'{text}'")
        info = _LOOKUP.get(text.lower().replace("-", "_"))
        if info is None:
            raise unknown_name("schedule", spec, SCHEDULES)
        return _call_factory(info, kwargs)
    return _from_object(spec, kwargs, repr(spec))

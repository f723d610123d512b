"""Optimizer registry: a name maps to a frozen :class:`OptimInfo` that says how to build it and what it can do.

Modelled on timm's optimizer factory (``timm/optim/_optim_factory.py``): one record per optimizer with capability
flags, so the layers above ask the record ("does this optimizer have a ``momentum`` key to warm up?", "is it adaptive,
so the bias warmup must start at 0?", "does it need ``optimizer.train()``/``eval()``?") instead of special-casing
names. The tests are parametrized over the registry itself, so a new entry is tested the moment it is added.

Pure module ("floor 1"): it imports no Ultralytics trainer code. Optimizer classes are loaded lazily from import
paths, so an optional package (``lion-pytorch``, ``schedulefree``) is imported only when its optimizer is used, and
Ultralytics' ``MuSGD`` only when ``musgd`` is built.

Layout: the record is :mod:`yolo_gd.optim.optim_info`, the built-in records :mod:`yolo_gd.optim.builtin_optimizers`,
construction :mod:`yolo_gd.optim.construct` (``build_optimizer``, re-exported here), and the name lookup shared
with the schedules :mod:`yolo_gd.optim.named_registry`.

Schedule-free (``sfadamw``, ``sfsgd``): these read ``group['lr']`` afresh on every step (times their own
``warmup_steps`` ramp, 0 here), so an externally set warmup works: ``lr_max`` tracks the largest LR seen and the
averaging weight of step k is ``lr_max**2``, so low-LR warmup steps weigh less in the average, as with their internal
warmup. A decaying schedule after warmup is allowed but defeats their purpose (``lr_max`` stays at the peak, the
average keeps uniform weights): pair them with a constant schedule. They also need ``optimizer.train()`` before
stepping (``step()`` raises otherwise) and ``optimizer.eval()`` before validation and checkpointing; ``sfsgd``'s
``momentum`` key must not be ramped by Ultralytics' momentum warmup (its train/eval interpolation assumes a constant
momentum). Both rewrite ``p.grad`` in place during ``step()`` (``sfadamw`` always, ``sfsgd`` when weight decay is
on): read gradients for telemetry before stepping.
"""


from __future__ import annotations

from typing import Any

from yolo_gd.errors import UserError
from yolo_gd.optim.builtin_optimizers import BUILTIN_OPTIMIZERS
from yolo_gd.optim.construct import accepted_hparams, build_optimizer, refuse_hparams
from yolo_gd.optim import libraries
from yolo_gd.optim.named_registry import NamedRegistry, import_path
from yolo_gd.optim.optim_info import OptimInfo, info_from_callable, info_from_class, is_optimizer_class, missing_package

__all__ = [
    "OptimInfo",
    "accepted_hparams",
    "build_optimizer",
    "refuse_hparams",
    "get_optimizer_info",
    "list_optimizers",
    "register_optimizer",
    "resolve_optimizer",
]

_REGISTRY: NamedRegistry[OptimInfo] = NamedRegistry("optimizer")


def register_optimizer(info: OptimInfo, *, overwrite: bool = False) -> OptimInfo:
    """Add ``info`` to the registry under its name and aliases; a clash with another entry is an error."""
    return _REGISTRY.register(info.name, info, info.aliases, overwrite=overwrite)


def list_optimizers(*, include_aliases: bool = False, available_only: bool = False) -> list[str]:
    """Registered optimizer names, sorted; optionally with aliases, or only those whose package is installed."""
    names = [n for n, info in _REGISTRY.items() if info.available or not available_only]
    if include_aliases:
        names += [a for a, n in _REGISTRY.aliases().items() if n in names]
    return sorted(names)


def get_optimizer_info(name: str) -> OptimInfo:
    """The record for a registered name or alias (case-insensitive).

    Raises :class:`UserError` for an unknown name (listing the valid names and the closest one) and for an optimizer
    whose optional package is not installed (saying which ``pip install`` fixes it).
    """
    info = _REGISTRY.lookup(name)
    if info.extra and not info.available:
        raise missing_package(info)
    return info


def resolve_optimizer(spec: Any) -> OptimInfo:
    """Turn whatever the user named into an :class:`OptimInfo`.

    ``spec`` may be a registered name or alias, a library name ``'timm:lamb'`` / ``'pytorch_optimizer:ranger'``
    (:mod:`yolo_gd.optim.libraries`), an import path ``'package.module:Class'`` (imported now, so a typo
    fails before training), a ``torch.optim.Optimizer`` subclass, a callable ``param_groups -> Optimizer`` (it
    receives the param groups, each with its own ``lr``), or an :class:`OptimInfo` (returned as is).

    An optimizer yolo_gd cannot train with is refused here (:class:`UserError`, one line with the reason and the
    alternative): its record's ``refusal`` (library optimizers), or a ``step()`` that needs a closure (yolo_gd's
    optimizer step calls ``step()`` without one, as Ultralytics does).
    """
    info = _resolve(spec)
    if info.refusal:
        raise UserError(info.refusal)
    if info.needs_closure:
        raise UserError(
            f"optimizer '{info.name}' needs a closure in step() (a function that re-evaluates the loss), but "
            "yolo_gd steps the optimizer once per batch without one, as Ultralytics does: use an optimizer whose "
            "step() works without a closure (for SAM/ASAM: optimizer=sam or asam with base=...)"
        )
    return info


def _resolve(spec: Any) -> OptimInfo:
    if isinstance(spec, OptimInfo):
        return spec
    if isinstance(spec, str):
        if ":" not in spec:
            return get_optimizer_info(spec)
        if libraries.is_library_spec(spec):
            return libraries.lookup(spec)
        obj = import_path(spec, "optimizer")
        if is_optimizer_class(obj):
            return info_from_class(obj, spec)
        if callable(obj) and not isinstance(obj, type):
            return info_from_callable(obj, spec)
        raise UserError(
            f"optimizer path '{spec}' names {type(obj).__name__} '{obj!r}', not a torch.optim.Optimizer subclass "
            "or a callable param_groups -> Optimizer"
        )
    if isinstance(spec, type):
        if is_optimizer_class(spec):
            return info_from_class(spec, spec.__name__)
        raise UserError(f"optimizer class {spec.__qualname__} is not a torch.optim.Optimizer subclass")
    if callable(spec):
        return info_from_callable(spec, getattr(spec, "__qualname__", None) or type(spec).__name__)
    raise UserError(
        f"optimizer must be a name, a 'package.module:Class' path, an Optimizer class or a callable, "
        f"not {type(spec).__name__}"
    )


for _info in BUILTIN_OPTIMIZERS:
    register_optimizer(_info)
del _info

"""What yolo_gd knows about one optimizer: the frozen :class:`OptimInfo` record, and records read off a class.

A record says how to build the optimizer (a lazy factory and its defaults) and what it can do (the capability
flags the layers above read instead of special-casing names). The registry (:mod:`yolo_gd.optim.registry`) maps
names to records; :func:`info_from_class` and :func:`info_from_callable` make one on the fly for an optimizer
that is not registered. Pure module ("floor 1"): optimizer classes are imported only when :meth:`OptimInfo.load`
runs, so an optional package is imported only when its optimizer is used.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

from yolo_gd.errors import UserError
from yolo_gd.optim.named_registry import import_path

__all__ = ["OptimInfo", "info_from_callable", "info_from_class", "is_optimizer_class", "signature_params"]


@dataclass(frozen=True)
class OptimInfo:
    """Everything yolo_gd needs to know about one optimizer, without importing it.

    Args:
        name: canonical lower-case name (for on-the-fly records: the spec as given).
        factory: an import path ``'package.module:Class'`` resolved on first use, or a zero-argument loader that
            returns the optimizer class (or a ``params -> Optimizer`` callable). Lazy so that optional packages are
            imported only when their optimizer is actually built.
        defaults: hyperparameter defaults, including this optimizer's own default ``lr``; explicit hyperparameters
            passed to :func:`~yolo_gd.optim.registry.build_optimizer` win over them, and group-level keys win over
            both.
        has_momentum: param groups carry an SGD/RMSprop-style ``momentum`` key (what Ultralytics' warmup ramps).
        has_betas: Adam-style ``betas``; ``beta1`` plays momentum's role.
        needs_closure: ``step()`` must be given a closure that re-evaluates the loss. yolo_gd's optimizer step
            never passes one, so :func:`~yolo_gd.optim.registry.resolve_optimizer` refuses such an optimizer.
        has_train_eval_mode: schedule-free style: ``optimizer.train()`` before training steps and ``optimizer.eval()``
            before evaluating or saving, because the parameters hold a different point in each mode.
        adaptive: per-element step sizes that do not scale with the gradient (Adam family, RMSprop, Adagrad, Lion):
            Ultralytics' bias warmup starting at ``warmup_bias_lr=0.1`` assumes SGD and would blow these up, so the
            bias warmup start defaults to 0 for them (as Ultralytics' ``optimizer=auto`` does).
        fused_on_cuda: torch offers ``fused=True`` on CUDA for this class; ``build_optimizer`` turns it on there.
        extra: the ``yolo_gd`` pip extra that installs the optimizer's package, ``None`` for always-present ones.
        package: the pip distribution name of that package (for the "install it" message).
        muon_groups: the optimizer expects Muon-style groups (``build_param_groups(..., muon=True)``).
        needs_create_graph: ``step()`` estimates a Hessian from the gradients' graph, so the backward must be called
            with ``create_graph=True`` (AdaHessian, SophiaH); Ultralytics' loop does not, so such a record is refused.
        wants_model: the constructor takes the model, not parameter groups (LOMO, AdamMini): refused, because
            Ultralytics' groups and yolo_gd's group rules could not apply.
        own_schedule: the optimizer runs its own LR schedule (Ranger21's warmup and warm-down): refused, because it
            would multiply the schedule yolo_gd writes into ``group['lr']``.
        lr_free: the step size is estimated (D-Adaptation, Prodigy): ``lr`` is a multiplier near 1 and an LR range
            test says nothing about it.
        weight_decay_style: how the optimizer applies ``weight_decay`` (``'l2'``: added to the gradient,
            ``'decoupled'``: ``p -= lr * wd * p`` like AdamW, ``''``: not known); recorded, never changed.
        refusal: a one-line reason, with the alternative, why yolo_gd cannot train with this optimizer;
            :func:`~yolo_gd.optim.registry.resolve_optimizer` raises it. ``None``: usable.
        refused_hparams: constructor keys the optimizer's library offers but yolo_gd must not pass, each with the
            one-line reason and the alternative (timm's ``layer_decay``).
        aliases: other accepted names.
        summary: one line for listings.
    """

    name: str
    factory: str | Callable[[], Any] = field(hash=False)
    defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)
    has_momentum: bool = False
    has_betas: bool = False
    needs_closure: bool = False
    has_train_eval_mode: bool = False
    adaptive: bool = False
    fused_on_cuda: bool = False
    extra: str | None = None
    package: str | None = None
    muon_groups: bool = False
    needs_create_graph: bool = False
    wants_model: bool = False
    own_schedule: bool = False
    lr_free: bool = False
    weight_decay_style: str = ""
    refusal: str | None = None
    refused_hparams: Mapping[str, str] = field(default_factory=dict, hash=False)
    aliases: tuple[str, ...] = ()
    summary: str = ""

    def __post_init__(self):
        # A read-only view, so a caller cannot change a registered optimizer's defaults for everyone by accident.
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))
        object.__setattr__(self, "refused_hparams", MappingProxyType(dict(self.refused_hparams)))
        object.__setattr__(self, "aliases", tuple(self.aliases))

    @property
    def default_lr(self) -> float | None:
        """The optimizer's own default learning rate (``None`` if it has none)."""
        return self.defaults.get("lr")

    @property
    def available(self) -> bool:
        """Whether the optimizer's package can be imported (checked without importing it)."""
        if not isinstance(self.factory, str):
            return True
        return _module_findable(self.factory.partition(":")[0].split(".")[0])  # top level: imports nothing

    def load(self) -> Any:
        """Import and return the optimizer class (or builder callable); a missing package is a :class:`UserError`."""
        if not isinstance(self.factory, str):
            return self.factory()
        if self.extra and not self.available:
            raise missing_package(self)
        try:
            return import_path(self.factory, "optimizer")
        except UserError as e:
            if self.extra:  # installed but broken: still say how to (re)install it
                raise UserError(f"{e} {_install_hint(self)}") from e.__cause__
            raise


def _install_hint(info: OptimInfo) -> str:
    return f"pip install 'yolo_gd[{info.extra}]'"


def missing_package(info: OptimInfo) -> UserError:
    """The error for an optimizer whose optional package is not installed: which ``pip install`` fixes it."""
    return UserError(f"optimizer '{info.name}' needs the package {info.package or info.extra}: {_install_hint(info)}")


def _module_findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package, or a module set to None in sys.modules
        return False


# ------------------------------------------------------------------------------------------ records for other specs


def is_optimizer_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)


def signature_params(obj: Any) -> dict[str, inspect.Parameter] | None:
    """Constructor/callable parameters after the first (``params``); ``None`` if they cannot be read."""
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return None
    return {p.name: p for p in params[1:] if p.kind is not inspect.Parameter.VAR_POSITIONAL}


def info_from_class(cls: type, name: str) -> OptimInfo:
    """A record for an unregistered optimizer class, its flags read off its constructor and methods.

    ``fused_on_cuda`` stays False (a ``fused`` argument does not say which devices it supports: pass ``fused=True``
    explicitly); ``adaptive`` is guessed as "has betas or eps", the mark of per-element step sizes.
    """
    sig = signature_params(cls) or {}
    lr_default = sig["lr"].default if "lr" in sig else inspect.Parameter.empty
    defaults = {"lr": lr_default} if isinstance(lr_default, (int, float)) and not isinstance(lr_default, bool) else {}
    step_sig = signature_params(getattr(cls, "step", None)) if hasattr(cls, "step") else None
    closure = (step_sig or {}).get("closure")
    has_betas = "betas" in sig
    return OptimInfo(
        name=name,
        factory=lambda: cls,
        defaults=defaults,
        has_momentum="momentum" in sig,
        has_betas=has_betas,
        # SAM-style classes (first_step/second_step) need their closure even where its default is None
        needs_closure=(closure is not None and closure.default is inspect.Parameter.empty) or _sam_style(cls),
        has_train_eval_mode=callable(getattr(cls, "train", None)) and callable(getattr(cls, "eval", None)),
        adaptive=has_betas or "eps" in sig,
        summary=f"{cls.__module__}.{cls.__qualname__} (flags read from its signature)",
    )


def _sam_style(cls: type) -> bool:
    return callable(getattr(cls, "first_step", None)) and callable(getattr(cls, "second_step", None))


def info_from_callable(fn: Callable, name: str) -> OptimInfo:
    """A record for a ``params -> Optimizer`` callable: no defaults, every capability flag unknown (False)."""
    return OptimInfo(name=name, factory=lambda: fn, summary=f"callable {name}(param_groups) -> Optimizer")

"""Optimizer registry: a name maps to a frozen :class:`OptimInfo` that says how to build it and what it can do.

Modelled on timm's optimizer factory (``timm/optim/_optim_factory.py``): one record per optimizer with capability
flags, so the layers above ask the record ("does this optimizer have a ``momentum`` key to warm up?", "is it adaptive,
so the bias warmup must start at 0?", "does it need ``optimizer.train()``/``eval()``?") instead of special-casing
names. The tests are parametrized over the registry itself, so a new entry is tested the moment it is added.

Pure module ("floor 1"): it imports no Ultralytics trainer code. Optimizer classes are loaded lazily from import
paths, so an optional package (``lion-pytorch``, ``schedulefree``) is imported only when its optimizer is used, and
Ultralytics' ``MuSGD`` only when ``musgd`` is built.

Schedule-free (``sfadamw``, ``sfsgd``): these read ``group['lr']`` afresh on every step (times their own
``warmup_steps`` ramp, 0 here), so an externally set warmup works: ``lr_max`` tracks the largest LR seen and the
averaging weight of step k is ``lr_max**2``, so low-LR warmup steps weigh less in the average, as with their internal
warmup. A decaying schedule after warmup is allowed but defeats their purpose (``lr_max`` stays at the peak, the
average keeps uniform weights): pair them with a constant schedule. They also need ``optimizer.train()`` before
stepping (``step()`` raises otherwise) and ``optimizer.eval()`` before validation and checkpointing; ``sfsgd``'s
``momentum`` key must not be ramped by Ultralytics' momentum warmup (its train/eval interpolation assumes a constant
momentum). Both rewrite ``p.grad`` in place during ``step()`` (``sfadamw`` always, ``sfsgd`` when weight decay is
on): read gradients for telemetry before stepping.

Faithfulness: ``sgd`` and ``adamw`` built here with Ultralytics' hyperparameters and groups step bit-identically to
the optimizers ``BaseTrainer.build_optimizer`` constructs (same class, same constructor arguments; on CPU nothing is
added, so torch picks the same for-loop/foreach implementation).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

from yolo_gd.errors import UserError, unknown_name

__all__ = [
    "OptimInfo",
    "accepted_hparams",
    "build_optimizer",
    "get_optimizer_info",
    "list_optimizers",
    "register_optimizer",
    "resolve_optimizer",
]


@dataclass(frozen=True)
class OptimInfo:
    """Everything yolo_gd needs to know about one optimizer, without importing it.

    Args:
        name: canonical lower-case name (for on-the-fly records: the spec as given).
        factory: an import path ``'package.module:Class'`` resolved on first use, or a zero-argument loader that
            returns the optimizer class (or a ``params -> Optimizer`` callable). Lazy so that optional packages are
            imported only when their optimizer is actually built.
        defaults: hyperparameter defaults, including this optimizer's own default ``lr``; explicit hyperparameters
            passed to :func:`build_optimizer` win over them, and group-level keys win over both.
        has_momentum: param groups carry an SGD/RMSprop-style ``momentum`` key (what Ultralytics' warmup ramps).
        has_betas: Adam-style ``betas``; ``beta1`` plays momentum's role.
        has_eps: takes an ``eps`` numerical-stability term.
        needs_closure: ``step()`` must be given a closure that re-evaluates the loss.
        has_train_eval_mode: schedule-free style: ``optimizer.train()`` before training steps and ``optimizer.eval()``
            before evaluating or saving, because the parameters hold a different point in each mode.
        adaptive: per-element step sizes that do not scale with the gradient (Adam family, RMSprop, Adagrad, Lion):
            Ultralytics' bias warmup starting at ``warmup_bias_lr=0.1`` assumes SGD and would blow these up, so the
            bias warmup start defaults to 0 for them (as Ultralytics' ``optimizer=auto`` does).
        fused_on_cuda: torch offers ``fused=True`` on CUDA for this class; :func:`build_optimizer` turns it on there.
        foreach: the constructor accepts ``foreach=``.
        extra: the ``yolo_gd`` pip extra that installs the optimizer's package, ``None`` for always-present ones.
        package: the pip distribution name of that package (for the "install it" message).
        muon_groups: the optimizer expects Muon-style groups (``build_param_groups(..., muon=True)``).
        aliases: other accepted names.
        summary: one line for listings.
    """

    name: str
    factory: str | Callable[[], Any] = field(hash=False)
    defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)
    has_momentum: bool = False
    has_betas: bool = False
    has_eps: bool = False
    needs_closure: bool = False
    has_train_eval_mode: bool = False
    adaptive: bool = False
    fused_on_cuda: bool = False
    foreach: bool = False
    extra: str | None = None
    package: str | None = None
    muon_groups: bool = False
    aliases: tuple[str, ...] = ()
    summary: str = ""

    def __post_init__(self):
        # A read-only view, so a caller cannot change a registered optimizer's defaults for everyone by accident.
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))
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
            raise _missing_package(self)
        try:
            return _import_path(self.factory)
        except UserError as e:
            if self.extra:  # installed but broken: still say how to (re)install it
                raise UserError(f"{e} {_install_hint(self)}") from e.__cause__
            raise


# --------------------------------------------------------------------------------------------------------- registry

_REGISTRY: dict[str, OptimInfo] = {}
_ALIASES: dict[str, str] = {}


def _norm(name: str) -> str:
    """Names are case-insensitive and '-' equals '_' (``SGD``, ``AdamW``, ``sgd-plain`` all work)."""
    return str(name).strip().lower().replace("-", "_")


def register_optimizer(info: OptimInfo, *, overwrite: bool = False) -> OptimInfo:
    """Add ``info`` to the registry under its name and aliases; a clash with another entry is an error."""
    name = _norm(info.name)
    if name != info.name:
        raise UserError(f"optimizer name '{info.name}' must be lower case with '_' (use '{name}')")
    keys = [name, *(_norm(a) for a in info.aliases)]
    for key in keys:
        owner = key if key in _REGISTRY else _ALIASES.get(key)
        if owner is not None and owner != name:
            raise UserError(f"optimizer name '{key}' is already taken by '{owner}': pick another name or alias")
    if name in _REGISTRY and not overwrite:
        raise UserError(f"optimizer '{name}' is already registered: pass overwrite=True to replace it")
    if overwrite and name in _REGISTRY:  # drop the old record's aliases
        for alias in [a for a, n in _ALIASES.items() if n == name]:
            del _ALIASES[alias]
    _REGISTRY[name] = info
    for alias in keys[1:]:
        _ALIASES[alias] = name
    return info


def list_optimizers(*, include_aliases: bool = False, available_only: bool = False) -> list[str]:
    """Registered optimizer names, sorted; optionally with aliases, or only those whose package is installed."""
    names = [n for n, info in _REGISTRY.items() if info.available or not available_only]
    if include_aliases:
        names += [a for a, n in _ALIASES.items() if n in names]
    return sorted(names)


def get_optimizer_info(name: str) -> OptimInfo:
    """The record for a registered name or alias (case-insensitive).

    Raises :class:`UserError` for an unknown name (listing the valid names and the closest one) and for an optimizer
    whose optional package is not installed (saying which ``pip install`` fixes it).
    """
    key = _norm(name)
    key = _ALIASES.get(key, key)
    info = _REGISTRY.get(key)
    if info is None:
        raise unknown_name("optimizer", name, list_optimizers(include_aliases=True))
    if info.extra and not info.available:
        raise _missing_package(info)
    return info


def _install_hint(info: OptimInfo) -> str:
    return f"pip install 'yolo_gd[{info.extra}]'"


def _missing_package(info: OptimInfo) -> UserError:
    return UserError(f"optimizer '{info.name}' needs the package {info.package or info.extra}: {_install_hint(info)}")


def _module_findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package, or a module set to None in sys.modules
        return False


# ------------------------------------------------------------------------------------------------- resolving specs


def _import_path(path: str) -> Any:
    """Resolve ``'package.module:Attr'`` (``Attr`` may be dotted); every failure is a :class:`UserError`."""
    module_name, sep, attr = str(path).partition(":")
    if not sep or not module_name.strip() or not attr.strip() or ":" in attr:
        raise UserError(f"optimizer path '{path}' must look like 'package.module:Class' (one ':' between them)")
    module_name, attr = module_name.strip(), attr.strip()
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise UserError(
            f"optimizer path '{path}': cannot import module '{module_name}' ({e}); "
            "check the spelling and that its package is installed"
        ) from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserError(
                f"optimizer path '{path}': module '{module_name}' has no attribute '{attr}'; "
                "check the class name (it is case-sensitive)"
            )
        obj = getattr(obj, part)
    return obj


def _is_optimizer_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)


def _signature_params(obj: Any) -> dict[str, inspect.Parameter] | None:
    """Constructor/callable parameters after the first (``params``); ``None`` if they cannot be read."""
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return None
    return {p.name: p for p in params[1:] if p.kind is not inspect.Parameter.VAR_POSITIONAL}


def _info_from_class(cls: type, name: str) -> OptimInfo:
    """A record for an unregistered optimizer class, its flags read off its constructor and methods.

    ``fused_on_cuda`` stays False (a ``fused`` argument does not say which devices it supports: pass ``fused=True``
    explicitly); ``adaptive`` is guessed as "has betas or eps", the mark of per-element step sizes.
    """
    sig = _signature_params(cls) or {}
    lr_default = sig["lr"].default if "lr" in sig else inspect.Parameter.empty
    defaults = {"lr": lr_default} if isinstance(lr_default, (int, float)) and not isinstance(lr_default, bool) else {}
    step_sig = _signature_params(getattr(cls, "step", None)) if hasattr(cls, "step") else None
    closure = (step_sig or {}).get("closure")
    has_betas, has_eps = "betas" in sig, "eps" in sig
    return OptimInfo(
        name=name,
        factory=lambda: cls,
        defaults=defaults,
        has_momentum="momentum" in sig,
        has_betas=has_betas,
        has_eps=has_eps,
        needs_closure=closure is not None and closure.default is inspect.Parameter.empty,
        has_train_eval_mode=callable(getattr(cls, "train", None)) and callable(getattr(cls, "eval", None)),
        adaptive=has_betas or has_eps,
        foreach="foreach" in sig,
        summary=f"{cls.__module__}.{cls.__qualname__} (flags read from its signature)",
    )


def _info_from_callable(fn: Callable, name: str) -> OptimInfo:
    """A record for a ``params -> Optimizer`` callable: no defaults, every capability flag unknown (False)."""
    return OptimInfo(name=name, factory=lambda: fn, summary=f"callable {name}(param_groups) -> Optimizer")


def resolve_optimizer(spec: Any) -> OptimInfo:
    """Turn whatever the user named into an :class:`OptimInfo`.

    ``spec`` may be a registered name or alias, an import path ``'package.module:Class'`` (imported now, so a typo
    fails before training), a ``torch.optim.Optimizer`` subclass, a callable ``param_groups -> Optimizer`` (it
    receives the param groups, each with its own ``lr``), or an :class:`OptimInfo` (returned as is).
    """
    if isinstance(spec, OptimInfo):
        return spec
    if isinstance(spec, str):
        if ":" not in spec:
            return get_optimizer_info(spec)
        obj = _import_path(spec)
        if _is_optimizer_class(obj):
            return _info_from_class(obj, spec)
        if callable(obj) and not isinstance(obj, type):
            return _info_from_callable(obj, spec)
        raise UserError(
            f"optimizer path '{spec}' names {type(obj).__name__} '{obj!r}', not a torch.optim.Optimizer subclass "
            "or a callable param_groups -> Optimizer"
        )
    if isinstance(spec, type):
        if _is_optimizer_class(spec):
            return _info_from_class(spec, spec.__name__)
        raise UserError(f"optimizer class {spec.__qualname__} is not a torch.optim.Optimizer subclass")
    if callable(spec):
        return _info_from_callable(spec, getattr(spec, "__qualname__", None) or type(spec).__name__)
    raise UserError(
        f"optimizer must be a name, a 'package.module:Class' path, an Optimizer class or a callable, "
        f"not {type(spec).__name__}"
    )


# ---------------------------------------------------------------------------------------------------------- build


def accepted_hparams(info: OptimInfo) -> tuple[str, ...] | None:
    """The hyperparameter names the optimizer's constructor takes (``None``: it takes any, via ``**kwargs``)."""
    sig = _signature_params(info.load())
    if sig is None or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values()):
        return None
    return tuple(sig)


def _check_lr(value: Any, where: str) -> None:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise UserError(f"{where} must be a number > 0, not a tensor of shape {tuple(value.shape)}")
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{where} must be a number > 0, not {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise UserError(f"{where} must be > 0 and finite, got {value!r}: set a positive learning rate")


def _copy_groups(param_groups: Iterable) -> list[dict]:
    """Shallow copies as a list of group dicts.

    Copies because torch fills defaults into the group dicts it is given, and the caller's must stay clean; a plain
    iterable of tensors becomes one group, which is what torch would make of it.
    """
    if isinstance(param_groups, torch.Tensor):
        param_groups = [param_groups]
    items = list(param_groups)
    if items and all(isinstance(g, Mapping) for g in items):
        groups = [dict(g, params=list(g["params"])) for g in items]
    elif any(isinstance(g, Mapping) for g in items):
        raise UserError("param_groups must be all dicts or all tensors, not a mix")
    else:
        groups = [{"params": items}]
    if not any(g["params"] for g in groups):
        raise UserError("the optimizer got no parameters: is every parameter frozen (requires_grad=False)?")
    return groups


def _device_type(device: Any) -> str:
    return str(getattr(device, "type", device)).split(":")[0].lower()


def build_optimizer(info: OptimInfo, param_groups: Iterable, *, device_type: Any = "cpu", **hparams: Any):
    """Construct the optimizer ``info`` describes over ``param_groups``.

    ``hparams`` win over ``info.defaults``; keys inside a group dict (``lr``, ``weight_decay``, ...) win over both, as
    in torch. Every hyperparameter must be one the constructor takes (a :class:`UserError` lists those it does), and
    ``lr`` must be > 0. On CUDA, ``fused=True`` is added where ``info.fused_on_cuda`` (unless ``fused``, ``foreach``
    or ``differentiable`` is given); elsewhere nothing is added, so torch's own foreach/for-loop choice stands and
    ``sgd``/``adamw`` step bit-identically to Ultralytics' own construction. Extra group keys (``param_group``,
    ``initial_lr``, ``name``, ``param_names``) are kept. The caller's group dicts are not modified.

    For a ``param_groups -> Optimizer`` callable, a hyperparameter is passed as a keyword only if the callable takes
    it; ``lr`` it does not take goes into every group that has none.
    """
    obj = info.load()
    is_class = _is_optimizer_class(obj)
    if not is_class and not callable(obj):
        raise UserError(f"optimizer '{info.name}' loads {obj!r}, which is neither an Optimizer class nor callable")
    groups = _copy_groups(param_groups)
    kwargs = {**info.defaults, **hparams}
    if isinstance(kwargs.get("betas"), list):  # YAML gives lists; keep the tuple torch documents
        kwargs["betas"] = tuple(kwargs["betas"])
    if "lr" in kwargs:
        _check_lr(kwargs["lr"], f"optimizer '{info.name}': lr")
    for i, g in enumerate(groups):
        if "lr" in g:
            _check_lr(g["lr"], f"optimizer '{info.name}': param group {i} ('{g.get('name', i)}') lr")

    sig = _signature_params(obj)
    if sig is None:  # unreadable signature: trust a class with everything, a callable with the groups only
        takes_any, accepted = is_class, {}
    else:
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values())
        accepted = sig
    if not is_class and "lr" in kwargs and "lr" not in accepted and not takes_any:
        lr = kwargs.pop("lr")
        groups = [g if "lr" in g else dict(g, lr=lr) for g in groups]
    if not takes_any:
        for key in kwargs:
            if key not in accepted:
                raise UserError(_bad_hparam_message(info, key, sig))

    if (
        _device_type(device_type) == "cuda"
        and info.fused_on_cuda
        and "fused" in accepted
        and not {"fused", "foreach"} & kwargs.keys()
        and not kwargs.get("differentiable")
    ):
        # fused=True must go to the constructor: that is where torch registers _step_supports_amp_scaling, which lets
        # GradScaler hand found_inf to the kernel instead of syncing with the host (as Ultralytics does for Adam(W))
        kwargs["fused"] = True

    if is_class:
        lr_param = accepted.get("lr")
        if (
            lr_param is not None
            and lr_param.default is inspect.Parameter.empty
            and "lr" not in kwargs
            and not all("lr" in g for g in groups)
        ):
            raise UserError(f"optimizer '{info.name}' has no default learning rate: pass lr=...")
        return obj(groups, **kwargs)

    optimizer = obj(groups, **kwargs)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise UserError(
            f"optimizer callable '{info.name}' returned {type(optimizer).__name__}, not a torch.optim.Optimizer: "
            "it must build and return the optimizer over the param groups it is given"
        )
    return optimizer


def _bad_hparam_message(info: OptimInfo, key: str, sig: Mapping[str, inspect.Parameter] | None) -> str:
    takes = ", ".join(sig) if sig else "only the param groups"
    hint = ""
    if key == "momentum" and "betas" in (sig or {}):
        hint = "; it is Adam-style: beta1 in betas=(beta1, beta2) plays momentum's role"
    elif key == "betas" and "momentum" in (sig or {}):
        hint = "; it is SGD-style: use momentum=... instead of betas"
    return f"optimizer '{info.name}' does not take '{key}' (it takes: {takes}){hint}: remove '{key}'"


# -------------------------------------------------------------------------------------------------------- built in
# The built-in entries live in builtin_optimizers.py, which imports OptimInfo and register_optimizer from here. The
# import is at the end on purpose: by the time it runs, everything above is defined, so builtin_optimizers can take
# what it needs from this (partly initialised) module and register into _REGISTRY; at the top it would be a cycle.
from yolo_gd.optim import builtin_optimizers  # noqa: F401,E402  registers the built-ins

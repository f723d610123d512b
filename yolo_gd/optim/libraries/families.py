"""Per-family defaults for optimizers named through a library (pure: reads a class's constructor, imports nothing).

A library optimizer gets the same kind of record as a built-in one. What its record says is read off the class
(the constructor's signature and defaults, the library's own flags) and settled per family:

- **SGD family** (SGD, SGDW, SGDP, Nesterov/heavy-ball names): Ultralytics' ``lr0=0.01`` and ``momentum=0.937``, so
  ``timm:sgd`` trains like ``sgd`` and like ``yolo train optimizer=SGD``.
- **LR-free** (D-Adaptation, Prodigy, AdamG): the class's own ``lr`` (1.0, a multiplier), marked ``lr_free``.
- **Everything else**: the class's own default ``lr`` where it has one (the library author's choice: 1e-3 for the
  Adam family, 1e-4 for Lion, 0.02 for Muon...), else 1e-3 for adaptive optimizers and 0.01 for the others.

Momentum for warmup: a ``momentum`` constructor argument with a numeric default is the key Ultralytics' warmup
ramps (``has_momentum``); a ``betas`` tuple makes ``beta1`` play that role (``has_betas``); neither: no warmup of
momentum. Weight decay is applied per group by yolo_gd (decay on weights only); the family's convention (``l2`` or
``decoupled``) is read from the constructor's flags and recorded.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Family", "family_of"]

#: The SGD family by its names in timm and pytorch_optimizer: Ultralytics' lr0 and momentum.
SGD_NAMES = frozenset({"sgd", "sgdw", "sgdp", "sgdc", "csgdc", "csgdp", "csgdw", "momentum", "nesterov", "nesterovw",
                       "sgdsai"})
#: Step-size-free optimizers: ``lr`` is a multiplier near 1.
LR_FREE_NAMES = frozenset({"dadaptadagrad", "dadaptadam", "dadaptadan", "dadaptlion", "dadaptsgd", "prodigy", "adamg"})
SGD_LR, SGD_MOMENTUM, ADAPTIVE_LR = 0.01, 0.937, 1e-3
_DECOUPLED_CLASS = re.compile(r"W(Legacy|SN)?$|Lion|Tiger")
_DECOUPLED_FLAGS = ("decoupled_decay", "decoupled", "decoupled_weight_decay", "weight_decouple", "adam_w_mode")


@dataclass(frozen=True)
class Family:
    """What a library optimizer's record gets from its family: defaults and the flags the registry reads."""

    name: str  # 'sgd', 'lr_free' or 'own'
    defaults: dict
    has_momentum: bool
    has_betas: bool
    adaptive: bool
    weight_decay_style: str


def family_of(name: str, class_name: str, sig: Mapping[str, inspect.Parameter],
              library_defaults: Mapping[str, Any]) -> Family:
    """The family defaults for optimizer ``name`` (its name inside its library) with constructor signature ``sig``.

    ``library_defaults`` are the keyword arguments the library itself adds for this name (timm's ``defaults``);
    they win over the signature's defaults, and yolo_gd's family LR and momentum win over both.
    """
    merged = {k: p.default for k, p in sig.items() if p.default is not inspect.Parameter.empty}
    merged.update(library_defaults)
    has_momentum = "momentum" in sig and _number(merged.get("momentum"))
    betas = merged.get("betas")
    has_betas = "betas" in sig and isinstance(betas, (tuple, list)) and len(betas) >= 2 and all(map(_number, betas))
    adaptive = has_betas or "eps" in sig
    defaults = dict(library_defaults)
    if has_betas:
        defaults["betas"] = tuple(betas)
    if name in SGD_NAMES and has_momentum:
        family = "sgd"
        defaults.update(lr=SGD_LR, momentum=SGD_MOMENTUM)
    else:
        family = "lr_free" if name in LR_FREE_NAMES else "own"
        if has_momentum:
            defaults["momentum"] = merged["momentum"]
        lr = merged.get("lr")
        defaults["lr"] = lr if _number(lr) and lr > 0 else (ADAPTIVE_LR if adaptive else SGD_LR)
    return Family(family, defaults, has_momentum, has_betas, adaptive, _decay_style(class_name, sig, merged))


def _decay_style(class_name: str, sig: Mapping[str, inspect.Parameter], merged: Mapping[str, Any]) -> str:
    """``'decoupled'`` when a constructor flag turns it on or the class is decoupled by design (AdamW, SGDW, Lion);
    ``'l2'`` when a flag exists and is off, or for the rest; ``''`` without a ``weight_decay`` argument."""
    if "weight_decay" not in sig:
        return ""
    flags = [f for f in _DECOUPLED_FLAGS if f in merged]
    if flags:
        return "decoupled" if any(merged[f] is True for f in flags) else "l2"
    return "decoupled" if _DECOUPLED_CLASS.search(class_name) else "l2"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

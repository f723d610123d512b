"""timm's optimizers by name: ``timm:lamb``, ``timm:adan``, ``timm:lookahead_adamw`` (timm >= 1.0).

Built the way ``timm.optim.create_optimizer_v2`` builds them when it is given parameter groups (it passes them
through untouched): timm's class for the name, timm's per-name defaults (``nesterov``, ``caution``,
``decoupled_decay``...) and timm's momentum default of 0.9 where the class has one, then yolo_gd's family LR (see
:mod:`~yolo_gd.optim.libraries.families`). ``lookahead_<name>`` wraps the optimizer in timm's ``Lookahead``, as timm
does. Names whose class lives in another package (``bnb*``: bitsandbytes, ``fused*``: NVIDIA apex) are refused
when that package cannot be imported.

timm's ``layer_decay`` is refused with the alternative: timm puts it into each group's ``lr_scale``, which only
timm's schedulers apply, so under yolo_gd's schedule it would do nothing; yolo_gd's ``lr_decay`` is the same
layer-wise decay, applied as each group's LR.
"""

from __future__ import annotations

import functools
import importlib

from yolo_gd.optim.libraries import library_record
from yolo_gd.optim.optim_info import OptimInfo

LOOKAHEAD = "lookahead_"
_LAYER_DECAY = ("timm's layer_decay scales each group's lr_scale, which only timm's schedulers apply (yolo_gd's "
                "schedule would ignore it): use yolo_gd's lr_decay=... instead, the same layer-wise LR decay")
REFUSED = {
    "layer_decay": _LAYER_DECAY,
    "layer_decay_min_scale": _LAYER_DECAY,
    "layer_decay_no_opt_scale": _LAYER_DECAY,
    "param_group_fn": "yolo_gd builds the param groups (Ultralytics' three tagged groups and groups= rules): "
                      "use groups= instead of timm's param_group_fn",
}


@functools.lru_cache(maxsize=1)
def names() -> tuple[str, ...]:
    """timm's ``list_optimizers()`` (Lookahead variants are ``lookahead_<name>`` of any of them)."""
    from timm.optim import list_optimizers

    return tuple(list_optimizers())


def base_name(name: str) -> str:
    return name.removeprefix(LOOKAHEAD)


def record(name: str) -> OptimInfo:
    from timm.optim import get_optimizer_info

    base = base_name(name)
    ti = get_optimizer_info(base)
    cls = ti.opt_class
    if isinstance(cls, str):  # bitsandbytes / apex, named by import path: timm imports them on use
        module, _, attr = cls.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            top = module.split(".")[0]
            return OptimInfo(name=f"timm:{name}", factory=lambda: None, refusal=(
                f"optimizer 'timm:{name}' is timm's name for {ti.opt_class}, whose package {top} is not importable "
                f"({' '.join(str(e).split())[:100]}): install {top} (CUDA only), or use timm:{_plain(base)}"))
    defaults = dict(ti.defaults or {})
    if ti.has_momentum:
        defaults.setdefault("momentum", 0.9)  # timm's own default for every optimizer with momentum
    wrap = _lookahead if name != base else None
    return library_record("timm", name, cls, library_defaults=defaults, second_order=ti.second_order, wrap=wrap,
                          summary=f"timm {ti.description}" + (" + Lookahead" if wrap else ""), refused_hparams=REFUSED)


def _lookahead(optimizer):
    from timm.optim import Lookahead

    return Lookahead(optimizer)


def _plain(base: str) -> str:
    """The plain timm name for a ``bnb*`` / ``fused*`` one (``bnbadamw8bit`` -> ``adamw``)."""
    plain = base.removeprefix("bnb").removeprefix("fused").removesuffix("8bit")
    return plain if plain in names() else "adamw"

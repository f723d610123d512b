"""Optimizers by library name: ``timm:lamb``, ``pytorch_optimizer:ranger`` -> the registry's own record.

One adapter module per library (:mod:`.timm`, :mod:`.pytorch_optimizer`) lists the library's names and says how to
build each; :func:`library_record` turns that into the same frozen :class:`~yolo_gd.optim.optim_info.OptimInfo` the
built-in names have: family defaults (:mod:`.families`), capability flags found by construction and, where yolo_gd
cannot train with it, a one-line refusal (:mod:`.capabilities`). The registry's lookup calls :func:`lookup` for any
``'<library>:<name>'`` whose prefix is a library here, so nothing above ``optim/`` knows where an optimizer came
from. Records are made once per name and process (the probe step runs once). Pure ("floor 1").
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import sys
from collections.abc import Callable, Mapping
from typing import Any

from yolo_gd.errors import UserError, unknown_name
from yolo_gd.optim.libraries.capabilities import detect
from yolo_gd.optim.libraries.families import family_of
from yolo_gd.optim.named_registry import normalize_name
from yolo_gd.optim.optim_info import OptimInfo, signature_params

__all__ = ["LIBRARIES", "library_names", "library_record", "lookup"]

#: library prefix -> (adapter module, pip distribution, yolo_gd extra)
LIBRARIES: dict[str, tuple[str, str, str]] = {
    "timm": ("yolo_gd.optim.libraries.timm", "timm", "timm"),
    "pytorch_optimizer": ("yolo_gd.optim.libraries.pytorch_optimizer", "pytorch_optimizer", "pytorch_optimizer"),
}


def is_library_spec(spec: str) -> bool:
    """Whether ``spec`` is ``'<library>:<name>'`` with a library adapted here, and not ``'<package>:<Attribute>'``.

    ``pytorch_optimizer:Lamb`` was an import path before this module existed: a name the library does not list but
    its package has as an attribute (``pytorch_optimizer:SAM``) stays an import path, as it was.
    """
    prefix, sep, name = spec.partition(":")
    library = normalize_name(prefix)
    if not sep or library not in LIBRARIES:
        return False
    adapter = _adapter(library)
    name = name.strip()
    return adapter.base_name(name.lower()) in adapter.names() or not hasattr(sys.modules[LIBRARIES[library][1]], name)


def lookup(spec: str) -> OptimInfo:
    """The record for ``'<library>:<name>'`` (names case-insensitive); unknown names list the valid ones."""
    prefix, _, name = spec.partition(":")
    library = normalize_name(prefix)
    return _record(library, name.strip().lower())


def library_names(library: str) -> list[str]:
    """Every optimizer name ``library`` lists, as the library spells them (without the prefix)."""
    return list(_adapter(library).names())


@functools.lru_cache(maxsize=None)
def _record(library: str, name: str) -> OptimInfo:
    adapter = _adapter(library)
    valid = adapter.names()
    if adapter.base_name(name) not in valid:
        raise unknown_name(f"{library} optimizer", name, valid)
    return adapter.record(name)


def _adapter(library: str):
    module, package, extra = LIBRARIES[library]
    try:
        importlib.import_module(package)
    except ImportError as e:
        raise UserError(f"optimizer names '{library}:...' need the package {package} ({e}): "
                        f"pip install 'yolo_gd[{extra}]'") from e
    return importlib.import_module(module)


def library_record(library: str, name: str, cls: type, *, library_defaults: Mapping[str, Any] | None = None,
                   second_order: bool = False, wrap: Callable[[Any], Any] | None = None, summary: str = "",
                   refused_hparams: Mapping[str, str] | None = None) -> OptimInfo:
    """The record for ``library:name`` built from class ``cls``.

    ``library_defaults``: keyword arguments the library adds for this name; ``second_order``: the library says it
    needs a Hessian; ``wrap``: applied to the built optimizer (timm's Lookahead); ``refused_hparams``: keys refused
    with their reason.
    """
    label = f"{library}:{name}"
    sig = signature_params(cls) or {}
    fam = family_of(name.removeprefix("lookahead_"), cls.__name__, sig, dict(library_defaults or {}))
    _, package, extra = LIBRARIES[library]
    base = OptimInfo(
        name=label, factory=lambda: cls, defaults=fam.defaults, has_momentum=fam.has_momentum,
        has_betas=fam.has_betas, adaptive=fam.adaptive, lr_free=fam.name == "lr_free",
        weight_decay_style=fam.weight_decay_style, extra=extra, package=package,
        refused_hparams=refused_hparams or {}, summary=summary or f"{library} {cls.__name__} ({fam.name} defaults)",
    )

    def make(groups: list[dict], muon: bool):
        from yolo_gd.optim.construct import build_optimizer

        return build_optimizer(_with_builder(base, cls, muon, wrap), groups)

    caps = detect(label, cls, make, second_order=second_order, lr=fam.defaults["lr"])
    return _with_builder(dataclasses.replace(base, **dataclasses.asdict(caps)), cls, caps.muon_groups, wrap)


def _with_builder(info: OptimInfo, cls: type, muon: bool, wrap: Callable[[Any], Any] | None) -> OptimInfo:
    """``info`` whose factory builds ``cls`` directly, or through a builder that marks every group's ``use_muon``
    (pytorch_optimizer's Muon family wants the key on every group) and applies ``wrap``."""
    if not muon and wrap is None:
        return dataclasses.replace(info, factory=lambda: cls)

    def build(param_groups, **kwargs):
        if muon:
            param_groups = [dict(g, use_muon=g.get("use_muon", False)) for g in param_groups]
        optimizer = cls(param_groups, **kwargs)
        return wrap(optimizer) if wrap is not None else optimizer

    build.__signature__ = inspect.signature(cls)  # hyperparameters are checked against the class's own
    build.__qualname__ = build.__name__ = cls.__name__
    return dataclasses.replace(info, factory=lambda: build)

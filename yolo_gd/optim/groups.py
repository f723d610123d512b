"""Parameter groups with Ultralytics' semantics, plus per-pattern multipliers and a readable summary.

Ultralytics (``BaseTrainer.build_optimizer``, ``engine/trainer.py`` 1155-1246) walks
``model.named_modules()`` and, per module, ``named_parameters(recurse=False)``, and sorts every parameter into:

- ``weight``: decayed weights (conv and linear weights);
- ``bn``: weights of normalization layers (any ``nn.*Norm*`` class) and ``logit_scale``: no decay;
- ``bias``: every name containing ``bias``: no decay (and, during warmup, an LR falling from ``warmup_bias_lr``);
- ``muon`` (MuSGD only): every 2-D or 4-D parameter, checked first; these get Muon's orthogonalized update.

in that group order. :func:`build_param_groups` reproduces the same parameters in the same order, frozen ones
included: Ultralytics keeps the always-frozen DFL conv (``.dfl``, ``requires_grad=False``) and any layer frozen with
``freeze=`` in its groups (torch skips a parameter without gradient, so the steps are the same), and a DDP rank that
loads our checkpoint's optimizer state into its own optimizer matches parameters by position. The one deliberate
difference: a parameter shared between modules is listed once, where Ultralytics would list it twice.

On top, :class:`~yolo_gd.optim.group_rules.GroupRule` s give trainable parameters matching a glob their own group
with LR and weight-decay multipliers (layer-wise LR, a head at 3x, ...), appended after the base groups, and
:func:`describe_groups` shows every group's effective hyperparameters before training starts. Pure module
("floor 1"): no Ultralytics import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from yolo_gd.errors import UserError
from yolo_gd.optim.checks import finite_number
from yolo_gd.optim.group_rules import GroupRule, assign_rules, parse_rules
from yolo_gd.optim.layer_lr import depth_rules, resolve_presets

__all__ = [
    "GROUP_TAGS",
    "MUON_HEAD_LR_MULT",
    "GroupRule",
    "build_param_groups",
    "describe_groups",
    "format_groups",
    "parse_rules",
    "scale_weight_decay",
    "unwrap_model",
]

GROUP_TAGS = ("weight", "bn", "bias")
"""Ultralytics' group order (``g = [g0 weight, g1 bn, g2 bias]``); MuSGD appends ``muon``."""

MUON_HEAD_LR_MULT = 3.0
"""Ultralytics' MuSGD mode trains the class head (``cv3``/``one2one_cv3``) and semantic-segmentation parts at 3x lr."""

_NO_DECAY = frozenset({"bn", "bias"})


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip torch.compile (``_orig_mod``) and DataParallel/DDP (``module``), as Ultralytics' ``unwrap_model`` does."""
    while True:
        if isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        elif isinstance(getattr(model, "module", None), nn.Module):
            model = model.module
        else:
            return model


def _norm_layers() -> tuple[type, ...]:
    # Ultralytics' own test: every class in torch.nn whose name contains "Norm" (BatchNorm2d, LayerNorm, GroupNorm...)
    return tuple(v for k, v in nn.__dict__.items() if "Norm" in k)


# ----------------------------------------------------------------------------------------------------------- groups


class _Param(NamedTuple):
    """One parameter as Ultralytics sorts it."""

    name: str  # full name, e.g. 'model.0.conv.weight'
    tag: str  # 'weight', 'bn', 'bias' or 'muon'
    param: nn.Parameter
    boost: bool  # MuSGD: in the 3x-lr head part


def _classify(model: nn.Module, muon: bool) -> list[_Param]:
    """Every parameter, frozen ones included, in Ultralytics' iteration order (a shared parameter once)."""
    bn = _norm_layers()
    boosted = _boosted_ids(model) if muon else set()
    seen: set[int] = set()
    out = []
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            fullname = f"{module_name}.{param_name}" if module_name else param_name
            if muon and param.ndim in {2, 4}:  # Muon only orthogonalizes matrices and conv filters
                tag = "muon"
            elif "bias" in fullname:
                tag = "bias"
            elif isinstance(module, bn) or "logit_scale" in fullname:
                tag = "bn"
            else:
                tag = "weight"
            boost = muon and (id(param) in boosted or "proto.semseg" in fullname or "SemanticSegment" in fullname)
            out.append(_Param(fullname, tag, param, boost))
    return out


def _boosted_ids(model: nn.Module) -> set[int]:
    """Ultralytics' MuSGD 3x-lr parameters: the detection head's ``cv3`` and ``one2one_cv3`` (class branches)."""
    target = getattr(model, "student_model", model)
    try:
        head = target.model[-1]
    except (AttributeError, TypeError, IndexError, KeyError):
        return set()  # not an Ultralytics task model: no head to boost
    heads = (getattr(head, "cv3", None), getattr(head, "one2one_cv3", None))
    return {id(p) for m in heads if isinstance(m, nn.Module) for p in m.parameters()}


def _owners(params: Sequence[_Param], rules: Sequence[GroupRule], late: Mapping[str, int]) -> list[int | None]:
    """The rule owning each parameter; frozen parameters stay in their base group (where Ultralytics has them),
    except those that ``late`` unfreezes: rules match them as if they were trainable."""
    trainable = [i for i, p in enumerate(params) if p.param.requires_grad or p.name in late]
    if not trainable:
        raise UserError("the model has no trainable parameters (requires_grad=True): nothing to optimize")
    owners: list[int | None] = [None] * len(params)
    for i, owner in zip(trainable, assign_rules([params[i].name for i in trainable], rules)):
        owners[i] = owner
    return owners


def _group(members: Sequence[_Param], tag: str, boost: bool, rule: GroupRule | None, lr: float, wd: float,
           stage: int | None = None) -> dict:
    """One group dict: Ultralytics' keys plus ``initial_lr``, ``name`` and ``param_names`` (and ``join``, the
    unfreeze stage, for parameters that join later)."""
    g_lr = lr * MUON_HEAD_LR_MULT if boost else lr  # the same float Ultralytics computes (lr * 3)
    if rule is not None:
        g_lr = g_lr * rule.lr_mult
    decay = 0.0 if tag in _NO_DECAY else wd * (rule.wd_mult if rule is not None else 1.0)
    name = tag if rule is None else f"{tag}:{rule.name}"
    if stage is not None:
        name = f"{name}:unfreeze{stage}"
    g = {"params": [m.param for m in members], "lr": g_lr, "initial_lr": g_lr, "weight_decay": decay}
    if tag == "muon":
        g["use_muon"] = True
    g.update(param_group=tag, name=f"{name}:x{MUON_HEAD_LR_MULT:g}" if boost else name)
    g["param_names"] = [m.name for m in members]
    if rule is not None:  # the warmup's bias start is scaled by it too (optim/plan.py)
        g["lr_mult"] = rule.lr_mult
    if stage is not None:
        g["join"] = stage
    return g


def build_param_groups(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    rules: Sequence[GroupRule] | Mapping | None = (),
    muon: bool = False,
    late: Mapping[str, int] | None = None,
    lr_decay: float | None = None,
) -> list[dict]:
    """Ultralytics' parameter groups for ``model``, optionally split further by ``rules``.

    Returns group dicts for a torch optimizer, each with ``params``, ``lr``, ``initial_lr`` (what Ultralytics' warmup
    and LambdaLR scale from), ``weight_decay``, ``param_group`` (the tag Ultralytics' warmup looks for: ``'bias'``
    gets the falling warmup LR), ``name`` and ``param_names`` (torch >= 2.6 keeps this key through ``state_dict``).

    Order: the base groups first, exactly as Ultralytics makes them (``weight``, ``bn``, ``bias``, even when empty, so
    positions match its optimizer; frozen parameters included, in place), then one group per (rule, tag) that got
    parameters, named ``'<tag>:<rule>'``; rules match trainable parameters only. With ``muon=True`` (for MuSGD)
    every group is preceded by its 3x-lr head part as in Ultralytics (``[weight 3x, weight, bn 3x, bn, bias 3x,
    bias, muon 3x, muon]``, then rule groups likewise), and ``muon`` groups carry ``use_muon=True``. Weight decay
    goes to ``weight`` and ``muon`` groups only; ``weight_decay`` is the already batch-scaled value (see
    :func:`scale_weight_decay`).

    ``late``: frozen parameter name -> unfreeze stage (:mod:`yolo_gd.optim.unfreeze`); those parameters go to
    groups of their own after all the others, split by tag and rule like any parameter, named
    ``'<name>:unfreeze<stage>'`` and carrying ``join=<stage>``.
    """
    lr = finite_number(lr, "lr")
    if lr <= 0:
        raise UserError(f"lr must be > 0, got {lr}: set a positive learning rate")
    weight_decay = finite_number(weight_decay, "weight_decay")
    if weight_decay < 0:
        raise UserError(f"weight_decay must be >= 0, got {weight_decay}")
    bare = unwrap_model(model)
    rules = resolve_presets(parse_rules(rules), bare)
    params = _classify(bare, muon)
    late = dict(late or {})
    if lr_decay is not None:
        names = [p.name for p in params if p.param.requires_grad or p.name in late]
        rules = (*rules, *depth_rules(bare, lr_decay, names, rules))
    owners = _owners(params, rules, late)

    buckets: dict[tuple, list[_Param]] = {}  # (unfreeze stage or None, rule index or None, tag, boost) -> members
    for p, owner in zip(params, owners):
        buckets.setdefault((late.get(p.name), owner, p.tag, p.boost), []).append(p)
    tags = (*GROUP_TAGS, "muon") if muon else GROUP_TAGS
    variants = (True, False) if muon else (False,)
    owners_order = [None, *range(len(rules))]
    keys = [(None, None, tag, boost) for tag in tags for boost in variants]  # the base groups, even when empty
    keys += [(None, i, tag, boost) for i in range(len(rules)) for tag in tags for boost in variants]
    keys += [(s, o, tag, boost) for s in sorted(set(late.values())) for o in owners_order for tag in tags
             for boost in variants]
    return [
        _group(buckets.get(key, []), key[2], key[3], None if key[1] is None else rules[key[1]], lr, weight_decay,
               key[0])
        for key in keys
        if key[:2] == (None, None) or key in buckets
    ]


# --------------------------------------------------------------------------------------------------------- inspect


def describe_groups(groups: Iterable[Mapping] | torch.optim.Optimizer) -> list[dict]:
    """One row per group with its effective hyperparameters, so they can be checked before training.

    Pass an optimizer (``optimizer.param_groups`` then include the defaults it filled in, such as ``momentum``) or
    the group dicts. Each row: ``name``, ``tag``, ``n_params`` (tensors), ``n_elements``, ``lr``, ``weight_decay``,
    and ``momentum``, ``nesterov``, ``betas``, ``use_muon`` where the group has them.
    """
    if isinstance(groups, torch.optim.Optimizer):
        groups = groups.param_groups
    rows = []
    for i, g in enumerate(groups):
        params = list(g["params"])
        row = {
            "name": g.get("name", f"group{i}"),
            "tag": g.get("param_group", ""),
            "n_params": len(params),
            "n_elements": sum(p.numel() for p in params),
            "lr": g.get("lr"),
            "weight_decay": g.get("weight_decay"),
        }
        for key in ("momentum", "nesterov", "betas", "use_muon"):
            if key in g:
                row[key] = tuple(g[key]) if key == "betas" else g[key]
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_cell(v) for v in value) + ")"
    return "" if value is None else str(value)


def format_groups(rows: Sequence[Mapping]) -> str:
    """A small aligned text table of :func:`describe_groups` rows (numbers right-aligned)."""
    if not rows:
        return "(no parameter groups)"
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[j]) for r in cells)) for j, c in enumerate(columns)]
    numeric = [all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows) for c in columns]

    def line(values: Sequence[str]) -> str:
        out = (v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric))
        return "  ".join(out).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def scale_weight_decay(weight_decay: float, batch: int, accumulate: int, nbs: int) -> float:
    """Ultralytics' weight-decay scaling: ``weight_decay * batch * accumulate / nbs`` (``trainer.py`` line 322).

    The decay applied per optimizer step is scaled with the images that step sees, relative to the nominal batch
    size ``nbs`` (64). Same operation order as Ultralytics, so the float is bit-identical.
    """
    for value, what in ((batch, "batch"), (accumulate, "accumulate"), (nbs, "nbs")):
        if finite_number(value, what) <= 0:
            raise UserError(f"{what} must be > 0 to scale weight decay, got {value}")
    if finite_number(weight_decay, "weight_decay") < 0:
        raise UserError(f"weight_decay must be >= 0, got {weight_decay}")
    return weight_decay * batch * accumulate / nbs

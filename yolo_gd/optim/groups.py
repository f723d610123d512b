"""Parameter groups with Ultralytics' semantics, plus per-pattern multipliers and a readable summary.

Ultralytics (``BaseTrainer.build_optimizer``, ``engine/trainer.py`` 1155-1246) walks
``model.named_modules()`` and, per module, ``named_parameters(recurse=False)``, and sorts every parameter into:

- ``weight``: decayed weights (conv and linear weights);
- ``bn``: weights of normalization layers (any ``nn.*Norm*`` class) and ``logit_scale``: no decay;
- ``bias``: every name containing ``bias``: no decay (and, during warmup, an LR falling from ``warmup_bias_lr``);
- ``muon`` (MuSGD only): every 2-D or 4-D parameter, checked first; these get Muon's orthogonalized update.

in that group order. :func:`build_param_groups` reproduces the same parameters in the same order, so an optimizer
built over them steps exactly as Ultralytics' own. Two deliberate differences: frozen parameters
(``requires_grad=False``, e.g. the DFL conv that Ultralytics always freezes) are left out, where Ultralytics keeps
them in its groups with no gradient (torch skips a parameter without gradient, so the steps are the same), and a
parameter shared between modules is listed once, where Ultralytics would list it twice.

On top, :class:`GroupRule` s give parameters matching a glob their own group with LR and weight-decay multipliers
(layer-wise LR, a head at 3x, ...), and :func:`describe_groups` shows every group's effective hyperparameters before
training starts. Pure module ("floor 1"): no Ultralytics import.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import torch
from torch import nn

from yolo_gd.errors import UserError

__all__ = [
    "GROUP_TAGS",
    "MUON_HEAD_LR_MULT",
    "GroupRule",
    "build_param_groups",
    "describe_groups",
    "format_groups",
    "parse_rules",
    "scale_weight_decay",
]

GROUP_TAGS = ("weight", "bn", "bias")
"""Ultralytics' group order (``g = [g0 weight, g1 bn, g2 bias]``); MuSGD appends ``muon``."""

MUON_HEAD_LR_MULT = 3.0
"""Ultralytics' MuSGD mode trains the class head (``cv3``/``one2one_cv3``) and semantic-segmentation parts at 3x lr."""

_NO_DECAY = frozenset({"bn", "bias"})


def _norm_layers() -> tuple[type, ...]:
    # Ultralytics' own test: every class in torch.nn whose name contains "Norm" (BatchNorm2d, LayerNorm, GroupNorm...)
    return tuple(v for k, v in nn.__dict__.items() if "Norm" in k)


def _unwrap(model: nn.Module) -> nn.Module:
    """Strip torch.compile (``_orig_mod``) and DataParallel/DDP (``module``), as Ultralytics' ``unwrap_model`` does."""
    while True:
        if isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        elif isinstance(getattr(model, "module", None), nn.Module):
            model = model.module
        else:
            return model


# ------------------------------------------------------------------------------------------------------------ rules


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{what} must be a finite number, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class GroupRule:
    """Parameters whose full name matches ``pattern`` get their own group at ``lr * lr_mult``.

    Args:
        pattern: an ``fnmatch`` glob on the full parameter name as Ultralytics forms it
            (``'model.0.conv.weight'``): ``'model.[0-9].*'`` is layers 0-9, ``'model.1?.*'`` layers 10-19. Matching is
            case-sensitive.
        lr_mult: learning-rate multiplier, > 0 (freeze a layer with Ultralytics' ``freeze`` instead of lr 0).
        wd_mult: weight-decay multiplier, >= 0; it applies to ``weight``/``muon`` groups, ``bn``/``bias`` stay at 0.
        name: label used in group names (``'weight:<name>'``); defaults to the pattern.
    """

    pattern: str
    lr_mult: float = 1.0
    wd_mult: float = 1.0
    name: str = ""

    def __post_init__(self):
        if not isinstance(self.pattern, str) or not self.pattern.strip():
            raise UserError(f"group rule pattern must be a non-empty glob such as 'model.0.*', not {self.pattern!r}")
        lr_mult = _number(self.lr_mult, f"group rule '{self.pattern}': lr multiplier")
        wd_mult = _number(self.wd_mult, f"group rule '{self.pattern}': weight-decay multiplier")
        if lr_mult <= 0:
            raise UserError(
                f"group rule '{self.pattern}': lr multiplier must be > 0, got {lr_mult}; "
                "to stop training those parameters, freeze them instead"
            )
        if wd_mult < 0:
            raise UserError(f"group rule '{self.pattern}': weight-decay multiplier must be >= 0, got {wd_mult}")
        object.__setattr__(self, "lr_mult", lr_mult)
        object.__setattr__(self, "wd_mult", wd_mult)
        object.__setattr__(self, "name", str(self.name) if self.name else self.pattern)

    def matches(self, fullname: str) -> bool:
        """Whether this rule applies to the parameter ``fullname``."""
        return fnmatchcase(fullname, self.pattern)


_RULE_KEYS = {"lr": "lr_mult", "lr_mult": "lr_mult", "wd": "wd_mult", "wd_mult": "wd_mult", "name": "name"}


def _rule_from_mapping(pattern: str, spec: Mapping) -> GroupRule:
    kwargs = {}
    for key, value in spec.items():
        field_name = _RULE_KEYS.get(str(key))
        if field_name is None:
            raise UserError(
                f"group rule '{pattern}': unknown key '{key}'; valid keys: lr (multiplier), wd (multiplier), name"
            )
        if field_name in kwargs:
            raise UserError(f"group rule '{pattern}': '{key}' repeats another key for the same setting")
        kwargs[field_name] = value
    return GroupRule(pattern, **kwargs)


def parse_rules(spec: Any) -> tuple[GroupRule, ...]:
    """Rules from a config value; the first rule matching a parameter wins, so order matters.

    Accepts ``None``; a mapping ``{pattern: {'lr': mult, 'wd': mult, 'name': label}}`` (a bare number is an lr
    multiplier: ``{'model.23.*': 3.0}``); or a sequence of :class:`GroupRule` or of mappings with a ``pattern`` key.
    """
    if spec is None:
        return ()
    if isinstance(spec, GroupRule):
        return (spec,)
    if isinstance(spec, Mapping):
        rules = []
        for pattern, value in spec.items():
            if isinstance(value, Mapping):
                rules.append(_rule_from_mapping(pattern, value))
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                rules.append(GroupRule(pattern, lr_mult=value))
            else:
                raise UserError(
                    f"group rule '{pattern}': expected a mapping like {{'lr': 0.1, 'wd': 0.0}} or an lr multiplier, "
                    f"not {value!r}"
                )
        return tuple(rules)
    if isinstance(spec, (str, bytes)) or not isinstance(spec, Iterable):
        raise UserError(
            f"group rules must be a mapping {{pattern: {{'lr': mult, 'wd': mult}}}} or a list of rules, not {spec!r}"
        )
    rules = []
    for item in spec:
        if isinstance(item, GroupRule):
            rules.append(item)
        elif isinstance(item, Mapping) and "pattern" in item:
            rest = {k: v for k, v in item.items() if k != "pattern"}
            rules.append(_rule_from_mapping(item["pattern"], rest))
        else:
            raise UserError(f"group rule {item!r} must be a GroupRule or a mapping with a 'pattern' key")
    return tuple(rules)


# ----------------------------------------------------------------------------------------------------------- groups


def _classify(model: nn.Module, muon: bool) -> list[tuple[str, str, nn.Parameter]]:
    """``(fullname, tag, param)`` for every trainable parameter, in Ultralytics' iteration order."""
    bn = _norm_layers()
    seen: set[int] = set()
    out = []
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
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
            out.append((fullname, tag, param))
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


def _examples(names: Sequence[str], k: int = 5) -> str:
    """A few parameter names spread over the model, to show what a pattern is matched against."""
    if len(names) <= k:
        picks = list(names)
    else:
        picks = [names[round(i * (len(names) - 1) / (k - 1))] for i in range(k)]
    return ", ".join(f"'{n}'" for n in picks)


def build_param_groups(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    rules: Sequence[GroupRule] | Mapping | None = (),
    muon: bool = False,
) -> list[dict]:
    """Ultralytics' parameter groups for ``model``, optionally split further by ``rules``.

    Returns group dicts for a torch optimizer, each with ``params``, ``lr``, ``initial_lr`` (what Ultralytics' warmup
    and LambdaLR scale from), ``weight_decay``, ``param_group`` (the tag Ultralytics' warmup looks for: ``'bias'``
    gets the falling warmup LR), ``name`` and ``param_names`` (torch >= 2.6 keeps this key through ``state_dict``).

    Order: the base groups first, exactly as Ultralytics makes them (``weight``, ``bn``, ``bias``, even when empty, so
    positions match its optimizer), then one group per (rule, tag) that got parameters, named ``'<tag>:<rule>'``.
    With ``muon=True`` (for MuSGD) every group is preceded by its 3x-lr head part as in Ultralytics
    (``[weight 3x, weight, bn 3x, bn, bias 3x, bias, muon 3x, muon]``, then rule groups likewise), and ``muon``
    groups carry ``use_muon=True``. Weight decay goes to ``weight`` and ``muon`` groups only; ``weight_decay`` is the
    already batch-scaled value (see :func:`scale_weight_decay`).
    """
    lr = _number(lr, "lr")
    if lr <= 0:
        raise UserError(f"lr must be > 0, got {lr}: set a positive learning rate")
    weight_decay = _number(weight_decay, "weight_decay")
    if weight_decay < 0:
        raise UserError(f"weight_decay must be >= 0, got {weight_decay}")
    rules = parse_rules(rules)

    model = _unwrap(model)
    params = _classify(model, muon)
    if not params:
        raise UserError("the model has no trainable parameters (requires_grad=True): nothing to optimize")
    names = [n for n, _, _ in params]

    # first matching rule wins; a rule that gets no parameter is a mistake worth stopping for
    assigned: list[int | None] = []
    matched = [0] * len(rules)
    won = [0] * len(rules)
    for fullname in names:
        owner = None
        for i, rule in enumerate(rules):
            if rule.matches(fullname):
                matched[i] += 1
                if owner is None:
                    owner = i
        if owner is not None:
            won[owner] += 1
        assigned.append(owner)
    for i, rule in enumerate(rules):
        if not matched[i]:
            raise UserError(
                f"group rule '{rule.pattern}' matches no trainable parameter; patterns are globs on full names "
                f"such as {_examples(names)}"
            )
        if not won[i]:
            first = next(r.pattern for j, r in enumerate(rules[:i]) if any(r.matches(n) for n in names))
            raise UserError(
                f"group rule '{rule.pattern}' gets no parameter: every one it matches is taken by the earlier rule "
                f"'{first}' (the first matching rule wins); reorder or narrow the rules"
            )

    tags = (*GROUP_TAGS, "muon") if muon else GROUP_TAGS
    boosted = _boosted_ids(model) if muon else set()
    # buckets[(rule index or None, tag, boosted)] -> [(name, param)]
    buckets: dict[tuple[int | None, str, bool], list[tuple[str, nn.Parameter]]] = {}
    for (fullname, tag, param), owner in zip(params, assigned):
        boost = muon and (id(param) in boosted or "proto.semseg" in fullname or "SemanticSegment" in fullname)
        buckets.setdefault((owner, tag, boost), []).append((fullname, param))

    def group(owner: int | None, tag: str, boost: bool) -> dict:
        rule = rules[owner] if owner is not None else None
        members = buckets.get((owner, tag, boost), [])
        g_lr = lr * MUON_HEAD_LR_MULT if boost else lr  # the same float Ultralytics computes (lr * 3)
        if rule is not None:
            g_lr = g_lr * rule.lr_mult
        wd = 0.0 if tag in _NO_DECAY else weight_decay * (rule.wd_mult if rule is not None else 1.0)
        name = tag if rule is None else f"{tag}:{rule.name}"
        g = {"params": [p for _, p in members], "lr": g_lr, "initial_lr": g_lr, "weight_decay": wd}
        if tag == "muon":
            g["use_muon"] = True
        g.update(param_group=tag, name=f"{name}:x{MUON_HEAD_LR_MULT:g}" if boost else name)
        g["param_names"] = [n for n, _ in members]
        return g

    variants = (True, False) if muon else (False,)
    groups = [group(None, tag, boost) for tag in tags for boost in variants]
    for owner in range(len(rules)):
        groups += [
            group(owner, tag, boost) for tag in tags for boost in variants if buckets.get((owner, tag, boost))
        ]
    return groups


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
        if _number(value, what) <= 0:
            raise UserError(f"{what} must be > 0 to scale weight decay, got {value}")
    if _number(weight_decay, "weight_decay") < 0:
        raise UserError(f"weight_decay must be >= 0, got {weight_decay}")
    return weight_decay * batch * accumulate / nbs

"""Layer-wise LR for Ultralytics YOLO models: the ``backbone`` / ``neck`` / ``head`` presets and ``lr_decay`` (pure).

Stages are Ultralytics' top-level modules ``model.<i>`` (the rows of the model yaml, in graph order; ``Upsample``
and ``Concat`` rows count as stages even though they hold no parameter). With ``N`` modules the head (``model.N-1``,
the ``Detect`` module) trains at the base LR and module ``i`` at ``lr * lr_decay ** (N - 1 - i)``: depth is
counted by module index, so every yaml row is one step further from the head.

Presets, usable wherever a group-rule glob is (``groups={'backbone': {'lr': 0.1}}``, CLI ``groups=backbone:0.1``):
``backbone`` = the first ``len(yaml['backbone'])`` modules, ``head`` = the last module (``Detect``), ``neck`` =
the modules in between. User rules come first (the first matching rule wins); ``lr_decay`` then covers every
trainable parameter no user rule took, so ``groups=head:3 lr_decay=0.8`` keeps the head at 3x and decays the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from torch import nn

from yolo_gd.errors import UserError
from yolo_gd.optim.group_rules import GroupRule

__all__ = ["PRESETS", "depth_rules", "resolve_presets", "stages"]

PRESETS = ("backbone", "neck", "head")


def stages(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Module indices of ``backbone``, ``neck`` and ``head`` for an Ultralytics model (``model.model`` a list of
    modules, ``model.yaml`` its config). Raises :class:`UserError` for other models."""
    layers, yaml = getattr(model, "model", None), getattr(model, "yaml", None)
    if not isinstance(layers, (nn.Sequential, nn.ModuleList)) or not isinstance(yaml, dict) or "backbone" not in yaml:
        raise UserError("group presets backbone/neck/head and lr_decay need an Ultralytics YOLO model (model.model "
                        "and its yaml): use glob rules such as 'model.[0-9].*' for other models")
    n, nb = len(layers), len(yaml["backbone"])
    return {"backbone": tuple(range(nb)), "neck": tuple(range(nb, n - 1)), "head": (n - 1,)}


def resolve_presets(rules: Sequence[GroupRule], model: nn.Module) -> tuple[GroupRule, ...]:
    """``rules`` with every preset pattern bound to its module indices for ``model``."""
    if not any(r.pattern in PRESETS and r.modules is None for r in rules):
        return tuple(rules)
    parts = stages(model)
    return tuple(dataclasses.replace(r, modules=parts[r.pattern]) if r.pattern in PRESETS and r.modules is None
                 else r for r in rules)


def depth_rules(model: nn.Module, decay: float, names: Sequence[str], earlier: Sequence[GroupRule]) -> list[GroupRule]:
    """One rule per top-level module below the head, ``lr_mult = decay ** (N - 1 - i)``, for the modules that
    have a parameter in ``names`` (the trainable ones) not taken by an ``earlier`` rule."""
    if not 0 < decay <= 1:
        raise UserError(f"lr_decay must be in (0, 1], got {decay}: e.g. lr_decay=0.8 (each earlier stage x0.8)")
    n = len(stages(model)["backbone"]) + len(stages(model)["neck"]) + 1
    free = [x for x in names if not any(r.matches(x) for r in earlier)]
    rules = []
    for i in range(n - 1):
        rule = GroupRule(f"model.{i}.*", lr_mult=decay ** (n - 1 - i), name=f"depth{i}", modules=(i,))
        if any(rule.matches(x) for x in free):
            rules.append(rule)
    return rules

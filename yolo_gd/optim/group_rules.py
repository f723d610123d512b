"""Group rules: parameters whose name matches a glob get their own group with LR and weight-decay multipliers.

:func:`parse_rules` reads rules from a config value, :func:`assign_rules` decides which rule owns each parameter
(the first matching rule wins) and refuses a rule that gets no parameter;
:func:`yolo_gd.optim.groups.build_param_groups` turns the assignment into groups. Pure module ("floor 1").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from yolo_gd.errors import UserError
from yolo_gd.optim.checks import finite_number

__all__ = ["GroupRule", "assign_rules", "parse_rules"]


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
        modules: when set, the rule matches parameters of these top-level modules (``model.<i>.``) instead of the
            glob: the named presets ``backbone``, ``neck``, ``head`` resolved for one model
            (:func:`yolo_gd.optim.layer_lr.resolve_presets`) and the ``lr_decay`` depth rules.
    """

    pattern: str
    lr_mult: float = 1.0
    wd_mult: float = 1.0
    name: str = ""
    modules: tuple[int, ...] | None = None

    def __post_init__(self):
        if not isinstance(self.pattern, str) or not self.pattern.strip():
            raise UserError(f"group rule pattern must be a non-empty glob such as 'model.0.*', not {self.pattern!r}")
        lr_mult = finite_number(self.lr_mult, f"group rule '{self.pattern}': lr multiplier")
        wd_mult = finite_number(self.wd_mult, f"group rule '{self.pattern}': weight-decay multiplier")
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
        if self.modules is not None:
            parts = fullname.split(".", 2)
            return len(parts) == 3 and parts[0] == "model" and parts[1].isdigit() and int(parts[1]) in self.modules
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


def _rule_from_entry(pattern: str, value: Any) -> GroupRule:
    """One ``pattern: value`` entry of the mapping form."""
    if isinstance(value, Mapping):
        return _rule_from_mapping(pattern, value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return GroupRule(pattern, lr_mult=value)
    raise UserError(
        f"group rule '{pattern}': expected a mapping like {{'lr': 0.1, 'wd': 0.0}} or an lr multiplier, not {value!r}"
    )


def _rule_from_text(text: str) -> GroupRule:
    """One ``pattern:lr_mult`` item of the CLI form."""
    pattern, sep, mult = text.strip().rpartition(":")
    try:
        value = float(mult)
    except ValueError:
        value = None
    if not sep or value is None:
        raise UserError(f"group rule '{text.strip()}' is not pattern:lr_multiplier: write e.g. groups=backbone:0.1 "
                        f"or groups='model.2?.*:0.5,head:3'")
    return GroupRule(pattern.strip(), lr_mult=value)


def _rule_from_item(item: Any) -> GroupRule:
    """One item of the list form."""
    if isinstance(item, GroupRule):
        return item
    if isinstance(item, Mapping) and "pattern" in item:
        return _rule_from_mapping(item["pattern"], {k: v for k, v in item.items() if k != "pattern"})
    raise UserError(f"group rule {item!r} must be a GroupRule or a mapping with a 'pattern' key")


def parse_rules(spec: Any) -> tuple[GroupRule, ...]:
    """Rules from a config value; the first rule matching a parameter wins, so order matters.

    Accepts ``None``; a string ``'pattern:mult,pattern:mult'`` (the CLI form; lr multipliers); a mapping ``{pattern: {'lr': mult, 'wd': mult, 'name': label}}`` (a bare number is an lr
    multiplier: ``{'model.23.*': 3.0}``); or a sequence of :class:`GroupRule` or of mappings with a ``pattern`` key.
    """
    if spec is None:
        return ()
    if isinstance(spec, GroupRule):
        return (spec,)
    if isinstance(spec, str):  # the CLI form: 'backbone:0.1' or 'model.2?.*:0.5,head:3'
        return tuple(_rule_from_text(part) for part in spec.split(",") if part.strip())
    if isinstance(spec, Mapping):
        return tuple(_rule_from_entry(pattern, value) for pattern, value in spec.items())
    if isinstance(spec, (str, bytes)) or not isinstance(spec, Iterable):
        raise UserError(
            f"group rules must be a mapping {{pattern: {{'lr': mult, 'wd': mult}}}} or a list of rules, not {spec!r}"
        )
    return tuple(_rule_from_item(item) for item in spec)


def _examples(names: Sequence[str], k: int = 5) -> str:
    """A few parameter names spread over the model, to show what a pattern is matched against."""
    if len(names) <= k:
        picks = list(names)
    else:
        picks = [names[round(i * (len(names) - 1) / (k - 1))] for i in range(k)]
    return ", ".join(f"'{n}'" for n in picks)


def assign_rules(names: Sequence[str], rules: Sequence[GroupRule]) -> list[int | None]:
    """For each name, the index of the first rule matching it (``None``: no rule does).

    A rule that matches no name, or only names an earlier rule already took, is a :class:`UserError`: it is almost
    always a typo or a wrong order, and training with it silently ignored would be worse.
    """
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
            first = next(r.pattern for r in rules[:i] if any(r.matches(n) for n in names))
            raise UserError(
                f"group rule '{rule.pattern}' gets no parameter: every one it matches is taken by the earlier rule "
                f"'{first}' (the first matching rule wins); reorder or narrow the rules"
            )
    return assigned

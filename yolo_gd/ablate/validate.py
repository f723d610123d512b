"""The rules an ablation spec must follow, each broken one a :class:`UserError` that names ``<file>:<line>: <key>``.

The ``check_*`` functions take the raw YAML values of one part of the spec (with the :class:`Where` that knows
their lines) and return them validated and normalised as plain values; :func:`yolo_gd.ablate.spec.parse_spec`
calls them in file order and builds the :class:`~yolo_gd.ablate.spec.Sweep`. Train keys are checked against
yolo_gd's own keys and Ultralytics' train settings; optimizers, schedules and yolo_gd options are built once
here so a bad value fails at load time, not in a trial.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from yolo_gd.ablate.naming import safe_name
from yolo_gd.ablate.yamlpos import Where
from yolo_gd.errors import UserError, one_line, unknown_name
from yolo_gd.schema import validate_host_ranges

TOP_KEYS = ("name", "description", "base", "axes", "seeds", "budget", "target", "protocol", "tune", "lrfind")
AXES = ("optimizer", "lr", "schedule", "data")
PROTOCOLS = ("fixed", "tuned", "lrfind")
#: Protocols that pick each config's LR themselves (the spec gives none): a grid of trials, or a range test.
LR_PICKING = ("tuned", "lrfind")
#: Result columns a target (and the tuned pick) may use, with short aliases.
METRICS = {
    "metrics/precision(B)": ("precision", "p"),
    "metrics/recall(B)": ("recall", "r"),
    "metrics/mAP50(B)": ("map50", "mAP50"),
    "metrics/mAP50-95(B)": ("map50-95", "mAP50-95", "map"),
}
#: Keys the runner or the sweep's structure owns: where they go instead.
OWNED = {
    "project": "the runner puts every trial under runs/ablate/<sweep>/ (run_sweep out_root=...)",
    "name": "the runner names each trial after its config and seed",
    "exist_ok": "the runner manages trial folders",
    "resume": "the runner resumes interrupted trials itself: rerun the same command",
    "device": "pick devices when running the sweep (devices=0,1 or devices=cpu workers=N)",
    "seed": "list the seeds under 'seeds:'",
    "optimizer": "list optimizers under 'axes: optimizer:'",
    "time": "set a wall-clock budget with 'budget: {time: hours}'",
}
NOT_IN_BASE = {
    "schedule": "list schedules under 'axes: schedule:'",
    "lr": "set it per optimizer entry or under 'axes: lr:' (one LR for every optimizer is rarely fair)",
}
NOT_IN_ENTRY = {
    "epochs": "the budget is shared by every trial: set 'budget: {epochs: N}'",
    "seed": "list the seeds under 'seeds:'",
}


# ------------------------------------------------------------------------------------------------ spec sections


def check_top(where: Where, raw: Any) -> dict:
    """The spec's top-level mapping ({} for an empty file), with only known keys."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise where.error((), f"an ablation spec is a YAML mapping (name, base, axes, seeds, budget...), got "
                              f"{type(raw).__name__}")
    for key in raw:
        if key not in TOP_KEYS:
            raise where.error((key,), str(unknown_name("top-level key", key, TOP_KEYS)))
    return raw


def check_base(where: Where, raw: dict, ours: frozenset, theirs: frozenset) -> dict:
    """``base:`` (a copy), with ``model`` and ``data`` defaulted."""
    base = dict(as_mapping(where, ("base",), raw.get("base") or {}, "{model: yolo11n.yaml, data: shapes}"))
    check_train_keys(where, ("base",), base, forbidden={**OWNED, **NOT_IN_BASE}, ours=ours, theirs=theirs)
    base.setdefault("model", "yolo11n.yaml")
    base.setdefault("data", "shapes")
    for key in ("model", "data"):
        if not isinstance(base[key], str) or not base[key]:
            raise where.error(("base", key), f"{key} must be a non-empty string, got {base[key]!r}")
    check_model(where, ("base", "model"), base["model"])
    return base


def check_model(where: Where, path: tuple, model: str) -> None:
    """A model config that exists (or ships with Ultralytics), or a checkpoint that is on disk or can be
    downloaded (no connection is opened here)."""
    from yolo_gd._offline import check_weights
    from yolo_gd.preflight import check_model_name

    try:
        check_weights(check_model_name(model))
    except UserError as e:
        raise where.error(path, str(e)) from None


def check_budget(where: Where, raw: dict, base: Mapping) -> dict:
    """``{'epochs': N}`` or ``{'time': hours}``, from ``budget:`` or else ``base.epochs``."""
    budget_raw = raw.get("budget")
    if budget_raw is None:
        if "epochs" not in base:
            raise where.error(("budget",) if "budget" in raw else (),
                              "no training budget: add 'budget: {epochs: N}' (or base.epochs)")
        budget_raw = {"epochs": base["epochs"]}
        bpath = ("base", "epochs")
    else:
        bpath = ("budget",)
        budget_raw = as_mapping(where, bpath, budget_raw, "{epochs: 15}")
    for key in budget_raw:
        if key not in ("epochs", "time"):
            raise where.error(bpath + (key,), str(unknown_name("budget key", key, ("epochs", "time"))))
    if len(budget_raw) != 1:
        raise where.error(bpath, "give exactly one budget: {epochs: N} or {time: hours}")
    if "epochs" in budget_raw:
        e = budget_raw["epochs"]
        if isinstance(e, bool) or not isinstance(e, int) or e < 1:
            raise where.error(bpath + ("epochs",) if bpath == ("budget",) else bpath,
                              f"epochs must be a positive integer, got {e!r}")
        return {"epochs": e}
    return {"time": positive_number(where, bpath + ("time",), budget_raw["time"], "time (hours)")}


def check_target(where: Where, raw: dict) -> tuple[str, float] | None:
    """``target:`` as (full metric name, value), or None."""
    if raw.get("target") is None:
        return None
    t = as_mapping(where, ("target",), raw["target"], '{metric: "metrics/mAP50(B)", value: 0.5}')
    for key in t:
        if key not in ("metric", "value"):
            raise where.error(("target", key), str(unknown_name("target key", key, ("metric", "value"))))
    if "metric" not in t or "value" not in t:
        raise where.error(("target",), 'a target needs both metric and value, e.g. {metric: "metrics/mAP50(B)", '
                                       'value: 0.5}')
    metric = check_metric(where, ("target", "metric"), t["metric"])
    v = t["value"]
    if not is_number(v) or not 0 < v <= 1:
        raise where.error(("target", "value"), f"target value must be a number in (0, 1] ({metric} is a "
                                               f"fraction), got {v!r}")
    return metric, float(v)


def check_axes(where: Where, raw: dict, protocol: str, ours: frozenset, theirs: frozenset) -> tuple[list, list, list]:
    """``axes:`` as (optimizer entries, LRs, schedules): see :func:`optimizer_entries`, :func:`check_schedules`."""
    axes = as_mapping(where, ("axes",), raw.get("axes"), "{optimizer: [sgd, adamw]}")
    for key in axes:
        if key not in AXES:
            raise where.error(("axes", key), str(unknown_name("axis", key, AXES)))
    if "optimizer" not in axes:
        raise where.error(("axes",), "axes needs an 'optimizer' list, e.g. optimizer: [sgd, adamw]")
    entries = optimizer_entries(where, axes["optimizer"], ours, theirs)
    lrs = axis_list(where, ("axes", "lr"), axes.get("lr", [None]), "LR values, e.g. [0.01, 0.001] or [null]")
    for i, lr in enumerate(lrs):
        if lr is not None:
            positive_number(where, ("axes", "lr", i), lr, "an LR")
    schedules = check_schedules(where, axes.get("schedule", [None]))
    if protocol in LR_PICKING and any(lr is not None for lr in lrs):
        raise where.error(("axes", "lr"), f"protocol: {protocol} picks each optimizer's LR itself: drop axes.lr"
                                          + (" (or list the LRs to try under tune.lrs)" if protocol == "tuned" else ""))
    return entries, lrs, schedules


def check_config(where: Where, *, optimizer: str, kwargs: Mapping, entry: Mapping, entry_path: tuple,
                 schedule_path: tuple, schedule_set: bool, lr_path: tuple | None, time_budget: float | None,
                 protocol: str, ours: frozenset) -> None:
    """One point of the grid: optimizer ``entry`` (at ``entry_path``) with the LR at ``lr_path`` (None: no axis
    LR) and the schedule at ``schedule_path`` (``schedule_set``: that axis entry names one) gives train
    ``kwargs``."""
    if time_budget is not None and optimizer != "auto":
        raise where.error(("budget", "time"), f"a time budget needs Ultralytics' own optimizer and schedule: "
                                              f"yolo_gd.train refuses time= with an injected optimizer "
                                              f"('{optimizer}', line {where.line(entry_path)}) because its schedule "
                                              f"would have no fixed length; use 'budget: {{epochs: N}}'")
    key_paths = {k: entry_path + (k,) for k in entry}
    if lr_path is not None:
        key_paths["lr"] = lr_path
    if schedule_set:
        key_paths["schedule"] = schedule_path
    inject_check(where, schedule_path if schedule_set else entry_path, optimizer, kwargs, ours, key_paths)
    if kwargs.get("schedule") is not None:
        check_schedule(where, schedule_path, kwargs["schedule"], kwargs.get("schedule_kwargs") or {})
    if protocol in LR_PICKING and optimizer == "auto":
        raise where.error(entry_path, "optimizer 'auto' (Ultralytics' own choice) ignores the LR it is given: it "
                                      "cannot be tuned; use protocol: fixed, or name an optimizer")


def check_tune(where: Where, raw: dict, protocol: str, configs: Sequence, epochs: int | None,
               seeds: tuple[int, ...]) -> tuple[tuple[float, ...] | None, int, tuple[int, ...]] | None:
    """``tune:`` as (LRs or None, epochs, seeds) for a tuned sweep (None otherwise); ``configs`` (with ``name``,
    ``optimizer``, ``center_lr``, ``line``), the epoch budget and ``seeds`` give the defaults."""
    if "tune" in raw and protocol != "tuned":
        raise where.error(("tune",), "tune is only used with 'protocol: tuned': add it, or remove tune")
    if protocol != "tuned":
        return None
    t = as_mapping(where, ("tune",), raw.get("tune") or {}, "{lrs: [0.001, 0.01], epochs: 5, seeds: [0]}")
    for key in t:
        if key not in ("lrs", "epochs", "seeds"):
            raise where.error(("tune", key), str(unknown_name("tune key", key, ("lrs", "epochs", "seeds"))))
    tlrs = None
    if t.get("lrs") is not None:
        tl = axis_list(where, ("tune", "lrs"), t["lrs"], "LRs to try, e.g. [0.0003, 0.001, 0.003]")
        tlrs = tuple(positive_number(where, ("tune", "lrs", i), v, "an LR") for i, v in enumerate(tl))
        if len(set(tlrs)) != len(tlrs):
            raise where.error(("tune", "lrs"), "an LR is listed twice: list each once")
    else:
        for c in configs:
            if c.center_lr is None:
                raise where.error(("axes", "optimizer"), f"optimizer '{c.optimizer}' (config '{c.name}', line "
                                                         f"{c.line}) has no default LR to centre the tuning grid "
                                                         f"on: give it an lr, or list tune.lrs")
    if epochs is None:
        raise where.error(("budget",), "protocol: tuned needs an epoch budget: 'budget: {epochs: N}'")
    tepochs = t.get("epochs", max(1, math.ceil(epochs / 3)))
    if isinstance(tepochs, bool) or not isinstance(tepochs, int) or tepochs < 1:
        raise where.error(("tune", "epochs"), f"must be a positive integer, got {tepochs!r}")
    tseeds = seed_list(where, ("tune", "seeds"), t["seeds"]) if "seeds" in t else seeds[:1]
    return tlrs, tepochs, tseeds


# ------------------------------------------------------------------------------------------------ value rules


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def positive_number(where: Where, path: tuple, v: Any, what: str) -> float:
    if not is_number(v) or v <= 0:
        raise where.error(path, f"{what} must be a positive number, got {v!r}")
    return float(v)


def seed_list(where: Where, path: tuple, v: Any) -> tuple[int, ...]:
    if isinstance(v, int) and not isinstance(v, bool):
        raise where.error(path, f"must be a list of seeds, e.g. [0, 1, 2], got the number {v} (write [{v}] for one "
                                f"seed)")
    if not isinstance(v, list) or not v:
        raise where.error(path, f"must be a non-empty list of integer seeds, e.g. [0, 1, 2], got {v!r}")
    seen: dict[int, int] = {}
    for i, s in enumerate(v):
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise where.error(path + (i,), f"seed {s!r} must be a non-negative integer")
        if s in seen:
            raise where.error(path + (i,), f"seed {s} is listed twice (also at line {where.line(path + (seen[s],))})"
                                           f": list each seed once")
        seen[s] = i
    return tuple(v)


def as_mapping(where: Where, path: tuple, v: Any, example: str) -> dict:
    if not isinstance(v, dict):
        raise where.error(path, f"must be a mapping, e.g. {example}, got {type(v).__name__} {v!r}")
    return v


def known_keys() -> tuple[frozenset, frozenset]:
    """(yolo_gd keys, Ultralytics train keys)."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    from yolo_gd.training import YOLO_GD_KEYS

    return frozenset(YOLO_GD_KEYS), frozenset(DEFAULT_CFG_DICT)


def _unknown_key(where: Where, path: tuple, key: str, ours: frozenset, theirs: frozenset, extra=()) -> UserError:
    import difflib

    pool = sorted(ours | theirs | set(extra))
    close = difflib.get_close_matches(str(key), pool, n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return where.error(path, f"unknown key '{key}'.{hint} Valid: {', '.join(sorted(extra))}{', ' if extra else ''}"
                             f"a yolo_gd key ({', '.join(sorted(ours))}) or an Ultralytics train key (lr0, imgsz, "
                             f"batch, ... see 'yolo cfg')")


def check_train_keys(where: Where, path: tuple, kwargs: dict, *, forbidden: Mapping[str, str],
                      ours: frozenset, theirs: frozenset, extra=()) -> None:
    from ultralytics.cfg import check_cfg

    for key, value in kwargs.items():
        if key in forbidden:
            raise where.error(path + (key,), f"'{key}' cannot be set here: {forbidden[key]}")
        if key in extra:
            continue
        if key not in ours and key not in theirs:
            raise _unknown_key(where, path + (key,), key, ours, theirs, extra)
        if key in theirs and key not in ours:
            try:
                check_cfg({key: value}, hard=True)
                validate_host_ranges({key: value})
            except (TypeError, ValueError) as e:
                raise where.error(path + (key,), one_line(e)) from None


def inject_check(where: Where, path: tuple, optimizer: Any, kwargs: Mapping, ours: frozenset,
                  key_paths: Mapping[str, tuple]) -> None:
    """Build the InjectConfig the trial would build (the schema), so bad yolo_gd values fail at load time; the error
    points at the key it is about (``key_paths``: where each key was given), else at ``path``. With optimizer
    ``auto`` the keys yolo_gd shares with Ultralytics (``momentum``...) are Ultralytics' and checked as such."""
    from ultralytics.cfg import check_cfg

    from yolo_gd.inject.config import SHARED_WITH_ULTRALYTICS, InjectConfig

    shared = set(SHARED_WITH_ULTRALYTICS) if optimizer == "auto" else set()  # Ultralytics' keys when observing
    options = {k: v for k, v in kwargs.items() if k in ours and k != "optimizer" and k not in shared}
    try:
        InjectConfig(optimizer=optimizer, **options)
        for key in shared & set(kwargs):
            try:
                check_cfg({key: kwargs[key]}, hard=True)
                validate_host_ranges({key: kwargs[key]})
            except (TypeError, ValueError) as e:
                raise UserError(one_line(e), key=key) from None
    except UserError as e:
        raise where.error(key_paths.get(e.key, path), str(e)) from None


def check_metric(where: Where, path: tuple, v: Any) -> str:
    if isinstance(v, str):
        for full, aliases in METRICS.items():
            if v == full or v.lower() in {a.lower() for a in aliases}:
                return full
    raise where.error(path, str(unknown_name("metric", v, METRICS)))


def axis_list(where: Where, path: tuple, v: Any, what: str) -> list:
    if not isinstance(v, list):
        raise where.error(path, f"must be a list of {what}, got {v!r}")
    if not v:
        raise where.error(path, f"is empty: list at least one value ({what})")
    return v


def optimizer_entries(where: Where, v: Any, ours: frozenset, theirs: frozenset) -> list[tuple]:
    """[(index, optimizer name, other kwargs, label)]"""
    from yolo_gd.optim.registry import resolve_optimizer

    path = ("axes", "optimizer")
    v = axis_list(where, path, v, "optimizers, e.g. [sgd, {name: adamw, lr: 0.001}]")
    out = []
    for i, entry in enumerate(v):
        epath = path + (i,)
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict):
            raise where.error(epath, f"an optimizer entry is a name or a mapping {{name: ..., lr: ...}}, got "
                                     f"{entry!r}")
        if "name" not in entry:
            raise where.error(epath, "an optimizer entry needs 'name: <optimizer>' (e.g. sgd, adamw, lion)")
        kw = dict(entry)
        opt = kw.pop("name")
        label = kw.pop("label", None)
        if label is not None and (not isinstance(label, str) or not safe_name(label)):
            raise where.error(epath + ("label",), f"label must be a non-empty string, got {label!r}")
        if not isinstance(opt, str) or not opt.strip():
            raise where.error(epath + ("name",), f"optimizer name must be a string, got {opt!r}")
        opt = opt.strip()
        if opt.lower() == "auto":
            opt = "auto"
        else:
            try:
                resolve_optimizer(opt)
            except UserError as e:
                raise where.error(epath + ("name",), str(e)) from None
        check_train_keys(where, epath, kw, forbidden={**OWNED, **NOT_IN_ENTRY}, ours=ours, theirs=theirs,
                          extra=("name", "label"))
        out.append((i, opt, kw, safe_name(label) if label is not None else None))
    return out


def check_schedules(where: Where, v: Any) -> list[tuple]:
    """[(index or None, schedule name or None, schedule kwargs)]"""
    path = ("axes", "schedule")
    v = axis_list(where, path, v, "schedule names, e.g. [cosine, wsd] or [null]")
    out = []
    for i, s in enumerate(v):
        spath = path + (i,)
        if s is None:
            out.append((i, None, {}))
            continue
        kw: dict = {}
        if isinstance(s, dict):
            if "name" not in s:
                raise where.error(spath, "a schedule entry is a name or {name: ..., <options>}")
            kw = dict(s)
            s = kw.pop("name")
        if not isinstance(s, str) or not s.strip():
            raise where.error(spath, f"a schedule is a name (cosine, wsd, ...), got {s!r}")
        check_schedule(where, spath, s.strip(), kw)
        out.append((i, s.strip(), kw))
    return out


def check_schedule(where: Where, path: tuple, name: str, kwargs: Mapping) -> None:
    from yolo_gd.optim.schedules import get_schedule

    try:
        get_schedule(name, **dict(kwargs))
    except UserError as e:
        raise where.error(path, str(e)) from None
    except TypeError as e:
        raise where.error(path, f"bad schedule options: {e}") from None


"""An ablation spec (YAML) -> a validated, frozen :class:`Sweep` of named :class:`Trial` s.

    name: sgd_vs_adam            # sweep name (default: the file's stem)
    base: {model: yolo11n.yaml, data: shapes, imgsz: 128, batch: 16, nbs: 16}   # shared yolo_gd.train kwargs
    axes:
      optimizer:                 # a name, or {name: ..., label: ..., <yolo_gd or Ultralytics keys>}
        - {name: sgd, lr: 0.01}
        - {name: adamw, lr: 0.001}
      lr: [null]                 # crossed with every optimizer entry (null: the entry's own LR)
      schedule: [null]           # a name, or {name: ..., <schedule options>} (null: Ultralytics' own)
    seeds: [0]
    budget: {epochs: 15}         # or {time: 0.05} (hours; only with optimizer 'auto', see below)
    target: {metric: "metrics/mAP50(B)", value: 0.5}
    protocol: fixed              # or tuned
    tune: {lrs: [1e-4, 1e-3], epochs: 5, seeds: [0]}

The grid optimizer x lr x schedule x seed expands into trials named ``<config>-s<seed>``; a config name is the
optimizer name, then any other key its entry sets (``momentum0.9``), then ``lr<lr>`` and the schedule when they
are set (``sgd-lr0.01-cosine``); an entry's ``label:`` replaces the automatic name. Names are filesystem-safe and
must be unique: two entries that would share one (the same optimizer listed twice) are an error that says to add
a ``label``.

Every problem is a :class:`UserError` that starts with ``<file>:<line>: <key>:``. Numbers such as ``1e-4`` are
read as floats (plain PyYAML reads them as strings).

``budget: {time: h}`` is Ultralytics' wall-clock budget; ``yolo_gd.train`` refuses it with an injected optimizer
(the schedule would have no fixed length), so it is accepted only when every optimizer entry is ``auto``
(Ultralytics' own optimizer and schedule, observe-only).

``protocol: tuned``: stage 1 runs, per config (optimizer entry x schedule), an LR grid (``tune.lrs``, default
the entry's LR, else its registry default, times 0.1, 0.3, 1, 3, 10) for ``tune.epochs`` (default a third of the
budget, at least 1) on ``tune.seeds`` (default the first seed); stage 2 runs the full budget over ``seeds`` with
the LR that reached the best final metric on the validation split (``target.metric``, default mAP50-95). The
runner does the picking; here the main trials of a tuned sweep are known by name only until an LR is picked (see
:meth:`Sweep.main_trials`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from yolo_gd.errors import UserError, unknown_name

__all__ = ["Budget", "Config", "Sweep", "Target", "Trial", "Tune", "load_spec", "parse_spec", "safe_name"]

TOP_KEYS = ("name", "description", "base", "axes", "seeds", "budget", "target", "protocol", "tune")
AXES = ("optimizer", "lr", "schedule")
PROTOCOLS = ("fixed", "tuned")
#: Result columns a target (and the tuned pick) may use, with short aliases.
METRICS = {
    "metrics/precision(B)": ("precision", "p"),
    "metrics/recall(B)": ("recall", "r"),
    "metrics/mAP50(B)": ("map50", "mAP50"),
    "metrics/mAP50-95(B)": ("map50-95", "mAP50-95", "map"),
}
DEFAULT_TUNE_METRIC = "metrics/mAP50-95(B)"
TUNE_FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0)
#: Keys the runner or the sweep's structure owns: where they go instead.
_OWNED = {
    "project": "the runner puts every trial under runs/ablate/<sweep>/ (run_sweep out_root=...)",
    "name": "the runner names each trial after its config and seed",
    "exist_ok": "the runner manages trial folders",
    "resume": "the runner resumes interrupted trials itself: rerun the same command",
    "device": "pick devices when running the sweep (devices=0,1 or devices=cpu workers=N)",
    "seed": "list the seeds under 'seeds:'",
    "optimizer": "list optimizers under 'axes: optimizer:'",
    "time": "set a wall-clock budget with 'budget: {time: hours}'",
}
_NOT_IN_BASE = {
    "schedule": "list schedules under 'axes: schedule:'",
    "lr": "set it per optimizer entry or under 'axes: lr:' (one LR for every optimizer is rarely fair)",
}
_NOT_IN_ENTRY = {
    "epochs": "the budget is shared by every trial: set 'budget: {epochs: N}'",
    "seed": "list the seeds under 'seeds:'",
}


# ------------------------------------------------------------------------------------------------ data classes


@dataclass(frozen=True)
class Budget:
    epochs: int | None = None
    time: float | None = None  # hours (Ultralytics' time=)


@dataclass(frozen=True)
class Target:
    metric: str
    value: float


@dataclass(frozen=True)
class Tune:
    lrs: tuple[float, ...] | None  # None: per config, its LR x TUNE_FACTORS
    epochs: int
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class Config:
    """One point of the optimizer x lr x schedule grid (seeds aside).

    ``name`` is the config name (without the LR part for a tuned sweep, whose LR is picked later); ``kwargs`` are
    the train kwargs without ``seed`` and ``epochs``; ``lr`` is the LR the name shows (None: the entry's own or
    the registry default); ``center_lr`` is where the default tuning grid is centred.
    """

    name: str
    optimizer: str
    kwargs: Mapping[str, Any] = field(hash=False)
    lr: float | None = None
    center_lr: float | None = None
    line: int = 0


@dataclass(frozen=True)
class Trial:
    """One training: ``yolo_gd.train(**kwargs)`` (the runner adds ``project``, ``name``, ``exist_ok``,
    ``device`` and resolves ``data`` to its data.yaml).

    ``config`` groups trials that differ only by seed; ``stage`` is ``'tune'`` for LR-tuning trials (whose
    ``tunes`` names the config they tune, ``lr`` the LR they try) and ``'main'`` otherwise.
    """

    name: str
    config: str
    seed: int
    kwargs: dict = field(hash=False)
    stage: str = "main"
    tunes: str | None = None
    lr: float | None = None


@dataclass(frozen=True)
class Sweep:
    """A validated ablation spec. ``trials`` are every trial known before anything runs: for ``protocol: fixed``
    all of them; for ``tuned`` the tuning trials (stage 1), the main trials following from
    :meth:`main_trials` once LRs are picked."""

    name: str
    path: Path
    text: str
    base: Mapping[str, Any] = field(hash=False)
    configs: tuple[Config, ...]
    seeds: tuple[int, ...]
    budget: Budget
    target: Target | None = None
    protocol: str = "fixed"
    tune: Tune | None = None
    description: str | None = None

    @property
    def baseline(self) -> str:
        """Config name of the first optimizer entry (with the first LR and schedule): what others are compared to."""
        return self.configs[0].name

    @property
    def tune_metric(self) -> str:
        return self.target.metric if self.target else DEFAULT_TUNE_METRIC

    @property
    def trials(self) -> list[Trial]:
        return self.tune_trials() if self.protocol == "tuned" else self.main_trials()

    def tune_grid(self, config: str) -> tuple[float, ...]:
        """The LRs stage 1 tries for ``config``."""
        c = self._config(config)
        if self.tune is None:
            return ()
        if self.tune.lrs is not None:
            return self.tune.lrs
        return tuple(float(f"{c.center_lr * f:.6g}") for f in TUNE_FACTORS)

    def tune_trials(self) -> list[Trial]:
        if self.protocol != "tuned":
            return []
        out = []
        for c in self.configs:
            for lr in self.tune_grid(c.name):
                for seed in self.tune.seeds:
                    kw = dict(c.kwargs, lr=lr, epochs=self.tune.epochs, seed=seed)
                    config = f"{c.name}-tune-lr{_num(lr)}"
                    out.append(Trial(f"{config}-s{seed}", config, seed, kw, "tune", c.name, lr))
        return out

    def main_trials(self, picked: Mapping[str, float] | None = None) -> list[Trial]:
        """The full-budget trials. For a tuned sweep, ``picked`` maps config -> LR; configs not in it yield trials
        with ``kwargs`` = {} (known by name, not runnable yet)."""
        out = []
        for c in self.configs:
            for seed in self.seeds:
                kw = dict(c.kwargs, seed=seed)
                if self.budget.epochs is not None:
                    kw["epochs"] = self.budget.epochs
                if self.budget.time is not None:
                    kw["time"] = self.budget.time
                lr = c.lr
                if self.protocol == "tuned":
                    if picked is None or c.name not in picked:
                        kw, lr = {}, None
                    else:
                        lr = float(picked[c.name])
                        kw["lr"] = lr
                out.append(Trial(f"{c.name}-s{seed}", c.name, seed, kw, "main", None, lr))
        return out

    def trial_names(self) -> list[str]:
        """Every trial of the sweep, tuning and main, in run order."""
        return [t.name for t in self.tune_trials()] + [t.name for t in self.main_trials()]

    def _config(self, name: str) -> Config:
        for c in self.configs:
            if c.name == name:
                return c
        raise KeyError(name)


# ------------------------------------------------------------------------------------------------ YAML with lines


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` (no dot) as a float, as YAML 1.2 and Python do."""


_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


class _Where:
    """Maps key paths (``('axes', 'optimizer', 1, 'lr')``) to 1-based file lines and formats errors."""

    def __init__(self, file: str, text: str):
        self.file = file
        self.lines: dict[tuple, int] = {}
        try:
            root = yaml.compose(text, Loader=_Loader)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
            line = mark.line + 1 if mark is not None else 1
            raise UserError(f"{file}:{line}: not valid YAML ({getattr(e, 'problem', None) or e}): fix its "
                            f"syntax") from None
        if root is not None:
            self._walk(root, ())

    def _walk(self, node, path: tuple) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in node.value:
                key = str(k.value) if isinstance(k, yaml.ScalarNode) else repr(k.value)
                line = k.start_mark.line + 1
                if key in seen:
                    raise UserError(f"{self.file}:{line}: {_dotted(path + (key,))}: duplicate key (first given on "
                                    f"line {seen[key]}): keep one")
                seen[key] = line
                self.lines[path + (key,)] = line
                self._walk(v, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, path + (i,))

    def line(self, path: tuple) -> int:
        path = tuple(p if isinstance(p, int) else str(p) for p in path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def error(self, path: tuple, message: str) -> UserError:
        where = f"{_dotted(path)}: " if path else ""
        return UserError(f"{self.file}:{self.line(path)}: {where}{message}")


def _dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


# ------------------------------------------------------------------------------------------------ helpers


def safe_name(text: str) -> str:
    """Filesystem-safe: letters, digits and ``. _ + -``; anything else becomes ``_``."""
    out = re.sub(r"[^A-Za-z0-9._+-]+", "_", str(text)).strip("._-")
    return out[:120]


def _num(x: float) -> str:
    """Short, exact-enough LR text for names: 0.01 -> '0.01', 1e-4 -> '0.0001', 3e-05 -> '3e-05'."""
    return f"{float(x):.6g}"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _name_part(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return key if value else f"no_{key}"
    if _is_number(value):
        return f"{key}{_num(value)}"
    if isinstance(value, str):
        return f"{key}{value}"
    import hashlib
    import json

    digest = hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:6]
    return f"{key}{digest}"


def _positive_number(where: _Where, path: tuple, v: Any, what: str) -> float:
    if not _is_number(v) or v <= 0:
        raise where.error(path, f"{what} must be a positive number, got {v!r}")
    return float(v)


def _seed_list(where: _Where, path: tuple, v: Any) -> tuple[int, ...]:
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


def _mapping(where: _Where, path: tuple, v: Any, example: str) -> dict:
    if not isinstance(v, dict):
        raise where.error(path, f"must be a mapping, e.g. {example}, got {type(v).__name__} {v!r}")
    return v


def _known_keys() -> tuple[frozenset, frozenset]:
    """(yolo_gd keys, Ultralytics train keys)."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    from yolo_gd.train import YOLO_GD_KEYS

    return frozenset(YOLO_GD_KEYS), frozenset(DEFAULT_CFG_DICT)


def _unknown_key(where: _Where, path: tuple, key: str, ours: frozenset, theirs: frozenset, extra=()) -> UserError:
    import difflib

    pool = sorted(ours | theirs | set(extra))
    close = difflib.get_close_matches(str(key), pool, n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return where.error(path, f"unknown key '{key}'.{hint} Valid: {', '.join(sorted(extra))}{', ' if extra else ''}"
                             f"a yolo_gd key ({', '.join(sorted(ours))}) or an Ultralytics train key (lr0, imgsz, "
                             f"batch, ... see 'yolo cfg')")


def _check_train_keys(where: _Where, path: tuple, kwargs: dict, *, forbidden: Mapping[str, str],
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
            except (TypeError, ValueError) as e:
                raise where.error(path + (key,), f"{e}") from None


def _inject_check(where: _Where, path: tuple, optimizer: Any, kwargs: Mapping, ours: frozenset,
                  key_paths: Mapping[str, tuple]) -> None:
    """Build the InjectConfig the trial would build, so bad yolo_gd values fail at load time; the error points at
    the key it names first (``key_paths``: where each key was given), else at ``path``."""
    from yolo_gd.inject.config import InjectConfig

    options = {k: v for k, v in kwargs.items() if k in ours and k != "optimizer"}
    try:
        InjectConfig(optimizer=None if optimizer == "auto" else optimizer, **options)
    except UserError as e:
        msg = str(e)
        for key in sorted(key_paths, key=len, reverse=True):
            if re.match(rf"{re.escape(key)}\b(?![_.])", msg):
                path = key_paths[key]
                break
        raise where.error(path, msg) from None
    except TypeError as e:
        raise where.error(path, f"bad option: {e}") from None


# ------------------------------------------------------------------------------------------------ loading


def load_spec(path: str | Path) -> Sweep:
    """Read and validate the ablation spec at ``path``; every problem is a :class:`UserError` with file:line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"ablation spec {p} does not exist: pass the path of a spec YAML (e.g. "
                        f"configs/sgd_vs_adam.yaml)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"ablation spec {p} cannot be read ({e}): check its permissions and encoding (UTF-8)") from None
    return parse_spec(text, p)


def parse_spec(text: str, path: str | Path = "<spec>") -> Sweep:
    """Validate spec ``text`` (``path`` names it in errors and gives the default sweep name)."""
    path = Path(path)
    file = str(path)
    where = _Where(file, text)
    raw = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise where.error((), f"an ablation spec is a YAML mapping (name, base, axes, seeds, budget...), got "
                              f"{type(raw).__name__}")
    for key in raw:
        if key not in TOP_KEYS:
            raise where.error((key,), str(unknown_name("top-level key", key, TOP_KEYS)))

    ours, theirs = _known_keys()

    # name
    name_raw = raw.get("name", path.stem)
    if not isinstance(name_raw, str) or not safe_name(name_raw):
        raise where.error(("name",), f"the sweep name must be a non-empty string, got {name_raw!r}")
    name = safe_name(name_raw)
    description = raw.get("description")

    # protocol
    protocol = raw.get("protocol", "fixed")
    if protocol not in PROTOCOLS:
        raise where.error(("protocol",), str(unknown_name("protocol", protocol, PROTOCOLS)))

    # base
    base = dict(_mapping(where, ("base",), raw.get("base") or {}, "{model: yolo11n.yaml, data: shapes}"))
    _check_train_keys(where, ("base",), base, forbidden={**_OWNED, **_NOT_IN_BASE}, ours=ours, theirs=theirs)
    base.setdefault("model", "yolo11n.yaml")
    base.setdefault("data", "shapes")
    for key in ("model", "data"):
        if not isinstance(base[key], str) or not base[key]:
            raise where.error(("base", key), f"{key} must be a non-empty string, got {base[key]!r}")

    # budget
    budget_raw = raw.get("budget")
    if budget_raw is None:
        if "epochs" not in base:
            raise where.error(("budget",) if "budget" in raw else (),
                              "no training budget: add 'budget: {epochs: N}' (or base.epochs)")
        budget_raw = {"epochs": base["epochs"]}
        bpath = ("base", "epochs")
    else:
        bpath = ("budget",)
        budget_raw = _mapping(where, bpath, budget_raw, "{epochs: 15}")
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
        budget = Budget(epochs=e)
    else:
        budget = Budget(time=_positive_number(where, bpath + ("time",), budget_raw["time"], "time (hours)"))
    base.pop("epochs", None)

    # seeds
    if "seeds" not in raw:
        raise where.error((), "no seeds: add 'seeds: [0]' (one seed gives no confidence interval; 3+ are advised)")
    seeds = _seed_list(where, ("seeds",), raw["seeds"])

    # target
    target = None
    if raw.get("target") is not None:
        t = _mapping(where, ("target",), raw["target"], '{metric: "metrics/mAP50(B)", value: 0.5}')
        for key in t:
            if key not in ("metric", "value"):
                raise where.error(("target", key), str(unknown_name("target key", key, ("metric", "value"))))
        if "metric" not in t or "value" not in t:
            raise where.error(("target",), 'a target needs both metric and value, e.g. {metric: "metrics/mAP50(B)", '
                                           'value: 0.5}')
        metric = _metric(where, ("target", "metric"), t["metric"])
        v = t["value"]
        if not _is_number(v) or not 0 < v <= 1:
            raise where.error(("target", "value"), f"target value must be a number in (0, 1] ({metric} is a "
                                                   f"fraction), got {v!r}")
        target = Target(metric, float(v))

    # axes
    axes = _mapping(where, ("axes",), raw.get("axes"), "{optimizer: [sgd, adamw]}")
    for key in axes:
        if key not in AXES:
            raise where.error(("axes", key), str(unknown_name("axis", key, AXES)))
    if "optimizer" not in axes:
        raise where.error(("axes",), "axes needs an 'optimizer' list, e.g. optimizer: [sgd, adamw]")
    entries = _optimizer_entries(where, axes["optimizer"], ours, theirs)
    lrs = _axis_list(where, ("axes", "lr"), axes.get("lr", [None]), "LR values, e.g. [0.01, 0.001] or [null]")
    for i, lr in enumerate(lrs):
        if lr is not None:
            _positive_number(where, ("axes", "lr", i), lr, "an LR")
    schedules = _schedules(where, axes.get("schedule", [None]))
    if protocol == "tuned" and any(lr is not None for lr in lrs):
        raise where.error(("axes", "lr"), "protocol: tuned picks each optimizer's LR itself: drop axes.lr (or list "
                                          "the LRs to try under tune.lrs)")

    # configs: optimizer x lr x schedule
    configs: list[Config] = []
    names: dict[str, tuple] = {}
    for (ei, opt, ekw, label), lr_i, (si, sched, skw) in (
        (e, li, s) for e in entries for li in range(len(lrs)) for s in schedules
    ):
        lr = lrs[lr_i]
        kw = dict(base)
        kw.update(ekw)
        kw["optimizer"] = opt
        if lr is not None:
            kw["lr"] = float(lr)
        if sched is not None:
            kw["schedule"] = sched
        if skw:
            kw["schedule_kwargs"] = {**dict(ekw.get("schedule_kwargs") or {}), **skw}
        epath = ("axes", "optimizer", ei)
        spath = ("axes", "schedule", si) if si is not None else epath
        if budget.time is not None and opt != "auto":
            raise where.error(("budget", "time"), f"a time budget needs Ultralytics' own optimizer and schedule: "
                                                  f"yolo_gd.train refuses time= with an injected optimizer "
                                                  f"('{opt}', line {where.line(epath)}) because its schedule would "
                                                  f"have no fixed length; use 'budget: {{epochs: N}}'")
        key_paths = {k: epath + (k,) for k in ekw}
        if lr is not None:
            key_paths["lr"] = ("axes", "lr", lr_i)
        if sched is not None:
            key_paths["schedule"] = spath
        _inject_check(where, spath if sched is not None else epath, opt, kw, ours, key_paths)
        if kw.get("schedule") is not None:
            _check_schedule(where, spath, kw["schedule"], kw.get("schedule_kwargs") or {})
        eff_lr = kw.get("lr", kw.get("lr0") if "lr0" in ekw else None)
        center = kw.get("lr", kw.get("lr0") if "lr0" in ekw else None)
        if center is None and opt != "auto":
            from yolo_gd.optim.registry import resolve_optimizer

            center = resolve_optimizer(opt).default_lr
        if protocol == "tuned":
            if opt == "auto":
                raise where.error(epath, "optimizer 'auto' (Ultralytics' own choice) ignores the LR it is given: it "
                                         "cannot be tuned; use protocol: fixed, or name an optimizer")
            eff_lr = None
        if label is not None:
            cname = label
        else:
            parts = [_opt_name(opt)]
            parts += [_name_part(k, v) for k, v in ekw.items()
                      if k not in ("lr", "lr0", "schedule", "schedule_kwargs") or
                      (k == "lr0" and "lr" in kw)]
            if eff_lr is not None:
                parts.append(f"lr{_num(eff_lr)}")
            if kw.get("schedule") is not None:
                parts.append(str(kw["schedule"]).rsplit(":", 1)[-1].rsplit(".", 1)[-1])
                parts += [_name_part(k, v) for k, v in (skw or {}).items()]
            cname = safe_name("-".join(str(p) for p in parts))
        if cname in names:
            first = names[cname]
            raise where.error(epath, f"two configs would both be named '{cname}' (also from line "
                                     f"{where.line(first)}): trial names must be unique; remove the duplicate or "
                                     f"give one entry a 'label: ...'")
        names[cname] = epath
        configs.append(Config(cname, opt, kw, eff_lr, center, where.line(epath)))

    # tune
    tune = None
    if "tune" in raw and protocol != "tuned":
        raise where.error(("tune",), "tune is only used with 'protocol: tuned': add it, or remove tune")
    if protocol == "tuned":
        t = _mapping(where, ("tune",), raw.get("tune") or {}, "{lrs: [0.001, 0.01], epochs: 5, seeds: [0]}")
        for key in t:
            if key not in ("lrs", "epochs", "seeds"):
                raise where.error(("tune", key), str(unknown_name("tune key", key, ("lrs", "epochs", "seeds"))))
        tlrs = None
        if t.get("lrs") is not None:
            tl = _axis_list(where, ("tune", "lrs"), t["lrs"], "LRs to try, e.g. [0.0003, 0.001, 0.003]")
            tlrs = tuple(_positive_number(where, ("tune", "lrs", i), v, "an LR") for i, v in enumerate(tl))
            if len(set(tlrs)) != len(tlrs):
                raise where.error(("tune", "lrs"), "an LR is listed twice: list each once")
        else:
            for c in configs:
                if c.center_lr is None:
                    raise where.error(("axes", "optimizer"), f"optimizer '{c.optimizer}' (config '{c.name}', line "
                                                             f"{c.line}) has no default LR to centre the tuning grid "
                                                             f"on: give it an lr, or list tune.lrs")
        if budget.epochs is None:
            raise where.error(("budget",), "protocol: tuned needs an epoch budget: 'budget: {epochs: N}'")
        tepochs = t.get("epochs", max(1, math.ceil(budget.epochs / 3)))
        if isinstance(tepochs, bool) or not isinstance(tepochs, int) or tepochs < 1:
            raise where.error(("tune", "epochs"), f"must be a positive integer, got {tepochs!r}")
        tseeds = _seed_list(where, ("tune", "seeds"), t["seeds"]) if "seeds" in t else seeds[:1]
        tune = Tune(tlrs, tepochs, tseeds)

    sweep = Sweep(name=name, path=path, text=text, base=base, configs=tuple(configs), seeds=seeds, budget=budget,
                  target=target, protocol=protocol, tune=tune, description=description)
    all_names = sweep.trial_names()
    if len(set(all_names)) != len(all_names):
        dup = next(n for n in all_names if all_names.count(n) > 1)
        raise where.error(("axes", "optimizer"), f"trial name '{dup}' would occur twice: give the configs distinct "
                                                 f"labels")
    return sweep


def _opt_name(opt: Any) -> str:
    text = str(opt)
    return text.rsplit(":", 1)[-1] if ":" in text else text.lower()


def _metric(where: _Where, path: tuple, v: Any) -> str:
    if isinstance(v, str):
        for full, aliases in METRICS.items():
            if v == full or v.lower() in {a.lower() for a in aliases}:
                return full
    raise where.error(path, str(unknown_name("metric", v, METRICS)))


def _axis_list(where: _Where, path: tuple, v: Any, what: str) -> list:
    if not isinstance(v, list):
        raise where.error(path, f"must be a list of {what}, got {v!r}")
    if not v:
        raise where.error(path, f"is empty: list at least one value ({what})")
    return v


def _optimizer_entries(where: _Where, v: Any, ours: frozenset, theirs: frozenset) -> list[tuple]:
    """[(index, optimizer name, other kwargs, label)]"""
    from yolo_gd.optim.registry import resolve_optimizer

    path = ("axes", "optimizer")
    v = _axis_list(where, path, v, "optimizers, e.g. [sgd, {name: adamw, lr: 0.001}]")
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
        _check_train_keys(where, epath, kw, forbidden={**_OWNED, **_NOT_IN_ENTRY}, ours=ours, theirs=theirs,
                          extra=("name", "label"))
        out.append((i, opt, kw, safe_name(label) if label is not None else None))
    return out


def _schedules(where: _Where, v: Any) -> list[tuple]:
    """[(index or None, schedule name or None, schedule kwargs)]"""
    path = ("axes", "schedule")
    v = _axis_list(where, path, v, "schedule names, e.g. [cosine, wsd] or [null]")
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
        _check_schedule(where, spath, s.strip(), kw)
        out.append((i, s.strip(), kw))
    return out


def _check_schedule(where: _Where, path: tuple, name: str, kwargs: Mapping) -> None:
    from yolo_gd.optim.schedules import get_schedule

    try:
        get_schedule(name, **dict(kwargs))
    except UserError as e:
        raise where.error(path, str(e)) from None
    except TypeError as e:
        raise where.error(path, f"bad schedule options: {e}") from None

"""An ablation spec (YAML) -> a validated, frozen :class:`Sweep` of named :class:`Trial` s.

    name: sgd_vs_adam            # sweep name (default: the file's stem)
    base: {model: yolo11n.yaml, data: shapes, imgsz: 128, batch: 16, nbs: 16}   # shared yolo_gd.train kwargs
    axes:
      optimizer:                 # a name, or {name: ..., label: ..., <yolo_gd or Ultralytics keys>}
        - {name: sgd, lr: 0.01}
        - {name: adamw, lr: 0.001}
      lr: [null]                 # crossed with every optimizer entry (null: the entry's own LR)
      schedule: [null]           # a name, or {name: ..., <schedule options>} (null: Ultralytics' own)
      data: [shapes, bccd]       # optional: every config on each dataset (names, data.yaml paths); default base.data
    seeds: [0]
    budget: {epochs: 15}         # or {time: 0.05} (hours; only with optimizer 'auto', see below)
    target: {metric: "metrics/mAP50(B)", value: 0.5}
    protocol: fixed              # or tuned, or lrfind
    tune: {lrs: [1e-4, 1e-3], epochs: 5, seeds: [0]}

The grid optimizer x lr x schedule x seed expands into trials named ``<config>-s<seed>``; a config name is the
optimizer name, then any other key its entry sets (``momentum0.9``), then ``lr<lr>`` and the schedule when they
are set (``sgd-lr0.01-cosine``); an entry's ``label:`` replaces the automatic name. Names are filesystem-safe and
must be unique: two entries that would share one (the same optimizer listed twice) are an error that says to add
a ``label``.

With a ``data`` axis every config runs on every dataset and is named ``<dataset>__<config>`` (``bccd__sgd-lr0.01``);
every test, interval and "best" is then within one dataset (each dataset's baseline is the first optimizer entry on
it, :attr:`Sweep.baselines`), and only the performance profile speaks across datasets (report/profile.py).

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

``protocol: lrfind``: before the main trials, each config gets its LR from an LR range test
(:func:`yolo_gd.lrfind.run.lr_find`, default settings, seed of the first seed) on the train split; the runner runs
the tests (:mod:`~yolo_gd.ablate.lrfind_stage`) and records them in the manifest's ``lrfind``.

The YAML is read by :mod:`~yolo_gd.ablate.yamlpos` (values and the line of every key), checked part by part by
:mod:`~yolo_gd.ablate.validate` (the rules and their messages) and named by :mod:`~yolo_gd.ablate.naming`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolo_gd.ablate import validate
from yolo_gd.ablate.lrfind_spec import check_lrfind, check_lrfind_optimizer
from yolo_gd.ablate.naming import DATA_SEP, config_name, data_label, num_text, safe_name
from yolo_gd.ablate.yamlpos import Where, load_yaml
from yolo_gd.errors import UserError, unknown_name

__all__ = ["Budget", "Config", "Sweep", "Target", "Trial", "Tune", "load_spec", "parse_spec", "safe_name"]

DEFAULT_TUNE_METRIC = "metrics/mAP50-95(B)"
TUNE_FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0)


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
    dataset: str | None = None  # the data axis' label (None without a data axis)


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
    lrfind: Mapping[str, Any] = field(default_factory=dict, hash=False)  # protocol lrfind: lr_find's steps/lr_min/max

    @property
    def baseline(self) -> str:
        """Config name of the first optimizer entry (with the first LR and schedule) on the first dataset."""
        return self.configs[0].name

    @property
    def baselines(self) -> dict[str, str]:
        """Config -> the config it is tested against: the first optimizer entry on the SAME dataset (with a data
        axis, one baseline per dataset; without one, :attr:`baseline` for all). Statistics never cross datasets."""
        first: dict[str | None, str] = {}
        for c in self.configs:
            first.setdefault(c.dataset, c.name)
        return {c.name: first[c.dataset] for c in self.configs}

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
                    config = f"{c.name}-tune-lr{num_text(lr)}"
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
                if self.protocol in validate.LR_PICKING:
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
    where = Where(str(path), text)
    raw = validate.check_top(where, load_yaml(text))
    ours, theirs = validate.known_keys()

    name_raw = raw.get("name", path.stem)
    if not isinstance(name_raw, str) or not safe_name(name_raw):
        raise where.error(("name",), f"the sweep name must be a non-empty string, got {name_raw!r}")
    name = safe_name(name_raw)
    description = raw.get("description")
    protocol = raw.get("protocol", "fixed")
    if protocol not in validate.PROTOCOLS:
        raise where.error(("protocol",), str(unknown_name("protocol", protocol, validate.PROTOCOLS)))

    base = validate.check_base(where, raw, ours, theirs)
    if not isinstance(raw.get("axes"), dict) or "data" not in raw["axes"]:  # a data axis replaces base.data
        _check_data(where, ("base", "data"), base["data"])
    budget = Budget(**validate.check_budget(where, raw, base))
    base.pop("epochs", None)
    if "seeds" not in raw:
        raise where.error((), "no seeds: add 'seeds: [0]' (one seed gives no confidence interval; 3+ are advised)")
    seeds = validate.seed_list(where, ("seeds",), raw["seeds"])
    target = validate.check_target(where, raw)
    target = Target(*target) if target is not None else None
    entries, lrs, schedules = validate.check_axes(where, raw, protocol, ours, theirs)
    configs = _configs(where, base, entries, lrs, schedules, budget, protocol, ours)
    configs = _cross_data(where, raw, configs)
    tune = validate.check_tune(where, raw, protocol, configs, budget.epochs, seeds)
    tune = Tune(*tune) if tune is not None else None

    sweep = Sweep(name=name, path=path, text=text, base=base, configs=tuple(configs), seeds=seeds, budget=budget,
                  target=target, protocol=protocol, tune=tune, description=description,
                  lrfind=check_lrfind(where, raw, protocol))
    all_names = sweep.trial_names()
    if len(set(all_names)) != len(all_names):
        dup = next(n for n in all_names if all_names.count(n) > 1)
        raise where.error(("axes", "optimizer"), f"trial name '{dup}' would occur twice: give the configs distinct "
                                                 f"labels")
    return sweep


def _check_data(where: Where, path: tuple, data: str) -> None:
    """A known dataset name or an existing data.yaml (nothing generated here), before the sweep folder exists."""
    from yolo_gd.datasets.check import check_data_exists

    try:
        check_data_exists(data)
    except UserError as e:
        raise where.error(path, str(e)) from None


def _cross_data(where: Where, raw: dict, configs: list[Config]) -> list[Config]:
    """Every config on every dataset of ``axes.data`` (dataset-major), named ``<dataset>__<config>``."""
    axes = raw.get("axes") or {}
    if "data" not in axes:
        return configs
    datasets = validate.axis_list(where, ("axes", "data"), axes["data"], "dataset names or data.yaml paths")
    labels: dict[str, int] = {}
    for i, d in enumerate(datasets):
        if not isinstance(d, str) or not d.strip():
            raise where.error(("axes", "data", i), f"must be a dataset name or a data.yaml path, got {d!r}")
        _check_data(where, ("axes", "data", i), d)
        label = data_label(d)
        if label in labels:
            raise where.error(("axes", "data", i), f"datasets {datasets[labels[label]]!r} and {d!r} would both be "
                                                   f"named '{label}': list each dataset once")
        labels[label] = i
    return [Config(f"{label}{DATA_SEP}{c.name}", c.optimizer, {**c.kwargs, "data": d}, c.lr, c.center_lr, c.line,
                   label) for label, d in zip(labels, datasets) for c in configs]


def _configs(where: Where, base: dict, entries: list, lrs: list, schedules: list, budget: Budget, protocol: str,
             ours: frozenset) -> list[Config]:
    """The grid optimizer entry x LR x schedule, each point a named :class:`Config` (names must be unique)."""
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
        validate.check_config(where, optimizer=opt, kwargs=kw, entry=ekw, entry_path=epath, schedule_path=spath,
                              schedule_set=sched is not None, lr_path=("axes", "lr", lr_i) if lr is not None else None,
                              time_budget=budget.time, protocol=protocol, ours=ours)
        if protocol == "lrfind" and opt != "auto":
            check_lrfind_optimizer(where, epath, opt)
        eff_lr = kw.get("lr", kw.get("lr0") if "lr0" in ekw else None)  # the LR the name shows
        center = eff_lr
        if center is None and opt != "auto":
            from yolo_gd.optim.registry import resolve_optimizer

            center = resolve_optimizer(opt).default_lr
        if protocol in validate.LR_PICKING:
            eff_lr = None
        cname = label if label is not None else config_name(opt, ekw, kw, eff_lr, skw)
        if cname in names:
            first = names[cname]
            raise where.error(epath, f"two configs would both be named '{cname}' (also from line "
                                     f"{where.line(first)}): trial names must be unique; remove the duplicate or "
                                     f"give one entry a 'label: ...'")
        names[cname] = epath
        configs.append(Config(cname, opt, kw, eff_lr, center, where.line(epath)))
    return configs

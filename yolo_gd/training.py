"""``yolo_gd.train(...)``: check everything, build the YOLO model, attach yolo_gd, run ``model.train``.

(The module is ``training``, not ``train``: importing a submodule named ``train`` would rebind ``yolo_gd.train``
from the function to the module.)

Keys are split in two: yolo_gd's own (``optimizer``, ``schedule``, ``clip``, ``lr``, ``warmup``, ``groups``,
``telemetry``... every :class:`InjectConfig` field) go to :func:`attach`; everything else goes to Ultralytics
unchanged (``epochs``, ``imgsz``, ``lr0``, ``cos_lr``...). ``optimizer`` given as None or ``'auto'`` means
observe-only: Ultralytics keeps its own choice, and the keys both share (``momentum``, ``weight_decay``,
``warmup_bias_lr``, ``warmup_momentum``) go to Ultralytics. ``model.train`` gets only the Ultralytics keys the
caller gave (and ``cfg=`` file held), plus ``data`` (resolved to its data.yaml) and an absolute ``project``.

Every value is checked before ``model.train`` creates the run folder (see :mod:`yolo_gd.preflight`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from yolo_gd.errors import UserError
from yolo_gd.inject.config import SHARED_WITH_ULTRALYTICS, UNSET, InjectConfig

#: Keys that belong to yolo_gd, not to Ultralytics.
YOLO_GD_KEYS = frozenset(InjectConfig.__dataclass_fields__)
DEFAULT_MODEL = "yolo11n.yaml"
DEFAULT_DATA = "shapes"


@dataclass(frozen=True)
class TrainResult:
    save_dir: Path
    metrics: dict


@dataclass(frozen=True)
class TrainPlan:
    """A checked training, before any model is built: what :func:`train` hands to ``YOLO``, ``attach`` and
    ``model.train``."""

    model: str
    inject: InjectConfig
    options: dict  # attach's keyword arguments, as given
    ultralytics: dict  # model.train's keyword arguments: only what the caller gave, plus data and project
    settings: SimpleNamespace  # the trainer's settings these give (Ultralytics' defaults filled in)
    train_images: int | None  # None when resuming (the data is the checkpoint's)
    resume: bool


def split_keys(kwargs: dict, observe_only: bool = False) -> tuple[dict, dict]:
    """``(yolo_gd options, Ultralytics overrides)``; in ``observe_only`` mode the keys both know
    (``momentum``, ``weight_decay``, ``warmup_bias_lr``, ``warmup_momentum``) are Ultralytics'."""
    mine = YOLO_GD_KEYS - set(SHARED_WITH_ULTRALYTICS) if observe_only else YOLO_GD_KEYS
    ours = {k: v for k, v in kwargs.items() if k in mine}
    theirs = {k: v for k, v in kwargs.items() if k not in mine}
    return ours, theirs


def default_project() -> Path:
    """``<cwd>/runs/detect``: absolute, because Ultralytics resolves a relative project under its own runs_dir."""
    return (Path.cwd() / "runs" / "detect").resolve()


def load_cfg_file(path: Any) -> dict:
    """The train keys in a ``cfg=`` YAML file (Ultralytics' convention), yolo_gd's and Ultralytics' alike.

    Empty entries Ultralytics' own ``default.yaml`` carries (``model:``, ``data:``, ``cfg:``) and ``mode: train``
    are dropped, so a copy of it works."""
    import yaml

    from yolo_gd.yamlio import load_yaml

    p = Path(str(path)).expanduser()
    fix = "pass a YAML file of train keys, one 'key: value' per line (e.g. cfg=train.yaml)"
    if not p.is_file():
        raise UserError(f"cfg={path}: no such file: {fix}", key="cfg")
    try:
        raw = load_yaml(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise UserError(f"cfg={path}: not valid YAML at {where} ({getattr(e, 'problem', None) or e}): fix its "
                        f"syntax", key="cfg") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cfg={path}: cannot be read ({e}): {fix}", key="cfg") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise UserError(f"cfg={path}: holds a {type(raw).__name__}, not a mapping of train keys: {fix}", key="cfg")
    out = {str(k): v for k, v in raw.items()}
    for key in ("model", "data", "cfg"):
        if out.get(key, 0) is None:
            del out[key]
    if "cfg" in out:
        raise UserError(f"cfg={path}: a cfg file cannot name another cfg file ({out['cfg']}): merge them", key="cfg")
    if out.get("mode", "train") != "train":
        raise UserError(f"cfg={path}: mode: {out['mode']} is not a training: yolo-gd train trains (drop mode)",
                        key="cfg")
    out.pop("mode", None)
    return out


def plan_training(given: dict) -> TrainPlan:
    """Check every value of a training (``given``: the caller's keys, ``cfg=`` already merged) without building
    the model or creating a folder; data (``shapes`` may be generated) and weights (may be downloaded) last."""
    from yolo_gd._offline import check_weights, fetch_weights
    from yolo_gd.datasets.check import check_dataset, resolve_data
    from yolo_gd.preflight import check_device, check_model_name, check_resumable, check_ultralytics_args

    given = dict(given)
    model, data = given.pop("model", DEFAULT_MODEL), given.pop("data", DEFAULT_DATA)
    optimizer = given.pop("optimizer", None)
    observe = optimizer is None or (isinstance(optimizer, str) and optimizer.strip().lower() == "auto")
    ours, theirs = split_keys(given, observe_only=observe)
    inject = InjectConfig(optimizer=optimizer, **ours)
    if observe and optimizer is not None:
        theirs["optimizer"] = "auto"  # the user gave it: Ultralytics' own choice
    if not observe and theirs.get("time"):
        raise UserError(f"time={theirs['time']} (a wall-clock budget) re-estimates epochs every epoch, so an "
                        f"injected schedule has no fixed length: pass epochs= instead, or drop optimizer= to keep "
                        f"Ultralytics' own schedule", key="time")
    settings = check_ultralytics_args(theirs, YOLO_GD_KEYS)
    check_device(theirs.get("device"))
    resume = theirs.pop("resume", False)
    model = check_model_name(model)
    check_weights(model)  # no download possible: say so before the data is generated or checked
    train_images = None
    if resume:
        if not model.endswith(".pt"):
            raise UserError(f"resume needs the checkpoint to resume (model=.../weights/last.pt), not model={model}",
                            key="resume")
        check_resumable(model, theirs.get("epochs"), injected=not observe)
        theirs["resume"] = str(Path(model).resolve())  # a path: Ultralytics then needs no fp16 optimizer check
    else:
        data_yaml = resolve_data(data)
        summary = check_dataset(data_yaml)
        train_images = summary.splits["train"].images if "train" in summary.splits else None
        theirs["data"] = str(data_yaml)
        theirs.setdefault("project", str(default_project()))
    model = fetch_weights(model)
    options = {**ours, "optimizer": None if observe else optimizer}
    return TrainPlan(model, inject, options, theirs, settings, train_images, bool(resume))


def _given(model: Any, data: Any, optimizer: Any, schedule: Any, clip: Any, kwargs: dict) -> dict:
    """The keys the caller gave: defaults left out, then the ``cfg=`` file's keys where the caller gave none."""
    given = dict(kwargs)
    for key, value, unset in (("model", model, None), ("data", data, None), ("optimizer", optimizer, None),
                              ("schedule", schedule, None), ("clip", clip, UNSET)):
        if value is not unset:
            given[key] = value
    cfg = given.pop("cfg", None)
    return {**load_cfg_file(cfg), **given} if cfg is not None else given


def train(model: str | None = None, data: str | None = None, *, optimizer: Any = None, schedule: Any = None,
          clip: Any = UNSET, **kwargs) -> TrainResult:
    """Train ``model`` (default ``yolo11n.yaml``) on ``data`` (default ``'shapes'``) with an injected
    optimizer/schedule, or observe-only when ``optimizer`` is None or ``'auto'``.

    ``data`` is ``'shapes'`` (generated on first use), ``'bccd'`` (shipped) or a path to a ``data.yaml``; it is
    checked first, and every problem is reported at once. ``resume=True`` resumes ``model`` (a ``last.pt``).
    ``cfg='file.yaml'`` reads train keys from a file (keys given here win). Every value is checked before the run
    folder is created; a problem is one :class:`UserError` line.
    """
    from yolo_gd.inject.attach import attach
    from yolo_gd.preflight import (check_groups_match, check_run_length, check_sam_cadence, check_unfreeze_match,
                                   load_model)

    plan = plan_training(_given(model, data, optimizer, schedule, clip, kwargs))
    if not plan.resume:
        check_run_length(plan.inject, plan.settings, plan.train_images)
        check_sam_cadence(plan.inject, plan.settings, plan.train_images)
    yolo = load_model(plan.model)
    if not plan.resume:
        check_groups_match(plan.inject, yolo.model, plan.settings.freeze)
        check_unfreeze_match(plan.inject, yolo.model, plan.settings.freeze)
    options = dict(plan.options)
    attach(yolo, options.pop("optimizer"), **options)
    metrics = yolo.train(**plan.ultralytics)
    save_dir = Path(yolo.trainer.save_dir)
    return TrainResult(save_dir, dict(getattr(metrics, "results_dict", None) or {}))


def _check_ultralytics_keys(keys: dict) -> None:
    """Unknown keys, types and ranges of Ultralytics train ``keys`` (what :mod:`yolo_gd.qat` checks early)."""
    from yolo_gd.preflight import check_ultralytics_args

    check_ultralytics_args(keys, YOLO_GD_KEYS)

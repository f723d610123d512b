"""``yolo_gd.train(...)``: check the data, build the YOLO model, attach yolo_gd, run ``model.train``.

(The module is ``training``, not ``train``: importing a submodule named ``train`` would rebind ``yolo_gd.train``
from the function to the module.)

Keys are split in two: yolo_gd's own (``optimizer``, ``schedule``, ``clip``, ``lr``, ``warmup``, ``groups``,
``telemetry``... every :class:`InjectConfig` field) go to :func:`attach`; everything else goes to Ultralytics
unchanged (``epochs``, ``imgsz``, ``lr0``, ``cos_lr``...), so Ultralytics validates its own keys. ``optimizer``
given as None or ``'auto'`` means observe-only: Ultralytics keeps its own choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolo_gd._offline import check_local_weights
from yolo_gd.datasets.check import check_dataset, resolve_data
from yolo_gd.inject.config import UNSET, InjectConfig

#: Keys that belong to yolo_gd, not to Ultralytics.
YOLO_GD_KEYS = frozenset(InjectConfig.__dataclass_fields__)


@dataclass(frozen=True)
class TrainResult:
    save_dir: Path
    metrics: dict


def split_keys(kwargs: dict) -> tuple[dict, dict]:
    """``(yolo_gd options, Ultralytics overrides)``."""
    ours = {k: v for k, v in kwargs.items() if k in YOLO_GD_KEYS}
    theirs = {k: v for k, v in kwargs.items() if k not in YOLO_GD_KEYS}
    return ours, theirs


def _check_ultralytics_keys(keys: dict) -> None:
    """Reject a misspelt key before the model is built (Ultralytics would raise a multi-line SyntaxError)."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    from yolo_gd.errors import unknown_name

    for key in keys:
        if key not in DEFAULT_CFG_DICT:
            raise unknown_name("argument", key, sorted(set(DEFAULT_CFG_DICT) | YOLO_GD_KEYS))


def default_project() -> Path:
    """``<cwd>/runs/detect``: absolute, because Ultralytics resolves a relative project under its own runs_dir."""
    return (Path.cwd() / "runs" / "detect").resolve()


def train(model: str = "yolo11n.yaml", data: str = "shapes", *, optimizer: Any = None, schedule: Any = None,
          clip: Any = UNSET, **kwargs) -> TrainResult:
    """Train ``model`` on ``data`` with an injected optimizer/schedule (or observe-only when ``optimizer`` is None).

    ``data`` is ``'shapes'`` (generated on first use), ``'bccd'`` (shipped) or a path to a ``data.yaml``; it is
    checked first, and every problem is reported at once. ``resume=True`` resumes ``model`` (a ``last.pt``).
    """
    from ultralytics import YOLO

    from yolo_gd.inject.attach import attach

    model = check_local_weights(model)
    ours, theirs = split_keys(kwargs)
    _check_ultralytics_keys(theirs)
    resume = theirs.pop("resume", False)
    if not resume:
        data_yaml = resolve_data(data)
        check_dataset(data_yaml)
        theirs["data"] = str(data_yaml)
        theirs.setdefault("project", str(default_project()))
    if str(optimizer).lower() == "auto":
        optimizer = None
        theirs["optimizer"] = "auto"
    yolo = YOLO(model)
    attach(yolo, optimizer, schedule=schedule, clip=clip, **ours)
    if resume:
        theirs["resume"] = str(Path(model).resolve())  # a path: Ultralytics then needs no fp16 optimizer check
    metrics = yolo.train(**theirs)
    save_dir = Path(yolo.trainer.save_dir)
    return TrainResult(save_dir, dict(getattr(metrics, "results_dict", None) or {}))

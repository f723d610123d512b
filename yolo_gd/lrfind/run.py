"""``lr_find(...)``: the range test as a short injected training of a copy of the model.

The ramp (:class:`~yolo_gd.lrfind.rangetest.LrRamp`) is the schedule, with base LR ``lr_min`` and warmup off; one
batch is one optimizer step (``nbs = batch``); the clip stays as configured; :class:`RangeStop` sets
``trainer.stop`` (which Ultralytics checks between batches) after ``steps`` steps or when the smoothed loss
diverges. The step table is the record: the CSV, the plot and the suggestion are computed from it afterwards.
The training runs in a temporary folder that is deleted; label caches Ultralytics writes next to the data are
removed again; a ``YOLO`` object given as the model is deep-copied, so neither it nor its files change.
"""

from __future__ import annotations

import copy
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolo_gd.errors import UserError
from yolo_gd.lrfind.rangetest import DIVERGE_FACTOR, LrRamp, Smoother, Suggestion, diverged

__all__ = ["LrFindResult", "RangeStop", "lr_find", "DEFAULT_STEPS", "DEFAULT_LR_MIN", "DEFAULT_LR_MAX"]

#: Lightning's default number of steps (fastai's too): enough for ~17 points per decade over 6 decades.
DEFAULT_STEPS = 100
#: The cap on steps: the test must stay a small fraction of a training (the issue: a few hundred at most).
MAX_STEPS = 500
#: Lightning's range is 1e-8..1, fastai's 1e-7..10; 1e-6..1 covers every registry optimizer's default (Lion 1e-4
#: .. sfsgd 0.1) with two decades of margin below and the divergence stop above.
DEFAULT_LR_MIN, DEFAULT_LR_MAX = 1e-6, 1.0
#: Optimizers that adapt their own step size and take ``lr`` as a multiplier near 1: ramping it measures nothing
#: a user would set (Prodigy, D-Adaptation, DoG, Mechanic).
LR_FREE = frozenset({"prodigy", "dadaptadam", "dadaptsgd", "dadaptadagrad", "dadaptlion", "dadaptadan", "dog",
                     "ldog", "pdog", "mechanic"})
#: Keys the range test sets itself (the ramp is the schedule and the LR; one step per batch; no warmup).
OWN_KEYS = ("schedule", "schedule_kwargs", "lr", "lr0", "warmup", "warmup_epochs", "epochs", "nbs", "time", "resume")


@dataclass(frozen=True)
class LrFindResult:
    out: Path
    suggestion: Suggestion
    steps: int  # optimizer steps run
    stopped_early: bool  # the divergence stop ended the test before ``steps``
    seconds: float
    csv: Path
    plot: Path | None

    def summary(self) -> str:
        lr = f"{self.suggestion.lr:.3g}" if self.suggestion.lr is not None else "none (the loss never fell)"
        others = ", ".join(f"{k} {v:.3g}" if v is not None else f"{k} -" for k, v in self.suggestion.others.items())
        stop = "stopped at divergence" if self.stopped_early else "ran the full ramp"
        return (f"yolo-gd lrfind: suggested lr {lr} (rule {self.suggestion.rule}; {others}); {self.steps} steps, "
                f"{stop}, {self.seconds:.0f} s\n  csv: {self.csv}\n  plot: {self.plot}")


def _loss_sum(items) -> float:
    """The sum of the loss parts (the step table's ``loss_sum``): a dict of tensors (8.4) or one tensor."""
    values = items.values() if isinstance(items, dict) else [items]
    return float(sum(float(v.detach().float().sum()) for v in values))


class RangeStop:
    """``on_train_batch_end``: smooth the batch's loss; set ``trainer.stop`` after ``steps`` or at divergence."""

    def __init__(self, steps: int, factor: float = DIVERGE_FACTOR):
        self.steps, self.factor = steps, factor
        self.smoother, self.best, self.count, self.diverged = Smoother(), math.inf, 0, False

    def on_train_batch_end(self, trainer) -> None:
        loss = _loss_sum(trainer.loss_items)
        smoothed = self.smoother.update(loss)
        self.count += 1
        if self.count > 1 and diverged(smoothed, self.best, self.factor):
            self.diverged = True
            trainer.stop = True
        self.best = min(self.best, smoothed) if math.isfinite(smoothed) else self.best
        if self.count >= self.steps:
            trainer.stop = True


def check_optimizer(optimizer: Any) -> None:
    """Refuse what a range test cannot test: observe-only (Ultralytics owns the LR) and LR-free optimizers."""
    from yolo_gd.optim.registry import resolve_optimizer

    if optimizer is None or (isinstance(optimizer, str) and optimizer.strip().lower() == "auto"):
        raise UserError("lrfind needs optimizer= (e.g. optimizer=sgd): without it Ultralytics picks the optimizer "
                        "and its LR itself, so there is no LR to test", key="optimizer")
    info = resolve_optimizer(optimizer)
    names = {info.name.lower(), str(info.factory).rpartition(":")[2].lower()}
    if info.lr_free or names & LR_FREE:
        raise UserError(f"lrfind: {info.name} sets its own step size (its lr is a multiplier near 1): a range "
                        f"test says nothing about it; train it at lr=1", key="optimizer")


def _check_keys(kwargs: dict, steps: int, lr_min: float, lr_max: float) -> None:
    own = sorted(set(kwargs) & set(OWN_KEYS))
    if own:
        raise UserError(f"lrfind sets {own[0]}= itself (the LR ramps from lr_min to lr_max with no warmup, one batch "
                        f"per step): drop it, or use lr_min=/lr_max=/steps=", key=own[0])
    if not isinstance(steps, int) or isinstance(steps, bool) or not 2 <= steps <= MAX_STEPS:
        raise UserError(f"lrfind steps={steps}: give an integer in [2, {MAX_STEPS}] (default {DEFAULT_STEPS})",
                        key="steps")
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lr_min, lr_max))
    if not ok or not (0 < lr_min < lr_max < math.inf):
        raise UserError(f"lrfind lr_min={lr_min} lr_max={lr_max}: need 0 < lr_min < lr_max (defaults "
                        f"{DEFAULT_LR_MIN:g}, {DEFAULT_LR_MAX:g})", key="lr_min")


def _caches(data_yaml: Path) -> set[Path]:
    return set(data_yaml.parent.rglob("*.cache"))


def _train_copy(model: Any, given: dict, stop: RangeStop, tmp: Path) -> Path:
    """Train a copy of ``model`` with ``given`` (yolo_gd's and Ultralytics' keys); the run's save dir."""
    from ultralytics.utils import callbacks

    from yolo_gd.inject.attach import attach
    from yolo_gd.preflight import load_model
    from yolo_gd.training import DEFAULT_MODEL, plan_training

    name = model if isinstance(model, (str, Path)) else DEFAULT_MODEL
    plan = plan_training({**given, "model": str(name)})
    if isinstance(model, (str, Path)):
        yolo = load_model(plan.model)
    else:
        yolo = copy.deepcopy(model)
        yolo.callbacks = callbacks.get_default_callbacks()
        yolo.__dict__.pop("train", None)
    options = dict(plan.options)
    attach(yolo, options.pop("optimizer"), **options)
    yolo.add_callback("on_train_batch_end", stop.on_train_batch_end)
    yolo.train(**{**plan.ultralytics, "project": str(tmp), "name": "run", "exist_ok": True})
    return Path(yolo.trainer.save_dir)


def _epochs(data: Any, batch: int, steps: int) -> int:
    """Epochs that hold ``steps`` batches of ``batch`` images (Ultralytics keeps a short last batch)."""
    from yolo_gd.datasets.check import check_dataset, resolve_data

    images = check_dataset(resolve_data(data)).splits["train"].images
    return math.ceil(steps / math.ceil(images / batch))


def lr_find(model: Any = "yolo11n.yaml", data: Any = "shapes", optimizer: Any = None, *, lr_min: float = DEFAULT_LR_MIN,
            lr_max: float = DEFAULT_LR_MAX, steps: int = DEFAULT_STEPS, out: Any = None, batch: int = 16,
            **kwargs) -> LrFindResult:
    """Run the LR range test of ``optimizer`` on a copy of ``model`` trained on ``data``'s train split.

    The LR rises exponentially from ``lr_min`` (step 0) to ``lr_max`` (step ``steps - 1``); the test stops early
    when the smoothed loss exceeds 4x its minimum. Other keys (``imgsz``, ``clip``, ``momentum``, ``device`` ...)
    go to the training as in :func:`yolo_gd.train`. Writes ``out`` (default ``runs/lrfind/<optimizer>``):
    ``lrfind.csv``, ``lrfind.png``, ``steps.parquet`` (the step table) and ``suggestion.json``.
    """
    from yolo_gd.datasets.check import resolve_data
    from yolo_gd.lrfind.output import write_outputs
    from yolo_gd.telemetry.sinks import read_steps

    check_optimizer(optimizer)
    _check_keys(kwargs, steps, lr_min, lr_max)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise UserError(f"lrfind batch={batch}: give a whole number of images >= 1 (auto batch sizes change the "
                        f"steps per epoch)", key="batch")
    out = Path(out) if out is not None else Path.cwd() / "runs" / "lrfind" / str(optimizer).replace(":", "_")
    data_yaml = resolve_data(data)
    before = _caches(data_yaml)
    given = {**kwargs, "data": data, "optimizer": optimizer, "batch": batch, "nbs": batch, "lr": lr_min,
             "schedule": LrRamp(float(lr_min), float(lr_max), steps), "warmup": 0,
             "epochs": _epochs(data, batch, steps), "val": False, "plots": False, "telemetry": "basic"}
    stop = RangeStop(steps)
    tmp = Path(tempfile.mkdtemp(prefix="yolo_gd_lrfind_"))
    t0 = time.perf_counter()
    try:
        table = read_steps(_train_copy(model, given, stop, tmp), latest_only=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for path in _caches(data_yaml) - before:
            path.unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    table = table[table["step"] < steps]  # a step after the stop flag (none expected) is not part of the ramp
    suggestion, csv, plot = write_outputs(table, out, str(optimizer), seconds, stop.diverged)
    return LrFindResult(out, suggestion, len(table), stop.diverged, seconds, csv, plot)

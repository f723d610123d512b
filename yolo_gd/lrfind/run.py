"""``lr_find(...)``: the range test as a short injected training of a copy of the model.

The ramp (:class:`~yolo_gd.lrfind.rangetest.LrRamp`) is the schedule, with base LR ``lr_min`` and warmup off (the
LR warmup and Ultralytics' accumulation ramp: ``warmup_epochs=0``, so every optimizer step accumulates
``round(nbs / batch)`` batches from the first, as a trial does after its warmup). It trains under the trials'
conditions: the same ``batch`` and ``nbs``, mosaic as in a trial's first epoch (``mosaic=``), the caller's
``device`` and ``fraction``. The clip stays as configured.

The signal the decision uses (:class:`RangeMonitor`): by default the loss on a fixed probe set of training images
(no augmentation; :mod:`yolo_gd.inject.probe`) every ``probe_every`` optimizer steps; with ``probe=0`` the training
loss averaged over each step's batches. The stop rule (:class:`~yolo_gd.lrfind.rangetest.StopRule`) and the
confidence rule (:func:`~yolo_gd.lrfind.rangetest.assess`) read that signal; the step table is the record of the
training loss. The training runs in a temporary folder that is deleted; label caches Ultralytics writes next to
the data are removed again; a ``YOLO`` object given as the model is deep-copied, so neither it nor its files change.
"""

from __future__ import annotations

import copy
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolo_gd.errors import UserError
from yolo_gd.lrfind.rangetest import BETA, DIVERGE_FACTOR, PROBE_BETA, LrRamp, StopRule, Verdict

__all__ = ["LrFindResult", "RangeMonitor", "lr_find", "DEFAULT_STEPS", "DEFAULT_LR_MIN", "DEFAULT_LR_MAX",
           "DEFAULT_PROBE", "DEFAULT_PROBE_EVERY"]

#: Lightning's default number of steps (fastai's too): enough for ~17 points per decade over 6 decades.
DEFAULT_STEPS = 100
#: The cap on steps: the test must stay a small fraction of a training (the issue: a few hundred at most).
MAX_STEPS = 500
#: Lightning's range is 1e-8..1, fastai's 1e-7..10; 1e-6..1 covers every registry optimizer's default (Lion 1e-4
#: .. sfsgd 0.1) with two decades of margin below and the divergence stop above.
DEFAULT_LR_MIN, DEFAULT_LR_MAX = 1e-6, 1.0
#: Probe images and how often (optimizer steps) their loss is taken: chosen from bench/results/lrfind_signal_cpu.md.
DEFAULT_PROBE, DEFAULT_PROBE_EVERY = 32, 1
#: Optimizers that adapt their own step size and take ``lr`` as a multiplier near 1: ramping it measures nothing
#: a user would set (Prodigy, D-Adaptation, DoG, Mechanic).
LR_FREE = frozenset({"prodigy", "dadaptadam", "dadaptsgd", "dadaptadagrad", "dadaptlion", "dadaptadan", "dog",
                     "ldog", "pdog", "mechanic"})
#: Keys the range test sets itself (the ramp is the schedule and the LR; no warmup; mosaic from ``mosaic=``).
OWN_KEYS = ("schedule", "schedule_kwargs", "lr", "lr0", "warmup", "warmup_epochs", "epochs", "time", "resume",
            "close_mosaic")


@dataclass(frozen=True)
class LrFindResult:
    out: Path
    suggestion: Verdict
    steps: int  # optimizer steps run
    stopped_early: bool  # the divergence stop ended the test before ``steps``
    seconds: float
    csv: Path
    plot: Path | None
    conditions: dict = field(default_factory=dict)  # what the test actually ran with (see lr_find)

    def summary(self) -> str:
        others = ", ".join(f"{k} {v:.3g}" if v is not None else f"{k} -" for k, v in self.suggestion.others.items())
        stop = "stopped at divergence" if self.stopped_early else "ran the full ramp"
        lr = self.suggestion.text() if self.suggestion.lr is None else f"suggested lr {self.suggestion.text()}"
        return (f"yolo-gd lrfind: {lr}; other rules: {others or '-'}; {self.steps} steps, {stop}, "
                f"{self.seconds:.0f} s\n  conditions: {conditions_text(self.conditions)}\n  csv: {self.csv}\n"
                f"  plot: {self.plot}")


def conditions_text(c: dict) -> str:
    """One line: the ramp, the steps and the training conditions a test ran with."""
    if not c:
        return "-"
    mosaic = "mosaic on (as a trial's first epoch)" if c.get("mosaic") else "mosaic closed (as in the trial)"
    return (f"LR {c['lr_min']:.3g} to {c['lr_max']:.3g} over {c['steps_planned']} optimizer steps "
            f"({c.get('steps_run', '-')} run); batch {c['batch']}, nbs {c['nbs']} (accumulate {c['accumulate']}); "
            f"{mosaic}; imgsz {c.get('imgsz', '-')}; fraction {c.get('fraction', 1.0)}; device {c.get('device', '-')}; "
            f"signal: {c.get('signal', '-')}")


def _loss_sum(items) -> float:
    """The sum of the loss parts (the step table's ``loss_sum``): a dict of tensors (8.4) or one tensor."""
    values = items.values() if isinstance(items, dict) else [items]
    return float(sum(float(v.detach().float().sum()) for v in values))


class RangeMonitor:
    """The test's callbacks: builds the probe set at ``on_train_start``; at ``on_train_batch_end`` after each
    optimizer step takes the signal's next point (the probe's loss every ``every`` steps, or with ``probe=0`` the
    mean training loss of the step's batches), feeds the stop rule, and stops the host after ``steps`` steps or at
    divergence. ``points`` are ``(step, lr, value)``."""

    def __init__(self, steps: int, ramp: LrRamp, probe: int = DEFAULT_PROBE, every: int = DEFAULT_PROBE_EVERY,
                 batch: int = 16, factor: float = DIVERGE_FACTOR):
        self.steps, self.ramp, self.probe_images, self.every, self.batch = steps, ramp, probe, every, batch
        self.rule = StopRule(factor, beta=PROBE_BETA if probe else BETA)
        self.points: list[tuple[int, float, float]] = []
        self.window: list[float] = []
        self.probe, self.seen, self.diverged, self.device = None, 0, False, None

    def on_train_start(self, trainer) -> None:
        from yolo_gd.inject.host import Host
        from yolo_gd.inject.probe import ProbeSet

        host = Host(trainer)
        self.device = host.device
        if self.probe_images:
            self.probe = ProbeSet(host, self.probe_images, self.batch)

    def on_train_batch_end(self, trainer) -> None:
        from yolo_gd.inject.host import Host

        host = Host(trainer)
        self.window.append(_loss_sum(host.loss_items))
        done = host.run.counters.steps
        if done == self.seen:
            return  # accumulating: no optimizer step at this batch
        self.seen, k = done, done - 1
        value = None
        if self.probe is None:
            value = sum(self.window) / len(self.window)
        elif k % self.every == 0 or done >= self.steps:
            value = self.probe.loss(host)
        self.window = []
        if value is not None:
            self.points.append((k, self.ramp.lr(k), value))
            if self.rule.update(value):
                self.diverged = True
                host.stop_training()
        if done >= self.steps:
            host.stop_training()

    def signal(self) -> str:
        if self.probe is not None:
            return (f"loss on {self.probe.images} fixed train images (no augmentation, BN batch statistics, running "
                    f"statistics untouched) every {self.every} steps")
        return "training loss averaged over each step's batches"


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
        raise UserError(f"lrfind sets {own[0]}= itself (the LR ramps from lr_min to lr_max with no warmup; mosaic "
                        f"follows mosaic=): drop it, or use lr_min=/lr_max=/steps=/mosaic=", key=own[0])
    if not isinstance(steps, int) or isinstance(steps, bool) or not 2 <= steps <= MAX_STEPS:
        raise UserError(f"lrfind steps={steps}: give an integer in [2, {MAX_STEPS}] (default {DEFAULT_STEPS})",
                        key="steps")
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lr_min, lr_max))
    if not ok or not (0 < lr_min < lr_max < math.inf):
        raise UserError(f"lrfind lr_min={lr_min} lr_max={lr_max}: need 0 < lr_min < lr_max (defaults "
                        f"{DEFAULT_LR_MIN:g}, {DEFAULT_LR_MAX:g})", key="lr_min")


def _caches(data_yaml: Path) -> set[Path]:
    return set(data_yaml.parent.rglob("*.cache"))


def _train_copy(model: Any, given: dict, monitor: RangeMonitor, tmp: Path) -> Path:
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
    yolo.add_callback("on_train_start", monitor.on_train_start)
    yolo.add_callback("on_train_batch_end", monitor.on_train_batch_end)
    yolo.train(**{**plan.ultralytics, "project": str(tmp), "name": "run", "exist_ok": True})
    return Path(yolo.trainer.save_dir)


def _train_images(data: Any, fraction: Any) -> int:
    """Train images the trainer will use: the split's, cut by ``fraction`` as Ultralytics cuts it (a ratio or an
    image count)."""
    from ultralytics.data.utils import get_split_fraction

    from yolo_gd.datasets.check import check_dataset, resolve_data

    images = check_dataset(resolve_data(data)).splits["train"].images
    f = get_split_fraction(fraction, "train")
    count = f if isinstance(f, int) else max(1, round(images * f))
    return min(count, images)


def _epochs(images: int, batch: int, batches: int) -> int:
    """Epochs that hold ``batches`` batches of ``batch`` images (Ultralytics keeps a short last batch)."""
    return math.ceil(batches / math.ceil(images / batch))


def _ultralytics_nbs() -> int:
    """Ultralytics' default nominal batch size (64): what ``yolo-gd train`` accumulates to when nbs= is not given."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return int(DEFAULT_CFG_DICT["nbs"])


def _check_run(batch: Any, nbs: Any, probe: Any, probe_every: Any, mosaic: Any) -> None:
    whole = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    if not whole(batch) or batch < 1:
        raise UserError(f"lrfind batch={batch}: give a whole number of images >= 1 (auto batch sizes change the "
                        f"steps per epoch)", key="batch")
    if not whole(nbs) or nbs < 1:
        raise UserError(f"lrfind nbs={nbs}: give the nominal batch size you train with, a whole number >= 1 "
                        f"(default: Ultralytics' 64)", key="nbs")
    if not whole(probe) or probe < 0:
        raise UserError(f"lrfind probe={probe}: give the number of fixed train images whose loss is the signal "
                        f"(default {DEFAULT_PROBE}), or 0 for the training loss", key="probe")
    if not whole(probe_every) or probe_every < 1:
        raise UserError(f"lrfind probe_every={probe_every}: give a whole number of steps >= 1 (default "
                        f"{DEFAULT_PROBE_EVERY})", key="probe_every")
    if not isinstance(mosaic, bool):
        raise UserError(f"lrfind mosaic={mosaic}: give true (as a trial's first epoch) or false (as a trial whose "
                        f"close_mosaic covers all its epochs)", key="mosaic")


def lr_find(model: Any = "yolo11n.yaml", data: Any = "shapes", optimizer: Any = None, *, lr_min: float = DEFAULT_LR_MIN,
            lr_max: float = DEFAULT_LR_MAX, steps: int = DEFAULT_STEPS, out: Any = None, batch: int = 16,
            nbs: int | None = None, mosaic: bool = True, probe: int = DEFAULT_PROBE,
            probe_every: int = DEFAULT_PROBE_EVERY, **kwargs) -> LrFindResult:
    """Run the LR range test of ``optimizer`` on a copy of ``model`` trained on ``data``'s train split.

    The LR rises exponentially from ``lr_min`` (step 0) to ``lr_max`` (step ``steps - 1``), one optimizer step per
    ``round(nbs / batch)`` batches (``nbs`` default: Ultralytics' 64, as ``yolo-gd train`` with the same keys would
    accumulate; pass the nbs you train with), with mosaic on (``mosaic=False``: closed, as in a
    trial whose ``close_mosaic`` covers all its epochs). The signal is the loss on ``probe`` fixed train images
    every ``probe_every`` steps (``probe=0``: the training loss); the test stops when its smoothed value stays above
    4x its reference, and suggests an LR only when the signal clearly fell (:func:`~yolo_gd.lrfind.rangetest.assess`).
    Other keys (``imgsz``, ``clip``, ``momentum``, ``device``, ``fraction`` ...) go to the training as in
    :func:`yolo_gd.train`. Writes ``out`` (default ``runs/lrfind/<optimizer>``): ``lrfind.csv``, ``lrfind.png``,
    ``steps.parquet`` (the step table) and ``suggestion.json``.
    """
    from yolo_gd.datasets.check import resolve_data
    from yolo_gd.lrfind.output import write_outputs
    from yolo_gd.telemetry.sinks import read_steps

    check_optimizer(optimizer)
    _check_keys(kwargs, steps, lr_min, lr_max)
    nbs = _ultralytics_nbs() if nbs is None else nbs
    _check_run(batch, nbs, probe, probe_every, mosaic)
    out = Path(out) if out is not None else Path.cwd() / "runs" / "lrfind" / str(optimizer).replace(":", "_")
    data_yaml = resolve_data(data)
    before = _caches(data_yaml)
    accumulate = max(round(nbs / batch), 1)
    epochs = _epochs(_train_images(data, kwargs.get("fraction", 1.0)), batch, steps * accumulate)
    ramp = LrRamp(float(lr_min), float(lr_max), steps)
    given = {**kwargs, "data": data, "optimizer": optimizer, "batch": batch, "nbs": nbs, "lr": lr_min,
             "schedule": ramp, "warmup": 0, "warmup_epochs": 0, "epochs": epochs,
             "close_mosaic": 0 if mosaic else epochs, "val": False, "plots": False, "telemetry": "basic"}
    monitor = RangeMonitor(steps, ramp, probe, probe_every, batch)
    tmp = Path(tempfile.mkdtemp(prefix="yolo_gd_lrfind_"))
    t0 = time.perf_counter()
    try:
        table = read_steps(_train_copy(model, given, monitor, tmp), latest_only=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for path in _caches(data_yaml) - before:
            path.unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    table = table[table["step"] < steps]  # a step after the stop flag (none expected) is not part of the ramp
    conditions = {"lr_min": float(lr_min), "lr_max": float(lr_max), "steps_planned": steps, "steps_run": len(table),
                  "batch": batch, "nbs": nbs, "accumulate": accumulate, "mosaic": mosaic,
                  "imgsz": kwargs.get("imgsz", 640), "fraction": kwargs.get("fraction", 1.0),
                  "device": monitor.device, "signal": monitor.signal(), "probe": probe, "probe_every": probe_every,
                  "points_planned": math.ceil(steps / probe_every) if probe else steps}
    verdict, csv, plot = write_outputs(table, monitor.points, out, str(optimizer), seconds, monitor.diverged,
                                       conditions)
    return LrFindResult(out, verdict, len(table), monitor.diverged, seconds, csv, plot, conditions)

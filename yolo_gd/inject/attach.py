"""``attach(model, ...)``: compose yolo_gd's callbacks on a plain ``ultralytics.YOLO`` object.

An attached run is a few callbacks, one concern each, registered in this order (which is also the order they run
in for each event):

1. the step: :class:`~yolo_gd.inject.takeover.OptimizerTakeover` (an optimizer was named) or
   :class:`~yolo_gd.inject.observe.ObservedStep` (observe-only, when telemetry is on);
2. :class:`~yolo_gd.inject.resume.ResumeState` (injected runs): state saved per epoch, resume, NaN recovery; for
   observe-only runs with ``exact_resume=True`` its subclass :class:`~yolo_gd.inject.exact_resume.ObservedResume`;
3. :class:`~yolo_gd.inject.unfreeze.UnfreezeSchedule` (``unfreeze=`` given): frozen parameters join on schedule;
4. :class:`~yolo_gd.inject.schedule_free.ScheduleFreeSwap` (optimizers with ``train()``/``eval()``), and
   :class:`~yolo_gd.inject.sam.SharpnessAware` (``optimizer=sam|asam|gsam``): the batch for the second pass;
5. :class:`~yolo_gd.inject.ema.EmaControl` (injected runs always; observe-only with ``ema=false``, ``ema_decay`` or
   ``ema_tau``);
6. :class:`~yolo_gd.inject.telemetry.TelemetryLifecycle` (unless ``telemetry='off'``);
7. :class:`~yolo_gd.inject.trackers.TrackerBridge` (with telemetry): the per-step series into the MLflow / W&B
   runs Ultralytics' integrations opened (``mlflow_steps`` / ``wandb_steps`` / ``comet_steps`` / ``clearml_steps``), W&B offline when it has no key;
8. :class:`~yolo_gd.inject.tracker_rng.TrackerRngGuard`: Ultralytics' tracker integrations (Comet draws from
   Python's ``random``) never change the training's random draws;
9. :class:`~yolo_gd.inject.checkpoints.AtomicCheckpoints`: ``last.pt``/``best.pt``/``epochN.pt`` written atomically;
10. :class:`~yolo_gd.inject.record.RunStarts`: each (re)start's epoch in ``yolo_gd_run.yaml`` (for time to target).

They share an :class:`~yolo_gd.inject.run.Attachment` (the config and the Ultralytics keys the user gave) and,
per trainer instance, a :class:`~yolo_gd.inject.run.RunState`; all of them read and write the trainer only
through :class:`~yolo_gd.inject.host.Host`. They hold only plain settings, so Ultralytics can cloudpickle them
into DDP workers, and per-run state lives on the trainer, so two runs in one process never share it.

``attach`` also records which keys the next ``model.train(...)`` call is given (``model.train`` is wrapped on
this one object; nothing in Ultralytics is patched): that is how ``optimizer=adamw lr0=0.01`` trains at 0.01
even though 0.01 is Ultralytics' default ``lr0``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolo_gd.errors import UserError
from yolo_gd.inject.checkpoints import AtomicCheckpoints
from yolo_gd.inject.config import UNSET, InjectConfig
from yolo_gd.inject.ema import EmaControl
from yolo_gd.inject.exact_resume import ObservedResume
from yolo_gd.inject.observe import ObservedStep
from yolo_gd.inject.record import RunStarts
from yolo_gd.inject.resume import ResumeState
from yolo_gd.inject.run import Attachment
from yolo_gd.inject.sam import SharpnessAware
from yolo_gd.inject.schedule_free import ScheduleFreeSwap
from yolo_gd.inject.takeover import OptimizerTakeover
from yolo_gd.inject.telemetry import TelemetryLifecycle
from yolo_gd.inject.tracker_rng import TrackerRngGuard
from yolo_gd.inject.trackers import TrackerBridge
from yolo_gd.inject.unfreeze import UnfreezeSchedule
from yolo_gd.optim.groups import parse_rules
from yolo_gd.optim.registry import resolve_optimizer
from yolo_gd.optim.schedule_registry import get_schedule

_EVENTS = (
    "on_pretrain_routine_start",
    "on_pretrain_routine_end",
    "on_train_start",
    "on_train_epoch_start",
    "on_train_batch_start",
    "on_train_epoch_end",
    "on_fit_epoch_end",
    "on_train_end",
    "teardown",
)
_PARTS = (OptimizerTakeover, ObservedStep, ResumeState, UnfreezeSchedule, ScheduleFreeSwap, EmaControl,
          TelemetryLifecycle, SharpnessAware, TrackerBridge, TrackerRngGuard, AtomicCheckpoints, RunStarts)


@dataclass
class Injection:
    """What one ``attach`` call registered: its shared attachment and its callback objects."""

    attachment: Attachment
    parts: list = field(default_factory=list)

    @property
    def cfg(self) -> InjectConfig:
        return self.attachment.cfg


def compose(attachment: Attachment) -> list:
    """The callback objects for ``attachment.cfg``, in registration order."""
    cfg = attachment.cfg
    if cfg.observe_only:
        parts = [] if cfg.telemetry == "off" else [ObservedStep()]
        if cfg.exact_resume:
            parts.append(ObservedResume())
    else:
        parts = [OptimizerTakeover(attachment), ResumeState(cfg)]
        if cfg.unfreeze is not None:
            parts.append(UnfreezeSchedule())
        if resolve_optimizer(cfg.optimizer_to_build).has_train_eval_mode:
            parts.append(ScheduleFreeSwap())
        if cfg.sam is not None:
            parts.append(SharpnessAware())
    if not cfg.observe_only or not cfg.ema or cfg.ema_decay is not None or cfg.ema_tau is not None:
        parts.append(EmaControl(cfg.ema, cfg.ema_decay, cfg.ema_tau))
    if cfg.telemetry != "off":
        parts.append(TelemetryLifecycle(cfg.telemetry, cfg.telemetry_every))
        parts.append(TrackerBridge(cfg.mlflow_steps, cfg.wandb_steps, cfg.given_options(), comet=cfg.comet_steps,
                                   clearml=cfg.clearml_steps))
    parts += [TrackerRngGuard(), AtomicCheckpoints(), RunStarts()]
    return parts


def attach(model, optimizer: Any = None, *, schedule: Any = None, clip: Any = UNSET, **options) -> Injection:
    """Register yolo_gd's callbacks on ``model`` (an ``ultralytics.YOLO``); a following ``model.train()`` uses them.

    Args:
        model: a plain ``ultralytics.YOLO`` object.
        optimizer: registry name (``'sgd'``, ``'adamw'``, ``'lion'``...), ``'package.module:Class'``, an optimizer
            class, or a callable ``params -> Optimizer``. None: observe-only (Ultralytics keeps its own).
        schedule: schedule name (``'cosine'``, ``'wsd'``...), callable ``progress -> multiplier``, or a
            ``torch.optim.lr_scheduler`` class. None: Ultralytics' own (``lrf``, ``cos_lr``, warmup).
        clip: max gradient norm (Ultralytics' 10.0 when not given), or None for no clipping.
        **options: any other :class:`InjectConfig` field (``lr``, ``momentum``, ``weight_decay``, ``warmup``,
            ``groups``, ``telemetry``...).

    Returns:
        The :class:`Injection` registered (``detach(model)`` removes it).
    """
    unknown = set(options) - set(InjectConfig.__dataclass_fields__)
    if unknown:
        from yolo_gd.errors import unknown_name

        raise unknown_name("attach option", sorted(unknown)[0], InjectConfig.__dataclass_fields__)
    cfg = InjectConfig(optimizer=optimizer, schedule=schedule, clip=clip, **options)
    if not cfg.observe_only:  # fail on bad names now, not minutes into training
        resolve_optimizer(cfg.optimizer_to_build)
        if cfg.schedule is not None:
            get_schedule(cfg.schedule, **cfg.schedule_kwargs)
        if cfg.groups:
            parse_rules(cfg.groups)
    if find_injection(model) is not None:
        raise UserError("this model already has yolo_gd attached: call yolo_gd.inject.attach.detach(model) first")
    injection = Injection(Attachment(cfg), [])
    injection.parts = compose(injection.attachment)
    for part in injection.parts:
        part.injection = injection
        for event in _EVENTS:
            if hasattr(part, event):
                model.add_callback(event, getattr(part, event))
    model.train = functools.partial(_train_recording_keys, type(model).train.__get__(model), model,
                                    injection.attachment)
    return injection


def _train_recording_keys(train, model, attachment: Attachment, *args, **kwargs):
    """``model.train`` of an attached model: note which Ultralytics keys were given, then train.

    ``resume=True epochs=N`` on an injected run resumes from a copy of the checkpoint planned for N epochs
    (inject/extend.py), because Ultralytics ignores ``epochs`` on resume."""
    if kwargs.get("resume") and "epochs" in kwargs and not attachment.cfg.observe_only:
        from yolo_gd.inject.extend import prepare_extension

        source = kwargs["resume"] if isinstance(kwargs["resume"], (str, Path)) else model.ckpt_path
        kwargs["resume"] = str(prepare_extension(source, kwargs.pop("epochs")))
    given = set(kwargs)
    if kwargs.get("cfg"):  # keys from a cfg= file count as given
        from ultralytics.utils import YAML

        given |= set(YAML.load(kwargs["cfg"]) or {})
    attachment.ul_given = frozenset(given)
    return train(*args, **kwargs)


def find_injection(model) -> Injection | None:
    for funcs in model.callbacks.values():
        for f in funcs:
            if isinstance(getattr(f, "__self__", None), _PARTS):
                return f.__self__.injection
    return None


def detach(model) -> None:
    """Remove every yolo_gd callback from ``model`` (and the key recording of its ``train``)."""
    for event, funcs in model.callbacks.items():
        model.callbacks[event] = [f for f in funcs if not isinstance(getattr(f, "__self__", None), _PARTS)]
    model.__dict__.pop("train", None)

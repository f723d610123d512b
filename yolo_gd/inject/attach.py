"""``attach(model, ...)``: register yolo_gd's callbacks on a plain ``ultralytics.YOLO`` object.

This is the only module that knows the trainer's attributes. What happens, in host order (``engine/trainer.py``):

- ``on_pretrain_routine_start`` (rank -1/0): replace THIS trainer's ``build_optimizer`` with ours, so the host never
  builds its own optimizer and its resume loader loads the checkpoint into the optimizer that wrote it.
- ``on_pretrain_routine_end`` (every rank): build ours if the host built one (DDP ranks >= 1), restore fp32 state
  and step counters on resume, then take over the step: ``optimizer_step`` -> :func:`owned_step`, the host's
  warmup -> 0 batches (we apply it), its per-epoch scheduler -> a no-op holder.
- per epoch / batch: count the global batch index (the host keeps it in a local) and keep ``accumulate`` at 1,
  so the host calls our step on every batch and the cadence decides.
- ``on_model_save`` (rank 0): write the fp32 state beside ``last.pt``.

The callbacks are bound methods of a small picklable object holding only the config: Ultralytics cloudpickles
callbacks into DDP workers. Per-run state lives on the trainer instance, so two runs in one process never share it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from yolo_gd.errors import UserError
from yolo_gd.inject.config import UNSET, InjectConfig
from yolo_gd.inject.resolve import Resolved, TrainerFacts, resolve
from yolo_gd.inject.state import STATE_NAME, StepCounters, load_state, save_state, state_path
from yolo_gd.inject.step import RunState, observed_step, owned_step
from yolo_gd.optim.progress import Cadence
from yolo_gd.optim.groups import build_param_groups, format_groups, describe_groups, parse_rules
from yolo_gd.optim.registry import build_optimizer, resolve_optimizer
from yolo_gd.optim.schedule_registry import get_schedule

_EVENTS = (
    "on_pretrain_routine_start",
    "on_pretrain_routine_end",
    "on_train_epoch_start",
    "on_train_batch_start",
    "on_train_epoch_end",
    "on_model_save",
    "on_fit_epoch_end",
    "on_train_end",
    "teardown",
)


class _HeldScheduler:
    """Stands in for the host's per-epoch LambdaLR: yolo_gd sets the LR at every step, the host may not."""

    def __init__(self, last_epoch: int = -1):
        self.last_epoch = last_epoch

    def step(self) -> None:
        self.last_epoch += 1


def _no_host_warmup(num_batches: int) -> int:
    return 0  # the host's warmup would overwrite LR, momentum and accumulate: yolo_gd applies its own


class Injection:
    """The callbacks of one ``attach`` call (picklable: holds the config only)."""

    def __init__(self, cfg: InjectConfig):
        self.cfg = cfg

    # -- setup ---------------------------------------------------------------------------------------------------
    def on_pretrain_routine_start(self, trainer) -> None:
        if not self.cfg.observe_only:
            trainer.build_optimizer = functools.partial(self._build_for_host, trainer)

    def _build_for_host(self, trainer, model=None, name=None, lr=None, momentum=None, decay=None, iterations=None):
        """Called by the host's ``_build_train_pipeline`` in place of its own ``build_optimizer``."""
        if trainer.resume:
            # Refuse a changed optimizer/schedule BEFORE the host loads the checkpoint into this optimizer.
            load_state(state_path(trainer.args.resume), epoch=None, fingerprint=self.cfg.fingerprint(),
                       allow_change=self.cfg.allow_resume_change)
        return self._build(trainer)

    def _build(self, trainer):
        from ultralytics.utils.torch_utils import unwrap_model

        resolved = resolve(self.cfg, _facts(trainer))
        model = unwrap_model(trainer.model)
        groups = build_param_groups(
            model,
            lr=resolved.hparams["lr"],
            weight_decay=resolved.weight_decay,
            rules=parse_rules(self.cfg.groups) if self.cfg.groups else (),
            muon=resolved.info.muon_groups,
        )
        hparams = {k: v for k, v in resolved.hparams.items() if k != "lr"}
        optimizer = build_optimizer(resolved.info, groups, device_type=trainer.device.type, **hparams)
        trainer._yolo_gd_resolved = resolved
        trainer._yolo_gd_optimizer = optimizer
        return optimizer

    def on_pretrain_routine_end(self, trainer) -> None:
        if self.cfg.observe_only:
            self._observe(trainer)
            return
        from ultralytics.utils import RANK

        optimizer = getattr(trainer, "_yolo_gd_optimizer", None)
        if optimizer is None or trainer.optimizer is not optimizer:  # DDP rank >= 1 built the host's own
            optimizer = self._build(trainer)
            trainer.optimizer = optimizer
        resolved: Resolved = trainer._yolo_gd_resolved
        counters = StepCounters()
        if trainer.resume and trainer.start_epoch > 0:
            state = load_state(state_path(trainer.args.resume), epoch=trainer.start_epoch - 1,
                               fingerprint=self.cfg.fingerprint(), allow_change=self.cfg.allow_resume_change)
            optimizer.load_state_dict(state["optimizer"])  # fp32, over the host's fp16 copy
            counters = StepCounters(state["steps"], state["last_step_batch"])
        if resolved.info.has_train_eval_mode:
            optimizer.train()  # schedule-free optimizers refuse to step in eval mode
        run = RunState(resolved.plan, resolved.cadence, resolved.clip, counters,
                       train_eval_mode=resolved.info.has_train_eval_mode)
        run.batches_per_epoch = resolved.cadence.batches_per_epoch
        run.recorder = self._recorder(trainer, counters.steps)
        trainer._yolo_gd = run
        trainer.optimizer_step = functools.partial(owned_step, trainer, run)
        trainer._get_warmup_iterations = _no_host_warmup
        trainer.scheduler = _HeldScheduler(trainer.start_epoch - 1)
        trainer._handle_nan_recovery = functools.partial(_after_nan_recovery, trainer._handle_nan_recovery, trainer,
                                                         self.cfg)
        if RANK in {-1, 0}:
            _announce(trainer, resolved, optimizer)

    def _observe(self, trainer) -> None:
        """Observe-only: Ultralytics keeps its optimizer, warmup, schedule, clip and cadence; we only record."""
        if self.cfg.telemetry == "off":
            return
        facts = _facts(trainer)
        cadence = Cadence(facts.batches_per_epoch, facts.epochs, facts.accumulate, facts.warmup_batches)
        counters = StepCounters(steps=trainer.ema.updates if trainer.ema else 0)  # resumed runs carry the count
        run = RunState(None, cadence, 10.0, counters, recorder=self._recorder(trainer, counters.steps))
        run.batches_per_epoch = facts.batches_per_epoch
        trainer._yolo_gd = run
        trainer.optimizer_step = functools.partial(observed_step, trainer, run)
        from ultralytics.utils import RANK, YAML

        if RANK in {-1, 0}:  # record what Ultralytics chose (optimizer=auto picks AdamW or MuSGD and its LR)
            YAML.save(trainer.save_dir / "yolo_gd_run.yaml", {
                "observe_only": {"optimizer": type(trainer.optimizer).__name__, "optimizer_steps": cadence.total_steps,
                                 "groups": _plain(describe_groups(trainer.optimizer.param_groups))},
                "versions": _versions()})
        trainer._handle_nan_recovery = functools.partial(_after_nan_recovery, trainer._handle_nan_recovery, trainer,
                                                         self.cfg)

    def _recorder(self, trainer, resumed_steps: int):
        from ultralytics.utils import RANK

        from yolo_gd.telemetry.recorder import StepRecorder

        if self.cfg.telemetry == "off" or RANK not in {-1, 0}:
            return None  # under DDP rank 0 records; its norms are taken after the gradient all-reduce
        recorder = StepRecorder(Path(trainer.save_dir) / "telemetry", level=self.cfg.telemetry,
                                flush_every=self.cfg.telemetry_every, rank=RANK)
        if trainer.resume:
            recorder.truncate_after(resumed_steps)  # rows past the checkpoint are replayed by the resumed run
        return recorder

    # -- per epoch / batch ---------------------------------------------------------------------------------------
    def on_train_epoch_start(self, trainer) -> None:
        run = getattr(trainer, "_yolo_gd", None)
        if run is not None:
            run.batch_in_epoch = -1
            run.batches_per_epoch = len(trainer.train_loader)

    def on_train_batch_start(self, trainer) -> None:
        run = getattr(trainer, "_yolo_gd", None)
        if run is not None:
            run.batch_in_epoch += 1
            run.batch = trainer.epoch * run.batches_per_epoch + run.batch_in_epoch
            if run.plan is not None:
                trainer.accumulate = 1  # the host then calls our step on every batch; the cadence decides

    def on_train_epoch_end(self, trainer) -> None:
        run = getattr(trainer, "_yolo_gd", None)
        if run is not None and run.recorder is not None:
            run.recorder.epoch_end(trainer)  # one device->host copy, epochs.csv row (results.csv is untouched)
        if run is not None and run.train_eval_mode:
            # Schedule-free: validation reads trainer.ema.ema and save_model stores it, so the evaluation weights
            # (optimizer.eval()) are put into the EMA slot until on_fit_epoch_end switches back to train().
            from ultralytics.utils.torch_utils import unwrap_model

            trainer.optimizer.eval()
            if trainer.ema:
                trainer.ema.ema.load_state_dict(unwrap_model(trainer.model).state_dict())

    def on_model_save(self, trainer) -> None:
        run = getattr(trainer, "_yolo_gd", None)
        if run is not None and run.plan is not None:
            save_state(trainer.wdir / STATE_NAME, epoch=trainer.epoch, counters=run.counters,
                       optimizer=trainer.optimizer, fingerprint=self.cfg.fingerprint())

    def on_fit_epoch_end(self, trainer) -> None:
        run = getattr(trainer, "_yolo_gd", None)
        if run is not None and run.train_eval_mode:
            trainer.optimizer.train()

    def on_train_end(self, trainer) -> None:
        run = getattr(trainer, "_yolo_gd", None)
        if run is not None and run.recorder is not None:
            run.recorder.close()
            if trainer.args.plots:  # beside Ultralytics' own plots, when it makes them
                from yolo_gd.telemetry.plots import plot_run

                plot_run(trainer.save_dir)

    def teardown(self, trainer) -> None:
        run = getattr(trainer, "_yolo_gd", None)
        if run is not None and run.recorder is not None:
            run.recorder.close()


def _after_nan_recovery(original, trainer, cfg: InjectConfig, epoch: int) -> bool:
    """The host reloads last.pt on NaN/Inf (fp16 optimizer state, EMA update count): follow it."""
    recovered = original(epoch)
    run = getattr(trainer, "_yolo_gd", None)
    if recovered and run is not None:
        if run.plan is None:  # observe-only: the host's own optimizer and counters came back
            run.counters.steps = trainer.ema.updates
        else:  # injected: put back our fp32 state and counters
            state = load_state(trainer.wdir / STATE_NAME, epoch=None, fingerprint=cfg.fingerprint(), allow_change=True)
            trainer.optimizer.load_state_dict(state["optimizer"])
            run.counters.steps, run.counters.last_step_batch = state["steps"], state["last_step_batch"]
        if run.recorder is not None:
            run.recorder.new_attempt()  # the thrown-away epoch's rows stay, marked by their attempt number
    return recovered


def _facts(trainer) -> TrainerFacts:
    from ultralytics.cfg import DEFAULT_CFG_DICT

    nb = len(trainer.train_loader)
    nominal = max(round(trainer.args.nbs / trainer.batch_size), 1)
    accumulate = nominal if trainer.args.time else min(nominal, nb * trainer.epochs)
    return TrainerFacts(
        args=vars(trainer.args),
        defaults=DEFAULT_CFG_DICT,
        batch_size=trainer.batch_size,
        batches_per_epoch=nb,
        epochs=trainer.epochs,
        warmup_batches=type(trainer)._get_warmup_iterations(trainer, nb),  # the host's own rule, unpatched
        accumulate=accumulate,
        device_type=trainer.device.type,
    )


def _announce(trainer, resolved: Resolved, optimizer) -> None:
    from ultralytics.utils import LOGGER, YAML

    LOGGER.info(f"yolo_gd: injected {resolved.info.name} ({type(optimizer).__name__}), "
                f"{resolved.cadence.total_steps} optimizer steps, clip={resolved.clip}")
    LOGGER.info(format_groups(describe_groups(optimizer.param_groups)))
    YAML.save(trainer.save_dir / "yolo_gd_run.yaml", {
        "injected": resolved.summary(), "groups": _plain(describe_groups(optimizer.param_groups)),
        "versions": _versions()})


def _plain(rows: list[dict]) -> list[dict]:
    """YAML-safe copies of describe_groups rows (tuples -> lists, numpy/torch scalars -> float)."""
    out = []
    for row in rows:
        out.append({k: list(v) if isinstance(v, tuple) else (v if isinstance(v, (str, int, float, type(None)))
                                                              else float(v)) for k, v in row.items()})
    return out


def _versions() -> dict:
    import platform

    import torch
    import ultralytics

    import yolo_gd

    return {"yolo_gd": yolo_gd.__version__, "ultralytics": ultralytics.__version__, "torch": str(torch.__version__),
            "python": platform.python_version()}


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
        The :class:`Injection` whose bound methods were registered (``detach`` removes them).
    """
    unknown = set(options) - set(InjectConfig.__dataclass_fields__)
    if unknown:
        from yolo_gd.errors import unknown_name

        raise unknown_name("attach option", sorted(unknown)[0], InjectConfig.__dataclass_fields__)
    cfg = InjectConfig(optimizer=optimizer, schedule=schedule, clip=clip, **options)
    if not cfg.observe_only:  # fail on bad names now, not minutes into training
        resolve_optimizer(cfg.optimizer)
        if cfg.schedule is not None:
            get_schedule(cfg.schedule, **cfg.schedule_kwargs)
        if cfg.groups:
            parse_rules(cfg.groups)
    if find_injection(model) is not None:
        raise UserError("this model already has yolo_gd attached: call yolo_gd.inject.attach.detach(model) first")
    injection = Injection(cfg)
    for event in _EVENTS:
        model.add_callback(event, getattr(injection, event))
    return injection


def find_injection(model) -> Injection | None:
    for funcs in model.callbacks.values():
        for f in funcs:
            if isinstance(getattr(f, "__self__", None), Injection):
                return f.__self__
    return None


def detach(model) -> None:
    """Remove every yolo_gd callback from ``model``."""
    for event, funcs in model.callbacks.items():
        model.callbacks[event] = [f for f in funcs if not isinstance(getattr(f, "__self__", None), Injection)]

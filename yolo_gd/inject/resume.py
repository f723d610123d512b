"""Resume state of an injected run: save it, load it, check it still describes the same run, follow NaN recovery.

- ``on_train_epoch_end`` (every rank writes nothing but rank 0): the state of this epoch (inject/state.py), BEFORE
  validation and the host's checkpoint, so any crash leaves a checkpoint with its matching state.
- ``on_pretrain_routine_end`` on resume: the state of the checkpoint's epoch comes back (fp32 optimizer state,
  raw fp32 weights, fp32 EMA and its update count, step counters), after the fingerprint check: a resume that
  would silently change the run (optimizer, its hyperparameters, schedule, warmup, clip, groups, telemetry level)
  is refused with one line naming the key, unless ``allow_resume_change=True``, which applies the change and
  records it in ``yolo_gd_run.yaml``; another optimizer class or other groups then start with fresh state.
- after the host's NaN recovery (it reloads ``last.pt``): the state of that checkpoint's epoch comes back too.

yolo_gd options not given on resume are taken from the run being resumed (the config is stored with the state),
so ``resume=True optimizer=adamw`` continues an ``adamw`` run with its LR, schedule and warmup.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import torch

from yolo_gd.errors import UserError
from yolo_gd.inject.config import UNSET, InjectConfig
from yolo_gd.inject import rng
from yolo_gd.inject.host import Host, rank
from yolo_gd.inject.record import update_record
from yolo_gd.inject.resume_keys import check_resume_settings, settings
from yolo_gd.inject.run import StepCounters
from yolo_gd.inject.state import read_state, saved_epochs, write_rng, write_state

#: Group keys a resume re-applies from the freshly resolved run over the loaded state (what allow_resume_change
#: may change); running values that some optimizers keep in their groups (schedule-free's k, weight_sum) load.
_HYPER_KEYS = ("initial_lr", "weight_decay", "momentum", "betas", "nesterov", "eps")
#: A change of these cannot reuse the old optimizer state (another class, or another group layout).
_FRESH_STATE_KEYS = ("optimizer", "groups", "lr_decay", "unfreeze")
_DEVICE_FLAGS = ("fused", "foreach", "capturable")  # picked by the runtime device, never loaded (see below)
#: Fingerprint keys a state written by an older yolo_gd lacks, with the value that yolo_gd then ran with.
_OLDER_RUNS = {"lr_decay": None, "unfreeze": None, "ema": True, "ema_decay": None, "ema_tau": None}


class ResumeState:
    """Saves and restores the injected run's own state; see the module docstring."""

    def __init__(self, cfg: InjectConfig):
        self.cfg = cfg

    def on_pretrain_routine_end(self, trainer) -> None:
        host = Host(trainer)
        run = host.run
        run.saved_epoch = host.start_epoch - 1
        if host.resume and host.start_epoch > 0:
            state = read_state(host.resume_path.parent, host.start_epoch - 1)
            self._restore(host, run, state, check=True)
            if rank() in {-1, 0}:
                _truncate_results(host.results_csv, host.start_epoch)
        if rank() in {-1, 0}:  # the plan history: each plan with the step at which it took over
            update_record(host.save_dir, {"plans": [p.plain() for p in run.plans]})
        host.wrap("_handle_nan_recovery", functools.partial(self._after_recovery, trainer))
        host.wrap("validate", functools.partial(self._after_validation, trainer))

    def _after_validation(self, trainer, result) -> None:
        """Validation draws from Python's ``random`` (the val loader): keep the random state after it, before the
        host writes the epoch's checkpoint, so a resume continues from the state the next epoch really starts with."""
        if rank() in {-1, 0}:
            host = Host(trainer)
            write_rng(host.wdir, host.epoch, _capture(host))

    def _restore(self, host: Host, run, state: dict, *, check: bool) -> None:
        if check:
            check_resume_settings(state.get("settings"), run_settings(host), unfreeze=run.cfg.unfreeze is not None,
                                  checkpoint=str(host.resume_path))
        changes = diff_fingerprints(state["fingerprint"], run.resolved.fingerprint(run.cfg)) if check else []
        if changes and not run.cfg.allow_resume_change:
            key, old, new = changes[0]
            more = f" (and {', '.join(c[0] for c in changes[1:])})" if len(changes) > 1 else ""
            raise UserError(f"resume would change '{key}' from {old!r} to {new!r}{more}: resume with the same "
                            f"value, or pass allow_resume_change=True to apply the change from here on")
        if changes and rank() in {-1, 0}:
            update_record(host.save_dir, {}, append={"resume_changes": {
                "epoch": host.start_epoch, "step": int(state["steps"]),
                "changes": [{"key": k, "old": o, "new": n} for k, o, n in changes]}})
        if not any(k in _FRESH_STATE_KEYS for k, _, _ in changes):
            load_optimizer_state(host.optimizer, state["optimizer"])
        host.bare_model.load_state_dict(state["model"])  # raw fp32 weights (the host resumes from the fp16 EMA)
        if host.ema and state.get("ema") is not None:
            host.ema.ema.load_state_dict(state["ema"])
            host.ema.updates = int(state["ema_updates"])
        run.counters = StepCounters(int(state["steps"]), int(state["last_step_batch"]))
        run.adopt_plans(state.get("plans") or [], run.counters.steps, host.start_epoch * host.batches_per_epoch)
        # Put back at the next epoch start (the host zeroes gradients and may draw random numbers before it).
        run.pending_rng = state.get("rng") if rank() in {-1, 0} else None
        run.pending_grads = state.get("grads") or None

    def _after_recovery(self, trainer, recovered: bool) -> None:
        """The host reloaded last.pt after a NaN/Inf epoch: put back the matching fp32 state too."""
        if recovered:
            host = Host(trainer)
            self._restore(host, host.run, read_state(host.wdir, host.run.saved_epoch), check=False)

    def on_train_epoch_start(self, trainer) -> None:
        """After a resume (or NaN recovery): put back the random state and an open window's gradients."""
        host = Host(trainer)
        run = host.run
        if run.pending_rng is not None:
            rng.restore(run.pending_rng, host.loader_generator, host.train_dataset)
            if not host.loader_has_iterator and not _host_makes_fresh_iterator(host):
                # The uninterrupted run kept its iterator; this one makes a new one, which draws a seed from the
                # shuffle generator first: put the state back after that (Host.after_loader_iterator).
                run.loader_state = run.pending_rng["loader"]
                host.after_loader_iterator(functools.partial(self._after_new_iterator, trainer))
        if run.pending_grads:
            params = host.trainable_parameters
            for name, grad in run.pending_grads.items():
                params[name].grad = grad.to(params[name].device)
        run.pending_rng = run.pending_grads = None

    def _after_new_iterator(self, trainer, iterator) -> None:
        """The resumed run's loader made its iterator: continue the shuffle as the kept iterator would have."""
        host = Host(trainer)
        run, g = host.run, host.loader_generator
        if run.loader_state is not None and g is not None:
            g.set_state(run.loader_state)
            n, batch, drop_last = host.loader_shape
            rng.draw_pending_tail(g, n, batch, drop_last)
        run.loader_state = None

    def on_train_epoch_end(self, trainer) -> None:
        host = Host(trainer)
        run = host.run
        if rank() in {-1, 0}:
            write_state(host.wdir, host.epoch, state_payload(host, run),
                        save_period=int(host.args.get("save_period", -1)))

    def on_fit_epoch_end(self, trainer) -> None:
        """Every rank: note which epoch ``last.pt`` now holds (rank 0 saved it; NaN recovery reloads it)."""
        host = Host(trainer)
        if host.epoch < host.epochs and (host.args.get("save", True) or host.epoch + 1 >= host.epochs):
            host.run.saved_epoch = host.epoch


def state_payload(host: Host, run) -> dict:
    """Plain data: everything the next epoch starts from that the host's checkpoint lacks or holds in fp16."""
    return {
        "steps": run.counters.steps,
        "last_step_batch": run.counters.last_step_batch,
        "optimizer": type(host.optimizer).state_dict(host.optimizer),
        "model": _cpu(host.bare_model.state_dict()),
        "ema": _cpu(host.ema.ema.state_dict()) if host.ema else None,
        "ema_updates": int(host.ema.updates) if host.ema else 0,
        "fingerprint": run.resolved.fingerprint(run.cfg),
        "config": plain_config(run.cfg),
        "ul_given": sorted(run.ul_given) if run.ul_given is not None else None,
        "plans": [p.plain() for p in run.plans],
        "rng": _capture(host),
        "grads": _open_window_grads(host, run),
        "settings": run_settings(host),
    }


def run_settings(host: Host) -> dict:
    """The Ultralytics values a resume may not change (inject/resume_keys.py), as this trainer has them."""
    args = host.args
    return settings(host.batch_size, host.batches_per_epoch, max(round(args["nbs"] / host.batch_size), 1),
                    args.get("freeze"))


def _capture(host: Host) -> dict:
    return rng.capture(host.loader_generator, getattr(host.train_dataset, "buffer", None))


def _host_makes_fresh_iterator(host: Host) -> bool:
    """Whether an uninterrupted run also makes a new loader iterator at this epoch: only where the host closes the
    mosaic (trainer.py 507-510: at the first epoch >= epochs - close_mosaic) and resets its loader."""
    close = int(host.args.get("close_mosaic") or 0)
    return close > 0 and host.epoch == max(host.epochs - close, 0)


def _open_window_grads(host: Host, run) -> dict | None:
    """Gradients accumulated since the last step when the epoch ends inside a window (they carry over)."""
    last_batch = (host.epoch + 1) * run.batches_per_epoch - 1
    if run.counters.last_step_batch >= last_batch:
        return None
    return {n: p.grad.detach().to("cpu", copy=True) for n, p in host.trainable_parameters.items()
            if p.grad is not None}


def _truncate_results(csv, start_epoch: int) -> None:
    """Drop results.csv rows of epochs the resumed run replays (a kill after the row, before the checkpoint)."""
    if not csv.exists():
        return
    header, *rows = csv.read_text().splitlines(keepends=True)
    kept = [r for r in rows if float(r.split(",", 1)[0]) <= start_epoch]  # the host's epoch column is 1-based
    if len(kept) < len(rows):
        csv.write_text("".join([header, *kept]))


def load_optimizer_state(optimizer, saved: dict) -> None:
    """Load the fp32 state (past the host-load guard), keeping the freshly resolved hyperparameters.

    The kernel flags (``fused``, ``foreach``, ``capturable``) are the runtime device's, not the checkpoint's (a
    CPU-trained AdamW resumed on CUDA with AMP would otherwise take the foreach path, whose GradScaler
    ``found_inf`` handling asserts): they are set on the saved groups BEFORE the load, as Ultralytics' own loader
    does (trainer.py ``_load_checkpoint_state``), because torch places the ``step`` tensors by them."""
    fresh = [{k: g[k] for k in _HYPER_KEYS if k in g} for g in optimizer.param_groups]
    groups = []
    for group, now in zip(saved["param_groups"], optimizer.param_groups):
        group = dict(group)
        for flag in _DEVICE_FLAGS:
            if flag in group or flag in now:
                group[flag] = now.get(flag)
        groups.append(group)
    saved = {**saved, "param_groups": groups + list(saved["param_groups"][len(groups):])}
    type(optimizer).load_state_dict(optimizer, saved)
    for group, values in zip(optimizer.param_groups, fresh):
        group.update(values)


def diff_fingerprints(old: dict, new: dict) -> list[tuple[str, Any, Any]]:
    """``(key, old, new)`` for every key whose value differs, in the fingerprint's order (optimizer first; pure)."""
    old = {**_OLDER_RUNS, **old}
    if "unfreeze_ramp" not in old:  # older states: the ramp mattered only with unfreeze, which they lack
        old["unfreeze_ramp"] = new.get("unfreeze_ramp")
    keys = [*new, *(k for k in old if k not in new)]
    return [(k, old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)]


def effective_config(cfg: InjectConfig, host: Host) -> tuple[InjectConfig, frozenset | None]:
    """On resume: options left at their defaults now take the resumed run's values; also its given UL keys."""
    if not host.resume or host.resume_path is None or not saved_epochs(host.resume_path.parent):
        return cfg, None
    state = read_state(host.resume_path.parent)
    saved, updates = state.get("config") or {}, {}
    for f in dataclasses.fields(cfg):
        now, default = getattr(cfg, f.name), _default(f)
        if f.name in saved and f.name != "allow_resume_change" and _same(now, default):
            value = _from_plain(saved[f.name])
            if value is not _UNRESTORABLE:
                updates[f.name] = value
    given = state.get("ul_given")
    return dataclasses.replace(cfg, **updates), (frozenset(given) if given is not None else None)


_UNRESTORABLE = object()
_UNSET_MARK = "<unset>"


def plain_config(cfg: InjectConfig) -> dict:
    """The config as plain data: objects become ``module:qualname`` (restorable if importable)."""
    return {f.name: _to_plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _to_plain(value: Any) -> Any:
    if value is UNSET:
        return _UNSET_MARK
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    module, name = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    return f"<object>{module}:{name}" if module and name and "<" not in name else "<object>?"


def _from_plain(value: Any) -> Any:
    if value == _UNSET_MARK:
        return UNSET
    if isinstance(value, str) and value.startswith("<object>"):
        path = value[len("<object>"):]
        return path if path != "?" else _UNRESTORABLE  # 'pkg.mod:Class' is a spec the registries import
    return value


def _default(f: dataclasses.Field) -> Any:
    if hasattr(f.default, "get_default"):  # a pydantic dataclass field (the schema, yolo_gd/schema.py)
        return f.default.get_default(call_default_factory=True)
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def _same(a: Any, b: Any) -> bool:
    return a is b or (type(a) is type(b) and a == b)


def _cpu(state: dict) -> dict:
    return {k: v.detach().to("cpu", copy=True) if isinstance(v, torch.Tensor) else v for k, v in state.items()}

"""Exact resume of an observe-only run (``attach(model, exact_resume=True)``, opt-in; injected runs always have it).

Ultralytics' native resume is not bit-identical: it rebuilds the model from the fp16 EMA, loads the optimizer
state converted to fp16 (SGD's momentum buffers), and does not restore the random state (data order,
augmentation). With ``exact_resume=True`` an observe-only run keeps, per epoch, the same kind of state file as an
injected run (inject/state.py): fp32 raw weights, fp32 EMA and its update count, the optimizer's fp32 state and
the random state after validation; a resume (and NaN recovery) puts them back over what the host loaded, and the
random state at the next epoch start (inject/resume.py's machinery). The host keeps its optimizer, schedule,
warmup, clip and step decision: nothing else changes, and without the option native resume is untouched.

The host restarts its step decision at each (re)start (``last_opt_step = -1``), so a resumed run steps on the
same batches only where no accumulation window crosses an epoch boundary: :meth:`Cadence.restarts_alike`
checks every epoch before training, and a run where one would cross is refused in one line naming the fix.
"""

from __future__ import annotations

from yolo_gd.errors import UserError
from yolo_gd.inject.host import Host, rank
from yolo_gd.inject.resume import ResumeState, _capture, _cpu, _truncate_results, load_optimizer_state, run_settings
from yolo_gd.inject.resume_keys import check_resume_settings
from yolo_gd.inject.run import RunState, StepCounters
from yolo_gd.inject.state import read_state, write_state


class ObservedResume(ResumeState):
    """Saves and restores an observe-only run's fp32 state and random state (see the module docstring)."""

    def __init__(self):
        super().__init__(None)

    def on_pretrain_routine_end(self, trainer) -> None:
        from yolo_gd.inject.takeover import facts_from
        from yolo_gd.optim.progress import Cadence

        host = Host(trainer)
        f = facts_from(host, None)
        cadence = Cadence(f.batches_per_epoch, f.epochs, f.accumulate, f.warmup_batches)
        crossing = [e for e in range(1, f.epochs) if not cadence.restarts_alike(e)]
        if crossing:
            raise UserError(f"exact_resume=True: an accumulation window (nbs {host.args['nbs']} / batch "
                            f"{host.batch_size}) crosses the start of epoch {crossing[0]}, where a resumed run would "
                            f"step on other batches; use an nbs equal to batch, or drop exact_resume", key="exact_resume")
        if host.run is None:  # no telemetry: the run state only carries the pending random state
            host.run = RunState(cadence, StepCounters(host.ema.updates if host.ema else 0),
                                batch_size=host.batch_size)
        host.run.saved_epoch = host.start_epoch - 1
        if host.resume and host.start_epoch > 0:
            state = read_state(host.resume_path.parent, host.start_epoch - 1)
            check_resume_settings(state.get("settings"), run_settings(host), unfreeze=False,
                                  checkpoint=str(host.resume_path))
            self._put_back(host, state)
            if rank() in {-1, 0}:
                _truncate_results(host.results_csv, host.start_epoch)
        host.wrap("_handle_nan_recovery", lambda recovered: self._after_nan(trainer, recovered))
        host.wrap("validate", lambda result: self._after_validation(trainer, result))

    def _put_back(self, host: Host, state: dict) -> None:
        load_optimizer_state(host.optimizer, state["optimizer"])
        host.bare_model.load_state_dict(state["model"])
        if host.ema and state.get("ema") is not None:
            host.ema.ema.load_state_dict(state["ema"])
            host.ema.updates = int(state["ema_updates"])
        host.run.pending_rng = state.get("rng") if rank() in {-1, 0} else None

    def _after_nan(self, trainer, recovered: bool) -> None:
        if recovered:
            host = Host(trainer)
            self._put_back(host, read_state(host.wdir, host.run.saved_epoch))

    def on_train_epoch_end(self, trainer) -> None:
        host = Host(trainer)
        if rank() in {-1, 0}:
            payload = {"optimizer": type(host.optimizer).state_dict(host.optimizer),
                       "model": _cpu(host.bare_model.state_dict()),
                       "ema": _cpu(host.ema.ema.state_dict()) if host.ema else None,
                       "ema_updates": int(host.ema.updates) if host.ema else 0,
                       "rng": _capture(host), "settings": run_settings(host), "observe_only": True}
            write_state(host.wdir, host.epoch, payload, save_period=int(host.args.get("save_period", -1)))

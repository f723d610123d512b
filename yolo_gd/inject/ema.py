"""EMA control: ``ema=false``, ``ema_decay=``, ``ema_tau=`` (Ultralytics' ``ModelEMA(decay=0.9999, tau=2000)`` has
both but takes no argument for them).

Ultralytics validates ``trainer.ema.ema`` (engine/validator.py 371) and ``save_model`` stores only
``ema.ema`` (as fp16), so the EMA slot IS what is measured and saved. At ``on_pretrain_routine_end`` (after the host
built ``trainer.ema``, and after any resume loaded its weights) :class:`EmaControl` replaces that EMA's decay
function, nothing else:

- ``ema_decay=d ema_tau=t``: ``decay(updates) = d * (1 - exp(-updates / t))``, Ultralytics' own formula;
- ``ema=false``: ``decay = 0``, so every update makes the slot an exact copy of the raw model (``0 * v + 1 * w``):
  the raw model after the last optimizer step is what is validated and saved. A copy, not the model itself, so the
  validator's ``half()``/``float()`` round trip on GPUs never touches the training weights; the checkpoints keep
  Ultralytics' layout (``ema``, ``updates``) and load with plain ``ultralytics.YOLO``.

Compose order does not matter against inject/resume.py (which restores the EMA's weights and ``updates``): the decay
function is not part of the saved state, so it is set again on every start. Schedule-free optimizers
(inject/schedule_free.py) copy their evaluation weights into the slot at every epoch end, whatever the EMA setting:
what is validated and saved is then always the schedule-free average; the EMA choice only decides how the slot
moves between epoch ends (from that copy on).
"""

from __future__ import annotations

import functools
import math

from yolo_gd.inject.host import Host, rank


def ultralytics_decay(updates: int, decay: float, tau: float) -> float:
    """Ultralytics' ModelEMA ramp: ``decay * (1 - exp(-updates / tau))``."""
    return decay * (1 - math.exp(-updates / tau))


def no_decay(updates: int) -> float:
    """``ema=false``: the slot becomes a copy of the raw model at every update."""
    return 0.0


class EmaControl:
    """Sets the decay of the host's EMA (or turns it into a copy of the raw model), again after NaN recovery.

    The settings are the run's effective ones: on an injected resume that is the config merged with the resumed
    run's (``host.run.cfg``, so ``ema=false`` survives a ``resume=True`` that does not repeat it). They are
    recorded in ``yolo_gd_run.yaml`` (``ema``)."""

    def __init__(self, enabled: bool, decay: float | None, tau: float | None):
        self.enabled, self.decay, self.tau = enabled, decay, tau

    def on_pretrain_routine_end(self, trainer) -> None:
        host = Host(trainer)
        cfg = getattr(host.run, "cfg", None)
        if cfg is not None:  # an injected run: its effective config
            self.enabled, self.decay, self.tau = cfg.ema, cfg.ema_decay, cfg.ema_tau
        self._apply(host)
        # NaN recovery builds a new ModelEMA with Ultralytics' defaults (trainer.py _load_checkpoint_state).
        host.wrap("_handle_nan_recovery", functools.partial(self._after_recovery, trainer))
        if rank() in {-1, 0}:
            from yolo_gd.inject.record import update_record

            update_record(host.save_dir, {"ema": self.settings()})

    def settings(self) -> dict:
        """What the EMA slot does, as recorded: ``{ema, ema_decay, ema_tau}`` (Ultralytics' values if not given)."""
        return {"ema": self.enabled, "ema_decay": 0.9999 if self.decay is None else self.decay,
                "ema_tau": 2000.0 if self.tau is None else self.tau}

    def _apply(self, host: Host) -> None:
        ema = host.ema
        if ema is None:
            return
        if not self.enabled:
            ema.decay = no_decay
        elif self.decay is not None or self.tau is not None:
            s = self.settings()
            ema.decay = functools.partial(_ramp, decay=s["ema_decay"], tau=s["ema_tau"])

    def _after_recovery(self, trainer, recovered: bool) -> None:
        if recovered:
            self._apply(Host(trainer))


def _ramp(updates: int, *, decay: float, tau: float) -> float:
    return ultralytics_decay(updates, decay, tau)

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

from yolo_gd.inject.host import Host


def ultralytics_decay(updates: int, decay: float, tau: float) -> float:
    """Ultralytics' ModelEMA ramp: ``decay * (1 - exp(-updates / tau))``."""
    return decay * (1 - math.exp(-updates / tau))


def no_decay(updates: int) -> float:
    """``ema=false``: the slot becomes a copy of the raw model at every update."""
    return 0.0


class EmaControl:
    """Sets the decay of the host's EMA (or turns it into a copy of the raw model)."""

    def __init__(self, enabled: bool, decay: float | None, tau: float | None):
        self.enabled, self.decay, self.tau = enabled, decay, tau

    def on_pretrain_routine_end(self, trainer) -> None:
        ema = Host(trainer).ema
        if ema is None:
            return
        if not self.enabled:
            ema.decay = no_decay
        else:
            d = 0.9999 if self.decay is None else self.decay
            t = 2000.0 if self.tau is None else self.tau
            ema.decay = functools.partial(_ramp, decay=d, tau=t)


def _ramp(updates: int, *, decay: float, tau: float) -> float:
    return ultralytics_decay(updates, decay, tau)

"""The schedule-free train/eval swap (optimizers with ``train()``/``eval()``, e.g. ``sfadamw``, ``sfsgd``).

Schedule-free optimizers train at one point (y) and evaluate at another (x, the average). Ultralytics validates
``trainer.ema.ema`` (engine/validator.py 371) and ``save_model`` stores only the EMA, so switching the training
model alone would change nothing measured: at each epoch end the optimizer goes to ``eval()`` and the evaluation
weights are copied into the EMA slot, which is what the host then validates and saves; ``on_fit_epoch_end`` puts
it back to ``train()``. The host skips ``on_fit_epoch_end`` when it throws an epoch away (NaN recovery), so
``train()`` is also called after a recovery; it is idempotent. BatchNorm statistics are the ones collected during
training (not recomputed at the averaged point).
"""

from __future__ import annotations

import functools

from yolo_gd.inject.host import Host


class ScheduleFreeSwap:
    """Keeps a schedule-free optimizer in train mode for steps and in eval mode for validation and saving."""

    def on_pretrain_routine_end(self, trainer) -> None:
        host = Host(trainer)
        host.optimizer.train()  # schedule-free optimizers refuse to step in eval mode
        host.wrap("_handle_nan_recovery", functools.partial(self._after_recovery, trainer))

    def on_train_epoch_end(self, trainer) -> None:
        host = Host(trainer)
        host.optimizer.eval()
        if host.ema:
            host.ema.ema.load_state_dict(host.bare_model.state_dict())

    def on_fit_epoch_end(self, trainer) -> None:
        Host(trainer).optimizer.train()

    def _after_recovery(self, trainer, recovered: bool) -> None:
        if recovered:
            Host(trainer).optimizer.train()

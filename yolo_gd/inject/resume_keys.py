"""Which Ultralytics keys a resume of an injected run may change (pure; the table is in docs/resume.md).

Ultralytics lets a resume override ``imgsz``, ``batch``, ``device``, ``close_mosaic``, ``augmentations``,
``save_period``, ``workers``, ``cache``, ``patience``, ``time``, ``freeze``, ``val``, ``plots``,
``channels_last``, ``distill_model``, ``save_dir`` and ``data`` (``engine/trainer.py`` ``check_resume``); every
other key (``nbs``, ``lr0``...) is ignored with its own warning and the checkpoint's value is kept.

An injected run's step cadence, plan and counters are counted in batches of the batch size it was planned for, and
its weight decay is scaled by ``batch * accumulate / nbs``. So a resume that changes the number of batches per
epoch (``batch``, or ``data`` with another number of training images) or the accumulation is refused in one line
(converting the plan, the counters and an open accumulation window's gradients is not implemented). ``freeze`` is
refused only where ``unfreeze=`` builds its groups from it. ``time`` is refused by resolution (no fixed length).
Everything else is allowed: it changes neither the plan nor the optimizer's state (see the table for what is then
no longer bit-identical to an uninterrupted run).
"""

from __future__ import annotations

from typing import Any

from yolo_gd.errors import UserError

__all__ = ["check_resume_settings", "settings"]


def settings(batch: int, batches_per_epoch: int, accumulate: int, freeze: Any) -> dict:
    """The values of a run that a resume must keep (plain data, stored with each epoch's state)."""
    return {"batch": int(batch), "batches_per_epoch": int(batches_per_epoch), "accumulate": int(accumulate),
            "freeze": _plain_freeze(freeze)}


def check_resume_settings(saved: dict | None, now: dict, *, unfreeze: bool, checkpoint: str = "last.pt") -> None:
    """Raise a one-line :class:`UserError` if ``now`` changes a value ``saved`` holds that a resume cannot change.

    ``saved`` None (a state written before the settings were stored): nothing to compare."""
    if not saved:
        return
    start_new = f"or start a new run from these weights (model={checkpoint} without resume)"
    if saved.get("batch") != now["batch"]:
        raise UserError(
            f"resume would change 'batch' from {saved.get('batch')} to {now['batch']}: the injected run's step "
            f"cadence, schedule position and weight-decay scaling are counted in batches of {saved.get('batch')}; "
            f"resume with batch={saved.get('batch')}, {start_new}", key="batch")
    if saved.get("batches_per_epoch") != now["batches_per_epoch"]:
        raise UserError(
            f"resume would change the batches per epoch from {saved.get('batches_per_epoch')} to "
            f"{now['batches_per_epoch']} (another 'data' or training split): the injected run's schedule is "
            f"counted in those batches; resume with the run's own data, {start_new}", key="data")
    if saved.get("accumulate") != now["accumulate"]:
        raise UserError(
            f"resume would change the gradient accumulation from {saved.get('accumulate')} to {now['accumulate']} "
            f"(nbs / batch): resume with the run's own batch and nbs, {start_new}", key="nbs")
    if unfreeze and saved.get("freeze") != now["freeze"]:
        raise UserError(
            f"resume would change 'freeze' from {saved.get('freeze')} to {now['freeze']}: unfreeze= builds its "
            f"optimizer groups from freeze=; resume with freeze={saved.get('freeze')}, {start_new}", key="freeze")


def _plain_freeze(freeze: Any) -> Any:
    if freeze is None or isinstance(freeze, (int, str)):
        return freeze
    if isinstance(freeze, (list, tuple)):
        return [_plain_freeze(f) for f in freeze]
    return str(freeze)

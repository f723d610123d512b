"""Ultralytics' tracker integrations never change the training's random draws (yolo_gd/inject/tracker_rng.py).

The end-to-end check (a training with Comet on equals one with every tracker off, step for step) is in
test_trackers.py, beside the Comet test that needs the same subprocess."""

from __future__ import annotations

import random
import types

import numpy as np
import torch
from ultralytics.utils.callbacks import base as ul_base

from yolo_gd.inject.attach import compose
from yolo_gd.inject.config import InjectConfig
from yolo_gd.inject.host import rank
from yolo_gd.inject.run import Attachment
from yolo_gd.inject.tracker_rng import TrackerRngGuard, is_integration, isolate_integrations, isolated


def _draws(trainer=None):
    """A callback that draws from all three generators, as comet_ml's import draws from Python's."""
    random.random()
    np.random.rand()
    torch.rand(1)


def _integration(fn):
    fn.__module__ = "ultralytics.utils.callbacks.comet"  # where Ultralytics' Comet callbacks live
    return fn


def _state():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_an_isolated_callback_leaves_every_generator_where_it_was():
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    expected = _state()
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    isolated(_draws)()
    assert _state() == expected
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    _draws()
    assert _state() != expected  # the draw does move them when not isolated


def test_only_integration_callbacks_are_wrapped_once_in_place():
    mine = _draws
    comet = _integration(lambda trainer: None)
    default = ul_base.on_train_start  # Ultralytics' own no-op default: not an integration
    callbacks = {"on_train_start": [default, mine, comet], "on_fit_epoch_end": [comet]}
    listed = callbacks["on_train_start"]
    assert isolate_integrations(callbacks) == 2
    assert callbacks["on_train_start"] is listed  # the running event's list is edited, not replaced
    assert listed[:2] == [default, mine] and listed[2] is not comet
    wrapped = listed[2]
    assert isolate_integrations(callbacks) == 2 and listed[2] is wrapped  # a second pass wraps nothing twice
    assert is_integration(comet) and not is_integration(default) and not is_integration(mine)


def test_the_guard_reseeds_as_ultralytics_did_only_when_integrations_are_there():
    """Ultralytics seeds with args.seed + 1 + RANK, then imports the integrations (comet_ml draws at import): the
    guard puts the generators back to the seeded state; without integrations it touches nothing."""
    args = types.SimpleNamespace(seed=5)
    s = 5 + 1 + rank()  # 5 without DDP (RANK -1)
    random.seed(s), np.random.seed(s), torch.manual_seed(s)
    seeded = _state()

    random.seed(s), np.random.seed(s), torch.manual_seed(s)
    _draws()  # the import's draw
    trainer = types.SimpleNamespace(args=args, callbacks={"on_train_end": [_integration(lambda t: None)]})
    TrackerRngGuard().on_pretrain_routine_start(trainer)
    assert _state() == seeded

    random.seed(s), np.random.seed(s), torch.manual_seed(s)
    _draws()
    plain = types.SimpleNamespace(args=args, callbacks={"on_train_end": [_draws]})
    TrackerRngGuard().on_pretrain_routine_start(plain)
    assert _state() != seeded  # no integration: left exactly as it was


def test_every_attached_run_has_the_guard():
    for cfg in (InjectConfig(), InjectConfig(telemetry="off"), InjectConfig(optimizer="adamw")):
        assert sum(isinstance(p, TrackerRngGuard) for p in compose(Attachment(cfg))) == 1

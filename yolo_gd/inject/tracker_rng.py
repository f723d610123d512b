"""Ultralytics' tracker integrations never change the training's random draws.

Why: comet_ml draws from Python's global ``random`` when it is imported (its error-tracking sampling and a random
id: ``comet_ml/error_tracking/api.py:34``, ``utils.py:704``) and when ``comet_ml.start`` opens an offline experiment
(its archive's name: ``offline.py:501``). Ultralytics seeds its generators (``trainer.py:158``, ``init_seeds``),
then imports the enabled integrations (``:196``, ``add_integration_callbacks``) and runs ``on_pretrain_routine_start``
(where Comet starts): both draws land in the stream that then decides the mosaic and augmentation of every batch
(``workers=0``). Measured before this guard: plain ``yolo train`` on the shapes set ended epoch 1 at box loss
4.59432 with Comet on and 4.77169 with it off, so numbers differed between environments with and without comet_ml.

What :class:`TrackerRngGuard` does, at ``on_pretrain_routine_start`` (yolo_gd's callbacks run before the
integrations' for each event, and nothing between ``init_seeds`` and this event draws):

1. when the trainer has integration callbacks, seeds Python's, NumPy's and torch's generators again with the seed
   Ultralytics used (``args.seed + 1 + RANK``), undoing the draws of the integrations' imports;
2. wraps each integration callback so that it runs with those generators' states saved and put back afterwards
   (a copy of torch's 5 kB CPU state per call; the integrations' callbacks run a few times per epoch, not per
   step).

Runs with no integration callbacks are left exactly as Ultralytics runs them. Not covered: an integration that
draws from these generators in a thread of its own while training runs (none seen: comet_ml's logging drew nothing
in 3 s idle or 50 ``log_metrics`` calls).
"""

from __future__ import annotations

import functools
import random
from typing import Callable

import numpy as np
import torch

from yolo_gd.inject.host import Host, rank

#: Where Ultralytics' integration callbacks live; ``base`` holds its own no-op defaults.
INTEGRATIONS = "ultralytics.utils.callbacks."
_DEFAULTS = INTEGRATIONS + "base"


def is_integration(fn: Callable) -> bool:
    """True for a callback of one of Ultralytics' integrations (Comet, W&B, MLflow, ClearML, TensorBoard...)."""
    module = getattr(fn, "__module__", None) or ""
    return module.startswith(INTEGRATIONS) and module != _DEFAULTS


def isolated(fn: Callable) -> Callable:
    """``fn`` run with Python's, NumPy's and torch's CPU generator states put back afterwards."""
    if getattr(fn, "_yolo_gd_isolated", False):
        return fn

    @functools.wraps(fn)
    def call(*args, **kwargs):
        states = random.getstate(), np.random.get_state(), torch.get_rng_state()
        try:
            return fn(*args, **kwargs)
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])

    call._yolo_gd_isolated = True
    return call


def isolate_integrations(callbacks: dict[str, list]) -> int:
    """Wrap, in place, every integration callback in a trainer's ``callbacks``; returns how many there are."""
    found = 0
    for funcs in callbacks.values():
        for i, fn in enumerate(funcs):  # in place: the event now running goes on over the same list
            if is_integration(fn):
                funcs[i] = isolated(fn)
                found += 1
    return found


def reseed(seed: int) -> None:
    """What Ultralytics' ``init_seeds`` does to the generators (not its deterministic-mode settings)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class TrackerRngGuard:
    """The integrations' random draws kept out of the training's generators (see the module's docstring)."""

    def on_pretrain_routine_start(self, trainer) -> None:
        host = Host(trainer)
        if isolate_integrations(host.callbacks):
            reseed(int(host.args["seed"]) + 1 + rank())

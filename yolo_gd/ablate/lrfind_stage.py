"""``protocol: lrfind``'s first stage: one LR range test per config, in the runner process, before any seed runs.

Each config's train keys, minus those the range test sets itself (the LR, the schedule, warmup, epochs,
close_mosaic), go to :func:`yolo_gd.lrfind.run.lr_find` on the train split with the sweep's first seed, under the
trials' conditions: the same ``batch`` and ``nbs`` (Ultralytics' defaults when the spec sets none), mosaic as in
the trial's first epoch (closed only when ``close_mosaic`` covers the whole budget), ``fraction``, and the sweep's
device. The suggestion becomes the LR of every main trial of the config. When the test gives no reliable
suggestion (flat, rising, too noisy, diverged early) or fails, the config keeps the entry's own LR (or the
optimizer's registry default) and the manifest says so in ``rule`` and ``reason``. A test already recorded in the
manifest is not rerun (a resumed sweep).
"""

from __future__ import annotations

import time
from pathlib import Path

from yolo_gd.ablate.manifest import Manifest
from yolo_gd.ablate.spec import Config, Sweep
from yolo_gd.errors import UserError

__all__ = ["run_range_tests", "range_test_kwargs"]


def _ultralytics_default(key: str):
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return DEFAULT_CFG_DICT[key]


def trial_mosaic(config: Config, epochs: int | None) -> bool:
    """Whether the config's trials start with mosaic: Ultralytics closes it at epoch ``epochs - close_mosaic``, so
    from the first epoch when ``close_mosaic >= epochs`` (a time budget: epochs unknown, mosaic assumed on)."""
    close = config.kwargs.get("close_mosaic", _ultralytics_default("close_mosaic"))
    return not (close and epochs is not None and epochs <= int(close))


def range_test_kwargs(config: Config, seed: int, epochs: int | None = None, device: str | None = None) -> dict:
    """``lr_find``'s keyword arguments for ``config`` (its train keys without those the test sets itself) under the
    trials' conditions (see the module docstring); ``epochs``: the trials' budget."""
    from yolo_gd.lrfind.run import OWN_KEYS

    kw = {k: v for k, v in config.kwargs.items() if k not in OWN_KEYS}
    kw["seed"] = seed
    kw.setdefault("batch", _ultralytics_default("batch"))
    kw.setdefault("nbs", _ultralytics_default("nbs"))
    kw["mosaic"] = trial_mosaic(config, epochs)
    if device is not None and "device" not in kw:
        kw["device"] = device
    return kw


def _options(sweep: Sweep) -> dict:
    opts = dict(sweep.lrfind)
    for key in ("steps", "probe", "probe_every"):
        if key in opts:
            opts[key] = int(opts[key])
    return opts


def _one(sweep: Sweep, config: Config, out: Path, say, device: str | None) -> dict:
    from yolo_gd.lrfind.run import lr_find

    kw = range_test_kwargs(config, sweep.seeds[0], sweep.budget.epochs, device)
    t0 = time.perf_counter()
    try:
        res = lr_find(out=out, **kw, **_options(sweep))
    except (UserError, RuntimeError, ValueError) as e:  # the sweep goes on at the entry's own LR
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        say(f"[ablate] {config.name}: range test failed ({first}): using lr {config.center_lr}")
        return {"lr": config.center_lr, "rule": f"fallback: the range test failed ({first})", "suggested": None,
                "reason": "failed", "advice": None, "others": {}, "steps": 0,
                "seconds": round(time.perf_counter() - t0, 1), "stopped_at_divergence": False, "split": "train",
                "plot": None, "csv": None, "conditions": {}}
    v = res.suggestion
    if v.lr is not None:
        lr, rule = v.lr, v.rule
        say(f"[ablate] {config.name}: range test suggests lr {lr:.3g} ({rule}; {res.steps} steps, "
            f"{res.seconds:.0f} s)")
    else:
        lr, rule = config.center_lr, f"fallback: no reliable suggestion ({v.reason}): the entry's LR"
        say(f"[ablate] {config.name}: range test gives no reliable suggestion ({v.reason}: {v.advice}): using the "
            f"entry's lr {lr}")
    return {"lr": float(lr) if lr is not None else None, "rule": rule, "suggested": v.lr, "reason": v.reason,
            "advice": v.advice, "others": v.others, "steps": res.steps, "seconds": round(res.seconds, 1),
            "stopped_at_divergence": res.stopped_early, "split": "train",
            "plot": str(res.plot) if res.plot else None, "csv": str(res.csv), "conditions": res.conditions}


def run_range_tests(sweep: Sweep, m: Manifest, sweep_dir: Path, say, device: str | None = None) -> None:
    """Run the range test of every config that has none in ``m.lrfind`` yet (on ``device``: the sweep's first
    device), saving the manifest after each."""
    m.lrfind = m.lrfind if m.lrfind is not None else {}
    for config in sweep.configs:
        if config.name in m.lrfind:
            continue
        say(f"[ablate] {config.name}: LR range test (protocol lrfind) on the train split")
        m.lrfind[config.name] = _one(sweep, config, Path(sweep_dir) / "lrfind" / config.name, say, device)
        m.save()

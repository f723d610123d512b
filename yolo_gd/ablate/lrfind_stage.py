"""``protocol: lrfind``'s first stage: one LR range test per config, in the runner process, before any seed runs.

Each config's train keys, minus those the range test sets itself (the LR, the schedule, warmup, epochs), go to
:func:`yolo_gd.lrfind.run.lr_find` on the train split with the sweep's first seed; the suggestion becomes the LR
of every main trial of the config. When the test gives no suggestion (the loss never fell) or fails, the config
keeps the entry's own LR (or the optimizer's registry default) and the manifest says so in ``rule``. A test already
recorded in the manifest is not rerun (a resumed sweep).
"""

from __future__ import annotations

import time
from pathlib import Path

from yolo_gd.ablate.manifest import Manifest
from yolo_gd.ablate.spec import Config, Sweep
from yolo_gd.errors import UserError

__all__ = ["run_range_tests", "range_test_kwargs"]


def range_test_kwargs(config: Config, seed: int) -> dict:
    """``lr_find``'s keyword arguments for ``config`` (its train keys without those the test sets itself)."""
    from yolo_gd.lrfind.run import OWN_KEYS

    kw = {k: v for k, v in config.kwargs.items() if k not in OWN_KEYS}
    kw["seed"] = seed
    return kw


def _options(sweep: Sweep) -> dict:
    opts = dict(sweep.lrfind)
    if "steps" in opts:
        opts["steps"] = int(opts["steps"])
    return opts


def _one(sweep: Sweep, config: Config, out: Path, say) -> dict:
    from yolo_gd.lrfind.run import lr_find

    kw = range_test_kwargs(config, sweep.seeds[0])
    t0 = time.perf_counter()
    try:
        res = lr_find(out=out, **kw, **_options(sweep))
    except (UserError, RuntimeError, ValueError) as e:  # the sweep goes on at the entry's own LR
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        say(f"[ablate] {config.name}: range test failed ({first}): using lr {config.center_lr}")
        return {"lr": config.center_lr, "rule": f"fallback: the range test failed ({first})", "suggested": None,
                "others": {}, "steps": 0, "seconds": round(time.perf_counter() - t0, 1),
                "stopped_at_divergence": False, "split": "train", "plot": None, "csv": None}
    s = res.suggestion
    lr = s.lr if s.lr is not None else config.center_lr
    rule = s.rule if s.lr is not None else "fallback: no suggestion (the loss never fell): the entry's LR"
    say(f"[ablate] {config.name}: range test suggests lr {lr:.3g} ({rule}; {res.steps} steps, {res.seconds:.0f} s)")
    return {"lr": float(lr) if lr is not None else None, "rule": rule, "suggested": s.lr, "others": s.others,
            "steps": res.steps, "seconds": round(res.seconds, 1), "stopped_at_divergence": res.stopped_early,
            "split": "train", "plot": str(res.plot) if res.plot else None, "csv": str(res.csv)}


def run_range_tests(sweep: Sweep, m: Manifest, sweep_dir: Path, say) -> None:
    """Run the range test of every config that has none in ``m.lrfind`` yet, saving the manifest after each."""
    m.lrfind = m.lrfind if m.lrfind is not None else {}
    for config in sweep.configs:
        if config.name in m.lrfind:
            continue
        say(f"[ablate] {config.name}: LR range test (protocol lrfind) on the train split")
        m.lrfind[config.name] = _one(sweep, config, Path(sweep_dir) / "lrfind" / config.name, say)
        m.save()

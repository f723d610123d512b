"""``protocol: lrfind``'s first stage: one LR range test per config before any seed runs (in the runner process
with one slot; side by side, one process per slot, with several: :mod:`~yolo_gd.ablate.lrfind_worker`).

Each config's train keys, minus those the range test sets itself (the LR, the schedule, warmup, epochs,
close_mosaic), go to :func:`yolo_gd.lrfind.run.lr_find` on the train split with the sweep's first seed, under the
trials' conditions: the same ``batch`` and ``nbs`` (Ultralytics' defaults when the spec sets none), mosaic as in
the trial's first epoch (closed only when ``close_mosaic`` covers the whole budget), ``fraction``, and the sweep's
devices. The suggestion becomes the LR of every main trial of the config. When the test gives no reliable
suggestion (flat, rising, too noisy, diverged early) or fails, the config keeps the entry's own LR (or the
optimizer's registry default) and the manifest says so in ``rule`` and ``reason``. A test already recorded in the
manifest is not rerun (a resumed sweep).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from yolo_gd.ablate.lrfind_record import range_test_record, record_line
from yolo_gd.ablate.manifest import Manifest
from yolo_gd.ablate.spec import Config, Sweep

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


def _job(sweep: Sweep, config: Config, sweep_dir: Path, device: str | None) -> dict:
    """lr_find's keywords for ``config`` (with ``out``), as the in-process and the side-by-side paths pass them."""
    kw = range_test_kwargs(config, sweep.seeds[0], sweep.budget.epochs, device)
    return {"out": Path(sweep_dir) / "lrfind" / config.name, **kw, **_options(sweep)}


def run_range_tests(sweep: Sweep, m: Manifest, sweep_dir: Path, say,
                    devices: Sequence[str | None] = (None,), threads: int | None = None) -> None:
    """Run the range test of every config that has none in ``m.lrfind`` yet, saving the manifest after each.

    One device (``devices``: the sweep's slots, as trial devices): the tests run one after the other in this
    process. Several: side by side, one process per slot (``threads`` torch threads each on a shared CPU, as the
    trials get), each test's output in ``lrfind/<config>/lrfind.log``: on 2 CPU cores two tests take about the time
    of one (``bench/results/compare_profile_cpu.json``)."""
    m.lrfind = m.lrfind if m.lrfind is not None else {}
    pending = [c for c in sweep.configs if c.name not in m.lrfind]
    if len(devices) <= 1 or len(pending) <= 1:
        for config in pending:
            say(f"[ablate] {config.name}: LR range test (protocol lrfind) on the train split")
            m.lrfind[config.name] = range_test_record(_job(sweep, config, sweep_dir, devices[0]), config.center_lr)
            say(record_line(config.name, m.lrfind[config.name]))
            m.save()
        return
    from yolo_gd.ablate.lrfind_worker import run_side_by_side

    for i in range(0, len(pending), len(devices)):
        wave = pending[i:i + len(devices)]
        say(f"[ablate] LR range tests (protocol lrfind) on the train split, side by side: "
            f"{', '.join(c.name for c in wave)} (logs: {Path(sweep_dir) / 'lrfind'}/<config>/lrfind.log)")
        jobs = [(c.name, _job(sweep, c, sweep_dir, d), c.center_lr) for c, d in zip(wave, devices)]
        for name, rec in run_side_by_side(jobs, threads):
            m.lrfind[name] = rec
            say(record_line(name, rec))
            m.save()

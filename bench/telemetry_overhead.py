"""Training time with telemetry off / basic / full (injected SGD) and observe-only vs plain Ultralytics.

All variants are interleaved in one process (the order rotates each repeat); medians of the training time
(validation excluded) are printed as ratios to their baseline. Goals: basic <= 2% on CPU (this tiny config);
on a GPU (yolo11n, batch 64, imgsz 640, AMP) basic <= 0.5% and full <= 2%.

    python bench/telemetry_overhead.py
    python bench/telemetry_overhead.py --device 0 --imgsz 640 --batch 64 --images 1024 --amp --out bench/results/telemetry_gpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from _common import add_common_args, make_data, metadata, train_once

VARIANTS = {
    # name: (attach kwargs or None for plain Ultralytics, baseline name)
    "injected-off": (dict(optimizer="sgd", telemetry="off"), "injected-off"),
    "injected-basic": (dict(optimizer="sgd", telemetry="basic"), "injected-off"),
    "injected-full": (dict(optimizer="sgd", telemetry="full"), "injected-off"),
    "plain": (None, "plain"),
    "observe-basic": (dict(telemetry="basic"), "plain"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(ap)
    args = ap.parse_args()

    import yolo_gd

    data, project = make_data(args)

    def configure_for(kwargs):
        def configure(model):
            if kwargs is not None:
                yolo_gd.attach(model, **kwargs)
        return configure

    names = list(VARIANTS)
    train_once("warmup", configure_for(None), data, project, args, optimizer="SGD")
    times = {n: [] for n in names}
    for r in range(args.repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            timer = train_once(name, configure_for(VARIANTS[name][0]), data, project, args, optimizer="SGD")
            times[name].append(timer.total)
    rows = {}
    for name in names:
        base = statistics.median(times[VARIANTS[name][1]])
        med = statistics.median(times[name])
        rows[name] = {"median_s": med, "ratio": med / base, "baseline": VARIANTS[name][1], "all": times[name]}
        print(f"{name:15s} {med:8.3f} s  ratio to {VARIANTS[name][1]:13s} {med / base:.4f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"meta": metadata(args), "results": rows}, indent=2))


if __name__ == "__main__":
    main()

"""Native Ultralytics SGD/AdamW vs the same optimizers injected by yolo_gd: training time, side by side.

Runs are interleaved (native/injected, then injected/native, ...) in one process so drift hits both alike; the
medians over repeats of the training time (validation excluded) are printed as injected/native ratios. Goal: <= 1.01.
Telemetry is off in the injected runs: this measures the owned step alone (see telemetry_overhead.py for the rest).

    python bench/inject_overhead.py                    # CPU: 128 shapes images at 128 px, 2 epochs, 3 repeats
    python bench/inject_overhead.py --device 0 --imgsz 640 --batch 64 --images 1024 --amp --out bench/results/inject_gpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from _common import add_common_args, make_data, metadata, train_once


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(ap)
    args = ap.parse_args()

    import yolo_gd

    data, project = make_data(args)

    def variant(mode, optimizer):
        def configure(model):
            if mode == "injected":
                yolo_gd.attach(model, optimizer.lower(), lr=0.01, momentum=0.937, warmup_bias_lr=0.1, telemetry="off")
        return configure

    train_once("warmup", variant("native", "SGD"), data, project, args, optimizer="SGD")  # first-run costs
    times = {(m, o): [] for o in ("SGD", "AdamW") for m in ("native", "injected")}
    for r in range(args.repeats):
        for optimizer in ("SGD", "AdamW"):
            for mode in ("native", "injected") if r % 2 == 0 else ("injected", "native"):
                timer = train_once(f"{mode}-{optimizer}", variant(mode, optimizer), data, project, args,
                                   optimizer=optimizer)
                times[(mode, optimizer)].append(timer.total)
    rows = {}
    for optimizer in ("SGD", "AdamW"):
        native, injected = (statistics.median(times[(m, optimizer)]) for m in ("native", "injected"))
        rows[optimizer] = {"native_s": native, "injected_s": injected, "ratio": injected / native,
                           "native_all": times[("native", optimizer)], "injected_all": times[("injected", optimizer)]}
        print(f"{optimizer:6s} native {native:8.3f} s  injected {injected:8.3f} s  ratio {injected / native:.4f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"meta": metadata(args), "results": rows}, indent=2))


if __name__ == "__main__":
    main()

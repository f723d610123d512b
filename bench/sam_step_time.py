"""SAM-family steps vs their base optimizer's: training time per optimizer step, side by side.

Injected SGD, SAM over SGD and ASAM over SGD (telemetry off, nbs = batch so every batch is one step) are
interleaved in one process (the order rotates each repeat so drift hits all alike); the medians over repeats of the
training time per step (validation excluded) are printed as ratios to plain SGD. Expected: about 2x (a second
forward and backward per step) plus the weight copies.

    python bench/sam_step_time.py --out bench/results/sam_step_time_cpu.json        # CPU: 128 px, batch 16
    python bench/sam_step_time.py --device 0 --imgsz 640 --batch 64 --images 1024 --amp --out bench/results/sam_gpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from _common import add_common_args, make_data, metadata, train_once

VARIANTS = {"sgd": dict(optimizer="sgd"), "sam+sgd": dict(optimizer="sam", base="sgd"),
            "asam+sgd": dict(optimizer="asam", base="sgd")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(ap)
    args = ap.parse_args()
    args.nbs = args.batch  # SAM needs one batch per optimizer step; the base gets the same cadence

    import yolo_gd

    data, project = make_data(args)

    def configure(name):
        return lambda model: yolo_gd.attach(model, lr=0.01, telemetry="off", **VARIANTS[name])

    train_once("warmup", configure("sgd"), data, project, args)  # first-run costs
    per_step = {name: [] for name in VARIANTS}
    names = list(VARIANTS)
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            timer = train_once(name, configure(name), data, project, args)
            per_step[name].append(timer.total / timer.steps)
    base = statistics.median(per_step["sgd"])
    rows = {}
    for name, times in per_step.items():
        median = statistics.median(times)
        rows[name] = {"s_per_step": median, "ratio_to_sgd": median / base, "all": times}
        print(f"{name:9s} {median * 1000:9.1f} ms/step  ratio to sgd {median / base:.3f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"meta": metadata(args), "results": rows}, indent=2))


if __name__ == "__main__":
    main()

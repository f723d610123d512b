"""Which loss signal should the LR range test read? Measured side by side in ONE run per optimizer.

Each optimizer step of a range test records (a) the training loss of its batch (what fastai/Lightning read),
and (b) the loss of fixed, unaugmented train images (the probe; yolo_gd.inject.probe) for nested probe sets of
16, 32 and 64 images (the first 2, 4, 8 batches of 8). From the same curves: the point noise sigma
(yolo_gd.lrfind.rangetest.noise_sigma), sigma relative to the start level, and the verdict of the confidence rule
on each signal (every step, and the probe every 2 / 4 steps), plus seconds spent in probe evaluations vs training.

    PYTHONPATH=$PWD python bench/lrfind_signal.py --out bench/results/lrfind_signal_cpu.json

Setting (the review's noisy one): yolo11n.yaml from scratch, 64 generated shapes train images at 64 px, batch 8
(nbs 8), ramp 1e-6..1 over 100 steps, mosaic on, seed 0, CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401  (offline env before Ultralytics is imported)


def run(optimizer: str, data, steps: int) -> dict:
    from yolo_gd.inject.host import Host
    from yolo_gd.inject.probe import ProbeSet
    from yolo_gd.lrfind import run as lf
    from yolo_gd.lrfind.rangetest import LrRamp
    from yolo_gd.telemetry.sinks import read_steps

    class Measured(lf.RangeMonitor):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.rows, self.probe_s = [], 0.0

        def on_train_start(self, trainer):
            self.device = Host(trainer).device
            self.big = ProbeSet(Host(trainer), 64, 8)

        def on_train_batch_end(self, trainer):
            host = Host(trainer)
            k = host.run.counters.steps - 1
            t0 = time.perf_counter()
            per = self.big.batch_losses(host)
            self.probe_s += time.perf_counter() - t0
            row = {"step": k, "lr": self.ramp.lr(k), "train": lf._loss_sum(host.loss_items)}
            for n in (2, 4, 8):
                row[f"probe{8 * n}"] = sum(c * v for c, v in per[:n]) / sum(c for c, _ in per[:n])
            self.rows.append(row)
            if self.rule.update(row["probe32"]):
                self.diverged = True
                host.stop_training()
            if k + 1 >= self.steps:
                host.stop_training()

    ramp = LrRamp(1e-6, 1.0, steps)
    mon = Measured(steps, ramp, probe=0, every=1, batch=8)
    given = {"data": data, "optimizer": optimizer, "batch": 8, "nbs": 8, "lr": 1e-6, "schedule": ramp, "warmup": 0,
             "warmup_epochs": 0, "epochs": lf._epochs(64, 8, steps), "close_mosaic": 0, "val": False,
             "plots": False, "telemetry": "basic", "imgsz": 64, "workers": 0, "seed": 0, "amp": False,
             "verbose": False}
    tmp = Path(tempfile.mkdtemp())
    t0 = time.perf_counter()
    try:
        steps_table = read_steps(lf._train_copy("yolo11n.yaml", given, mon, tmp), latest_only=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = time.perf_counter() - t0
    return {"optimizer": optimizer, "rows": mon.rows, "seconds_total": total, "seconds_probe64": mon.probe_s,
            "steps_run": len(steps_table), "diverged": mon.diverged}


def analyse(res: dict) -> dict:
    import numpy as np

    from yolo_gd.lrfind.rangetest import BETA, PROBE_BETA, assess, noise_sigma

    rows = res["rows"]
    lrs = np.array([r["lr"] for r in rows])
    out = {}
    for name in ("train", "probe16", "probe32", "probe64"):
        y = np.array([r[name] for r in rows])
        beta = BETA if name == "train" else PROBE_BETA
        for every in ((1,) if name == "train" else (1, 2, 4)):
            yy, xx = y[::every], lrs[::every]
            sigma = noise_sigma(yy)
            start = float(np.median(yy[: max(3, len(yy) // 10)]))
            v = assess(xx, yy, res["diverged"], beta, planned=-(-100 // every))
            out[f"{name}/every{every}"] = {"points": len(yy), "sigma": sigma, "start": start,
                                           "sigma_rel": sigma / start, "fall": v.fall, "uncertainty": v.uncertainty,
                                           "verdict": v.text()}
    if len(rows) >= 8:  # training loss averaged over windows of 4 and 8 steps
        y = np.array([r["train"] for r in rows])
        for w in (4, 8):
            m = len(y) // w * w
            yy = y[:m].reshape(-1, w).mean(1)
            sigma = noise_sigma(yy)
            start = float(np.median(yy[:3]))
            out[f"train_mean{w}"] = {"points": len(yy), "sigma": sigma, "start": start, "sigma_rel": sigma / start}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/lrfind_signal_cpu.json")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--optimizers", default="sgd,adamw")
    ap.add_argument("--reanalyse", action="store_true", help="recompute the analysis of the curves in --out")
    a = ap.parse_args()
    if a.reanalyse:  # the rules changed, the curves did not: no training
        stored = json.loads(Path(a.out).read_text())
        for res in stored["results"]:
            res["analysis"] = analyse(res)
        Path(a.out).write_text(json.dumps(stored, indent=1, default=float) + "\n")
        return
    from yolo_gd.datasets.shapes import generate_shapes

    data = generate_shapes(Path(tempfile.mkdtemp()) / "shapes64", n_train=64, n_val=16, imgsz=64, seed=0)
    results = []
    for opt in a.optimizers.split(","):
        res = run(opt, data, a.steps)
        res["analysis"] = analyse(res)
        results.append(res)
        print(json.dumps({opt: res["analysis"], "seconds_total": res["seconds_total"],
                          "seconds_probe64": res["seconds_probe64"]}, indent=1), flush=True)
    a.device = "cpu"
    Path(a.out).write_text(json.dumps({"meta": _common.metadata(a), "results": results}, indent=1, default=float)
                           + "\n")


if __name__ == "__main__":
    main()

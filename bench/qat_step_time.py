"""QAT fine-tune vs float fine-tune: seconds per optimizer step, same model, data, optimizer and schedule.

A float model (``--model``, default yolo11n) is first trained briefly (``--float-epochs``) on shapes images; both
variants then fine-tune that checkpoint with yolo_gd's injected AdamW (lr 1e-5, cosine, no warmup, telemetry
off). The only difference: the QAT variant passes ``quantize=8`` (ModelOpt INT8 fake quantization, calibrated
before the first step; calibration is outside the timed window). Runs are interleaved (float/QAT, then QAT/float,
...) in one process so drift hits both alike. A step is timed from ``on_train_batch_start`` to
``on_train_batch_end`` (forward, loss, backward, optimizer step; data loading excluded); with ``--nbs`` equal to
``--batch`` every batch is one optimizer step. The first step of each run is dropped (first-call costs). Printed:
the median seconds per step of each variant and the QAT/float ratio.

    python bench/qat_step_time.py                                        # CPU: 128 images, 128 px, batch 16
    python bench/qat_step_time.py --epochs 1 --repeats 2 --out bench/results/qat_step_time_cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from _common import add_common_args, make_data, metadata


class StepTimer:
    """Seconds of each training batch (on_train_batch_start -> on_train_batch_end)."""

    def __init__(self):
        self.times, self._t = [], None

    def start(self, trainer):
        self._t = time.perf_counter()

    def end(self, trainer):
        if trainer.device.type == "cuda":
            import torch

            torch.cuda.synchronize(trainer.device)
        self.times.append(time.perf_counter() - self._t)

    def watch(self, model):
        model.add_callback("on_train_batch_start", self.start)
        model.add_callback("on_train_batch_end", self.end)


def _train_args(args, data: Path, project: Path, name: str, epochs: int) -> dict:
    return dict(data=str(data), epochs=epochs, imgsz=args.imgsz, batch=args.batch, workers=args.workers,
                device=args.device, amp=args.amp, nbs=args.nbs, seed=0, deterministic=True, plots=False, val=False,
                project=str(project), name=name, exist_ok=True, verbose=False)


def train_float(args, data: Path, project: Path) -> Path:
    from ultralytics import YOLO

    model = YOLO(args.model)
    model.train(**_train_args(args, data, project, "float", args.float_epochs), optimizer="AdamW", lr0=0.002)
    return Path(model.trainer.last)


def fine_tune(ckpt: Path, mode: str, args, data: Path, project: Path, name: str) -> list[float]:
    """One fine-tune of ``ckpt``; ``mode`` 'qat' adds quantize=8. Returns seconds per step (first dropped)."""
    from ultralytics import YOLO

    import yolo_gd

    model, timer = YOLO(str(ckpt)), StepTimer()
    yolo_gd.attach(model, "adamw", lr=args.lr, schedule="cosine", warmup=0, telemetry="off")
    timer.watch(model)
    extra = {"quantize": 8} if mode == "qat" else {}
    model.train(**_train_args(args, data, project, name, args.epochs), **extra)
    return timer.times[1:]


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("nvidia-modelopt", "onnxruntime"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(ap)
    ap.set_defaults(model="yolo11n.yaml", epochs=1, repeats=3)
    ap.add_argument("--float-epochs", type=int, default=5,
                    help="brief float training first (5 x 8 batches at the defaults; far fewer overflows in QAT)")
    ap.add_argument("--lr", type=float, default=1e-5, help="fine-tuning LR (AdamW, cosine) for both variants")
    args = ap.parse_args()

    data, project = make_data(args)
    t0 = time.perf_counter()
    ckpt = train_float(args, data, project)
    float_train_s = time.perf_counter() - t0

    steps = {"float": [], "qat": []}
    per_repeat = []
    for r in range(args.repeats):
        medians = {}
        for mode in ("float", "qat") if r % 2 == 0 else ("qat", "float"):
            times = fine_tune(ckpt, mode, args, data, project, f"{mode}_{r}")
            steps[mode] += times
            medians[mode] = statistics.median(times)
            print(f"repeat {r} {mode:>5}: {len(times)} steps, median {medians[mode]:.4f} s/step", flush=True)
        per_repeat.append({**medians, "ratio": medians["qat"] / medians["float"]})

    float_s, qat_s = statistics.median(steps["float"]), statistics.median(steps["qat"])
    ratio = qat_s / float_s
    print(f"\nmedian seconds per optimizer step ({len(steps['float'])} float / {len(steps['qat'])} QAT steps, "
          f"{args.repeats} interleaved repeats, first step of each run dropped):")
    print(f"  float {float_s:.4f} s   QAT {qat_s:.4f} s   QAT/float {ratio:.2f}x")
    print(f"  per repeat: {', '.join('%.2fx' % p['ratio'] for p in per_repeat)}")

    if args.out:
        meta = metadata(args)
        meta.update(versions())
        meta["float_checkpoint_train_s"] = round(float_train_s, 1)
        meta["timing"] = ("on_train_batch_start -> on_train_batch_end (forward, loss, backward, optimizer step), "
                          "first step of each run dropped; both variants: yolo_gd AdamW lr=%g, cosine, warmup 0, "
                          "telemetry off; QAT adds quantize=8" % args.lr)
        result = {"meta": meta,
                  "results": {"float_s_per_step": float_s, "qat_s_per_step": qat_s, "qat_over_float": ratio,
                              "per_repeat": per_repeat, "float_all": steps["float"], "qat_all": steps["qat"]}}
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()

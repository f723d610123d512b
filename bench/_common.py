"""Shared pieces of the side-by-side benchmarks: a training-time timer, one tiny training, result metadata."""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp())


#: Ultralytics' tracker integrations, all off for benchmarks.
TRACKERS = ("mlflow", "comet", "clearml", "wandb", "dvc", "raytune", "tensorboard")


def _trackers_off() -> None:
    """A fresh settings folder means Ultralytics' defaults: MLflow, Comet and ClearML on whenever installed (the dev
    extras install them), writing mlflow.db, mlruns/ and .cometml-runs/ into the working folder and adding their
    cost to what a benchmark times. Off in the settings file, which the benchmarks' trial processes read too."""
    from ultralytics.utils import SETTINGS

    SETTINGS.update(dict.fromkeys(TRACKERS, False))


_trackers_off()


def trackers_off_in(config_dir: Path) -> None:
    """The same settings for benchmarks that give each run its own ``YOLO_CONFIG_DIR`` (a child process writes them
    there, since Ultralytics reads its settings folder once per process)."""
    import subprocess
    import sys

    code = f"from ultralytics.utils import SETTINGS; SETTINGS.update(dict.fromkeys({TRACKERS!r}, False))"
    proc = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, YOLO_CONFIG_DIR=str(config_dir)),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"could not write tracker settings into {config_dir}: {proc.stderr.strip()[-500:]}")


class EpochTimer:
    """Sums training time per epoch (on_train_epoch_start -> on_train_epoch_end): validation is excluded."""

    def __init__(self):
        self.total, self.steps, self._t = 0.0, 0, None

    def start(self, trainer):
        _sync(trainer)
        self._t = time.perf_counter()

    def end(self, trainer):
        _sync(trainer)  # a host sync once per epoch, so queued GPU work is inside the measured time
        self.total += time.perf_counter() - self._t
        self.steps = trainer.ema.updates

    def watch(self, model):
        model.add_callback("on_train_epoch_start", self.start)
        model.add_callback("on_train_epoch_end", self.end)


def _sync(trainer):
    import torch

    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)


def add_common_args(ap):
    ap.add_argument("--model", default="yolo11n.yaml")
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--imgsz", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--nbs", type=int, default=16, help="nominal batch: 16 with batch 16 steps on every batch")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", action="store_true")
    ap.add_argument("--out", default=None, help="write a JSON result (e.g. bench/results/NAME.json)")


def make_data(args) -> tuple[Path, Path]:
    from yolo_gd.datasets.shapes import generate_shapes

    work = Path(tempfile.mkdtemp(prefix="yolo_gd_bench_"))
    return generate_shapes(work / "data", n_train=args.images, n_val=16, imgsz=args.imgsz, seed=0), work / "runs"


def train_once(name: str, configure: Callable, data: Path, project: Path, args, **train_args) -> EpochTimer:
    """One training of ``args.model``; ``configure(model)`` attaches whatever the variant needs."""
    from ultralytics import YOLO

    model, timer = YOLO(args.model), EpochTimer()
    configure(model)
    timer.watch(model)
    model.train(data=str(data), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, workers=args.workers,
                device=args.device, amp=args.amp, nbs=args.nbs, seed=0, plots=False, val=False, project=str(project), name=name,
                exist_ok=True, verbose=False, **train_args)
    return timer


def metadata(args) -> dict:
    import torch
    import ultralytics

    device = torch.cuda.get_device_name(0) if args.device != "cpu" else (platform.processor() or "cpu")
    return {"device": device, "torch": str(torch.__version__), "ultralytics": ultralytics.__version__,
            "python": platform.python_version(), "cpus": os.cpu_count(), "args": vars(args)}

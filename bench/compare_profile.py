"""Where the time of one `yolo-gd compare` trial goes: setup, data loading, training steps, validation, saving,
the final evaluation.

Runs one trial in this process with the compare spec's settings (yolo11n from scratch on the shapes set, 128 px,
batch 16) and timestamps Ultralytics' own callbacks:

    setup        on_pretrain_routine_start -> on_train_start (model, dataloaders, label cache, optimizer)
    data         per batch: previous on_train_batch_end (or epoch start) -> on_train_batch_start
                 (with workers=0, Ultralytics' CPU default, loading and augmenting run in the training thread)
    step         on_train_batch_start -> on_train_batch_end (forward, loss, backward, the optimizer step)
    validation   on_val_start -> on_val_end of the per-epoch validations
    save/other   on_train_epoch_end -> on_fit_epoch_end minus validation (EMA attrs, results.csv, checkpoints)
    final eval   last epoch's on_fit_epoch_end -> on_train_end (best.pt validated again, with plots when
                 plots=True; final_eval fires on_fit_epoch_end once more)

    python bench/compare_profile.py --optimizer adamw --lr 0.001 --out bench/results/compare_profile_cpu.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _common import metadata


class PhaseClock:
    """Seconds per phase, from the host's callbacks (no sync needed: CPU only)."""

    def __init__(self):
        self.t = defaultdict(float)
        self.mark = {}
        self.epochs = 0
        self.val_count = 0

    def _now(self):
        return time.perf_counter()

    def hooks(self) -> dict:
        return {
            "on_pretrain_routine_start": lambda tr: self.mark.update(start=self._now()),
            "on_train_start": self._train_start,
            "on_train_epoch_start": lambda tr: self.mark.update(prev=self._now()),
            "on_train_batch_start": self._batch_start,
            "on_train_batch_end": self._batch_end,
            "on_train_epoch_end": self._epoch_end,
            "on_fit_epoch_end": self._fit_epoch_end,
            "on_train_end": self._train_end,
        }

    def val_hooks(self) -> dict:
        return {"on_val_start": lambda v: self.mark.update(val=self._now()), "on_val_end": self._val_end}

    def _train_start(self, tr):
        self.t["setup"] += self._now() - self.mark["start"]

    def _batch_start(self, tr):
        now = self._now()
        self.t["data"] += now - self.mark["prev"]
        self.mark["batch"] = now

    def _batch_end(self, tr):
        now = self._now()
        self.t["step"] += now - self.mark["batch"]
        self.mark["prev"] = now

    def _epoch_end(self, tr):
        self.mark.update(epoch_end=self._now(), val_in_epoch=0.0, in_epoch=True)

    def _val_end(self, v):
        took = self._now() - self.mark["val"]
        self.val_count += 1
        if self.mark.get("in_epoch"):  # not the final evaluation of best.pt
            self.mark["val_in_epoch"] += took

    def _fit_epoch_end(self, tr):
        now = self._now()
        if not self.mark.get("in_epoch"):  # Ultralytics' final_eval fires it again after validating best.pt
            self.t["final eval"] += now - self.mark["fit_end"]
            self.mark["fit_end"] = now
            return
        self.epochs += 1
        self.t["validation per epoch"] += self.mark["val_in_epoch"]
        self.t["save/other"] += now - self.mark["epoch_end"] - self.mark["val_in_epoch"]
        self.mark.update(fit_end=now, in_epoch=False)

    def _train_end(self, tr):
        self.t["final eval"] += self._now() - self.mark["fit_end"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--optimizer", default="adamw")
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--data", default=None, help="data.yaml (default: the shapes set generated in a temp folder)")
    ap.add_argument("--plots", action="store_true", help="Ultralytics' plots=True (the compare trials' default)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from ultralytics import YOLO

    import yolo_gd
    from yolo_gd.datasets.shapes import generate_shapes

    work = Path(tempfile.mkdtemp(prefix="yolo_gd_profile_"))
    data = args.data or str(generate_shapes(work / "data", seed=0))
    clock = PhaseClock()
    model = YOLO("yolo11n.yaml")
    yolo_gd.attach(model, args.optimizer, lr=args.lr)
    for event, fn in {**clock.hooks(), **clock.val_hooks()}.items():
        model.add_callback(event, fn)
    t0 = time.perf_counter()
    model.train(data=data, epochs=args.epochs, imgsz=128, batch=16, nbs=16, seed=0, device="cpu",
                plots=args.plots, project=str(work / "runs"), name="trial", exist_ok=True, verbose=False)
    total = time.perf_counter() - t0
    phases = {k: round(v, 2) for k, v in clock.t.items()}
    phases["unaccounted"] = round(total - sum(clock.t.values()), 2)
    result = {"total_s": round(total, 2), "epochs": clock.epochs, "validations": clock.val_count,
              "phases_s": phases, "share": {k: round(v / total, 3) for k, v in phases.items()},
              **metadata(argparse.Namespace(device="cpu", **vars(args)))}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

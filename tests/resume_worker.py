"""Test-only worker for exact-resume tests: one tiny injected training in its own process, killed with SIGKILL
at a chosen moment, or resumed; at the end it dumps the raw and EMA weights for the test to compare.

    python resume_worker.py DATA PROJECT NAME KILL [RESUME_FROM]

KILL: none | mid_epoch:E:B (after batch B of epoch E) | validation:E (during epoch E's validation) |
between:E (after yolo_gd's state of epoch E is written, before the host's checkpoint of epoch E) |
in_write:E (inside the write of epoch E's last.pt: at the file write call, after the file was opened).
"""

from __future__ import annotations

import os
import signal
import sys

import torch

import yolo_gd

INJECT = dict(optimizer="adamw", schedule="cosine", lr=0.002)
ARGS = dict(epochs=4, imgsz=64, batch=8, nbs=32, workers=0, seed=0, deterministic=True, plots=False, verbose=False,
            amp=False, warmup_epochs=1, close_mosaic=1, exist_ok=False, save_period=1)  # nbs 32 / batch 8: windows cross epochs


def _kill(trainer=None, *args):
    os.kill(os.getpid(), signal.SIGKILL)


def killer(spec: str):
    kind, *where = spec.split(":")
    where = [int(w) for w in where]
    seen = {"batch": -1}

    def mid_epoch(trainer):
        seen["batch"] = seen["batch"] + 1 if trainer.epoch == where[0] else -1
        if trainer.epoch == where[0] and seen["batch"] == where[1]:
            _kill()

    def at_epoch(trainer):
        if trainer.epoch == where[0]:
            _kill()

    vals = {"n": 0}

    def in_validation(validator):  # the validator has no epoch: count validations (one per epoch, from epoch 0)
        vals["n"] += 1
        if vals["n"] == where[0] + 1:
            _kill()

    def in_write(trainer):  # wrap THIS trainer's save_model: during epoch E's save, kill at the last.pt write
        save = trainer.save_model

        def save_and_kill_inside():
            if trainer.epoch == where[0]:
                sys.setprofile(_kill_at_file_write("last.pt"))
            try:
                return save()
            finally:
                sys.setprofile(None)

        trainer.save_model = save_and_kill_inside

    return {"mid_epoch": ("on_train_batch_end", mid_epoch), "validation": ("on_val_start", in_validation),
            "between": ("on_train_epoch_end", at_epoch), "in_write": ("on_pretrain_routine_end", in_write)}[kind]


def _kill_at_file_write(name: str):
    """A profile function: SIGKILL at the C call ``write`` on a file whose name contains ``name`` (the file is
    already opened, so truncated when written in place)."""
    import io

    def profile(frame, event, arg):
        target = getattr(arg, "__self__", None)
        if event == "c_call" and getattr(arg, "__name__", "") == "write" and isinstance(target, io.BufferedWriter) \
                and name in os.path.basename(str(target.name)):
            _kill()

    return profile


def dump(trainer) -> None:
    from ultralytics.utils.torch_utils import unwrap_model

    torch.save({"model": unwrap_model(trainer.model).state_dict(), "ema": trainer.ema.ema.state_dict(),
                "updates": trainer.ema.updates}, trainer.save_dir / "final_weights.pt")


#: ``YOLO_GD_WORKER_MODE=observe``: observe-only with exact_resume=True, Ultralytics' own SGD (fp16 momentum
#: buffers in its checkpoint), nbs = batch so no accumulation window crosses an epoch; 3 epochs.
OBSERVE = dict(optimizer=None, exact_resume=True)
OBSERVE_ARGS = {**ARGS, "optimizer": "SGD", "lr0": 0.01, "nbs": 8, "epochs": 3}


def main(data, project, name, kill, resume_from=None):
    import json

    from ultralytics import YOLO

    observe = os.environ.get("YOLO_GD_WORKER_MODE") == "observe"
    # another optimizer or run shape for one test (e.g. test_sam.py): JSON objects merged over INJECT / ARGS
    inject = {**(OBSERVE if observe else INJECT), **json.loads(os.environ.get("YOLO_GD_WORKER_INJECT", "{}"))}
    args = {**(OBSERVE_ARGS if observe else ARGS), **json.loads(os.environ.get("YOLO_GD_WORKER_ARGS", "{}"))}
    model = YOLO(resume_from or "yolo11n.yaml")
    yolo_gd.attach(model, **inject)
    if kill != "none":
        model.add_callback(*killer(kill))
    model.add_callback("on_train_end", dump)
    if resume_from:
        model.train(resume=True)  # observe-only: exact_resume=True is passed again (attach above)
    else:
        model.train(data=data, project=project, name=name, **args)


if __name__ == "__main__":
    main(*sys.argv[1:])

"""``resume=True epochs=N``: continue an interrupted or finished injected run to N epochs.

Ultralytics refuses both (it ignores ``epochs`` on resume, and a finished ``last.pt`` has its optimizer stripped and
``epoch=-1``). yolo_gd writes a resumable copy of the checkpoint beside it, ``weights/extend_to{N}.pt``: the same
file with ``train_args.epochs = N`` and, for a finished run, the epoch of yolo_gd's newest state and a placeholder
optimizer entry taken from that state (the injected optimizer's fp32 state comes from yolo_gd's own state file;
the host's copy is never loaded into it). Resuming from that copy is then a normal resume on every DDP rank. The schedule is re-planned at
the resume step (optim/replan.py: the rest of the decay is stretched over the new length) and the plan history is
recorded in ``yolo_gd_run.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from yolo_gd.errors import UserError
from yolo_gd.inject.state import read_state, saved_epochs


def prepare_extension(checkpoint: str | Path, epochs: int) -> Path:
    """Write ``extend_to{epochs}.pt`` beside ``checkpoint``; return its path."""
    checkpoint = Path(checkpoint)
    if not checkpoint.exists():
        raise UserError(f"resume checkpoint {checkpoint} does not exist: pass model=<run>/weights/last.pt")
    # Ultralytics' own checkpoint: loading it unpickles (its trust boundary, as for any Ultralytics .pt).
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    done = saved_epochs(checkpoint.parent)
    epoch = ckpt.get("epoch", -1)
    if epoch is None or epoch < 0:  # finished: final_eval stripped the optimizer
        if not done:
            raise UserError(f"{checkpoint} is a finished run without yolo_gd's state: it cannot be extended; start "
                            f"a new run from it (model=...pt without resume)")
        epoch = done[-1]
        # Non-None, so Ultralytics treats the copy as resumable; a DDP rank >= 1 loads it into its own optimizer.
        ckpt["optimizer"] = read_state(checkpoint.parent, epoch)["optimizer"]
    if int(epochs) <= epoch + 1:
        raise UserError(f"epochs={epochs} does not extend the run: {epoch + 1} epochs are already trained; "
                        f"pass a larger epochs")
    ckpt["epoch"] = epoch
    # A finished checkpoint's train_args lost save_dir (strip_optimizer keeps only cfg keys): the run continues in
    # the folder it was trained in, the one holding this checkpoint's weights/.
    ckpt["train_args"] = {**ckpt.get("train_args", {}), "epochs": int(epochs),
                          "save_dir": str(checkpoint.resolve().parent.parent)}
    out = checkpoint.parent / f"extend_to{int(epochs)}.pt"
    tmp = out.with_name(out.name + ".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(out)
    return out

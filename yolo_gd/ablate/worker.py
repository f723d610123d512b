"""One trial in its own process: ``python -m yolo_gd.ablate.worker TRIAL_JSON``.

``TRIAL_JSON`` holds ``{"name", "dir", "kwargs"}``; ``kwargs`` are what ``yolo_gd.train`` gets (with absolute
``project`` = the sweep folder, ``name`` = the trial, ``exist_ok=True``, ``device``).

- ``<dir>/weights/last.pt`` with ``epoch != -1``: an interrupted trial; it resumes
  (``yolo_gd.train(model=last.pt, resume=True, <the same yolo_gd keys>, device=..., workers=...)``).
- ``last.pt`` with ``epoch == -1``: Ultralytics finished it (the final strip sets -1); nothing to do.
- no (readable) ``last.pt``: trains from scratch, after clearing what an earlier, killed attempt left in the
  folder (``trial.log`` and ``trial.json`` stay).

Exit code 0 on success; a :class:`UserError` prints one line and exits 2; anything else prints the traceback and
exits 1.
"""

from __future__ import annotations

import json
import shutil
import sys
import traceback
from pathlib import Path

from yolo_gd import _offline  # noqa: F401  (before Ultralytics is imported)
from yolo_gd.errors import UserError

KEEP = ("trial.log", "trial.json")
#: Ultralytics keys a resume may change (``BaseTrainer.check_resume``) that the runner sets per attempt.
RESUME_KEYS = ("device", "workers")


def checkpoint_epoch(last: Path) -> int | None:
    """The ``epoch`` stored in ``last`` (-1: finished), or None if the file cannot be read (killed mid-write)."""
    import torch

    try:
        ckpt = torch.load(last, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001  (truncated zip, unpickling error...)
        print(f"yolo_gd ablate: {last} is unreadable ({type(e).__name__}: {e}): starting the trial over", flush=True)
        return None
    return int(ckpt.get("epoch", -1)) if isinstance(ckpt, dict) else None


def _clear(trial_dir: Path) -> None:
    if not trial_dir.is_dir():
        return
    for child in trial_dir.iterdir():
        if child.name in KEEP:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def share_cpu() -> None:
    """With ``YOLO_GD_CPU_THREADS`` set (several trials share the CPU), train on that many torch threads.

    Ultralytics calls ``torch.set_num_threads(NUM_THREADS)`` in ``select_device`` (the trainer's, and the final
    evaluation's), so setting torch's count here would be undone: this sets the value it reads, in this trial's
    own process only."""
    import os

    from yolo_gd.ablate.processes import THREADS_ENV

    threads = os.environ.get(THREADS_ENV)
    if threads:
        import torch
        from ultralytics.utils import torch_utils

        torch_utils.NUM_THREADS = int(threads)
        torch.set_num_threads(int(threads))
        print(f"yolo_gd ablate: {threads} CPU thread(s) for this trial (the CPU is shared)", flush=True)


def tracker_env(trial: dict, environ) -> dict[str, str]:
    """Environment that labels this trial's tracker runs: the sweep, config and seed as tags and its axes as
    parameters (see inject/trackers.py), and the sweep as the W&B group (``WANDB_RUN_GROUP``, unless the user set
    one). The sweep's MLflow parent run comes from the runner's own environment (``YOLO_GD_MLFLOW_PARENT``)."""
    from yolo_gd.inject.trackers import AXES_ENV, SWEEP_ENV

    env = {name: str(trial[key]) for key, name in SWEEP_ENV.items() if trial.get(key) is not None}
    if trial.get("axes"):
        env[AXES_ENV] = json.dumps(trial["axes"], sort_keys=True)
    if trial.get("sweep") and not environ.get("WANDB_RUN_GROUP"):
        env["WANDB_RUN_GROUP"] = str(trial["sweep"])
    return env


def run_trial(trial: dict) -> str:
    """Train, resume or skip one trial; returns what it did: ``'trained'``, ``'resumed'`` or ``'finished'``."""
    import os

    from yolo_gd.training import split_keys, train

    os.environ.update(tracker_env(trial, os.environ))
    name, trial_dir = trial["name"], Path(trial["dir"])
    kwargs = dict(trial["kwargs"])
    last = trial_dir / "weights" / "last.pt"
    epoch = checkpoint_epoch(last) if last.is_file() else None
    if epoch == -1:
        print(f"yolo_gd ablate: trial {name} already finished ({last} has epoch -1): nothing to do", flush=True)
        return "finished"
    if epoch is not None:
        print(f"yolo_gd ablate: Resuming trial {name} from {last} ({epoch + 1} epochs done)", flush=True)
        ours, theirs = split_keys(kwargs)
        extra = {k: theirs[k] for k in RESUME_KEYS if k in theirs}
        train(model=str(last), resume=True, **ours, **extra)
        return "resumed"
    _clear(trial_dir)
    print(f"yolo_gd ablate: training trial {name} into {trial_dir}", flush=True)
    train(**kwargs)
    return "trained"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print("usage: python -m yolo_gd.ablate.worker TRIAL_JSON", file=sys.stderr)
        return 2
    try:
        trial = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
        share_cpu()
        run_trial(trial)
    except UserError as e:
        print(f"yolo_gd: error: {e}", file=sys.stderr, flush=True)
        return 2
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        sys.stderr.flush()
        return 1
    print("yolo_gd ablate: trial finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

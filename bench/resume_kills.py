"""Kill an injected run with SIGKILL at N random moments, resume each, and count the bit-identical endings.

    python bench/resume_kills.py [--kills 20] [--seed 0] [--out bench/results/resume_kills_cpu.json]

Drives ``tests/resume_worker.py`` (a tiny deterministic adamw + cosine run on the shapes set, 4 epochs at 64 px,
batch 8, nbs 32, close_mosaic 1, workers 0): one uninterrupted run, then for each kill a fresh run killed from
outside at a moment drawn uniformly between its first and its last epoch's checkpoint (as timed on the
uninterrupted run), then resumed from its ``last.pt``.
A resume is bit-identical when the final raw weights, EMA weights, EMA update count, results.csv training losses
and the kept step-table rows all equal the uninterrupted run's. A kill before the first checkpoint has nothing to
resume and is not drawn; a kill that lands after training ended (final evaluation) is counted apart. Not a CI test: it takes about 20 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "resume_worker.py"
sys.path.insert(0, str(ROOT / "bench"))
from _common import metadata  # noqa: E402

from yolo_gd.datasets.shapes import generate_shapes  # noqa: E402
from yolo_gd.telemetry.sinks import read_steps  # noqa: E402

EPOCHS = 4  # tests/resume_worker.py ARGS
SAME = ["step", "epoch", "batch", "attempt", "loss_backprop", "grad_norm", "clip_coef", "lr/weight", "lr/bias"]


def _cmd(*args) -> list[str]:
    return [sys.executable, str(WORKER), *map(str, args)]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(WORKER.parent), "YOLO_OFFLINE": "1"}


def _losses(run: Path) -> pd.DataFrame:
    df = pd.read_csv(run / "results.csv")
    return df[[c for c in df.columns if c == "epoch" or c.startswith("train/")]]


def same_run(a: Path, b: Path) -> tuple[bool, str]:
    wa = torch.load(a / "final_weights.pt", weights_only=True)
    wb = torch.load(b / "final_weights.pt", weights_only=True)
    if wa["updates"] != wb["updates"]:
        return False, f"EMA updates {wa['updates']} vs {wb['updates']}"
    for part in ("model", "ema"):
        diff = [k for k in wa[part] if not torch.equal(wa[part][k], wb[part][k])]
        if diff:
            return False, f"{part}: {len(diff)} tensors differ"
    if not _losses(a).equals(_losses(b)):
        return False, "results.csv training losses differ"
    sa, sb = (read_steps(r, latest_only=True)[SAME] for r in (a, b))
    if not sa.reset_index(drop=True).equals(sb.reset_index(drop=True)):
        return False, "step rows differ"
    return True, ""


def _start(data: Path, project: Path, name: str, *resume) -> subprocess.Popen:
    return subprocess.Popen(_cmd(data, project, name, "none", *resume), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _wait_for(path: Path, proc: subprocess.Popen) -> float:
    """Seconds until ``path`` exists (or the process ended)."""
    t0 = time.perf_counter()
    while not path.exists() and proc.poll() is None:
        time.sleep(0.05)
    return time.perf_counter() - t0


def kill_once(data: Path, project: Path, name: str, fraction: float, span: float, first: float) -> dict:
    """Start a run, wait for its first checkpoint, kill it ``fraction`` of the way to its last one, resume it.

    The way to the last checkpoint is ``span`` seconds on the uninterrupted run, scaled by how long this run took
    to its first checkpoint against that run (the machine's load varies between runs)."""
    proc = _start(data, project, name)
    last = project / name / "weights" / "last.pt"
    scale = _wait_for(last, proc) / first
    time.sleep(fraction * span * scale)
    if proc.poll() is not None:
        return {"fraction": fraction, "outcome": "finished before the kill"}
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    epoch = torch.load(last, weights_only=False).get("epoch")
    if epoch is None or epoch < 0 or epoch + 1 >= EPOCHS:
        return {"fraction": fraction, "outcome": "killed after the last epoch's checkpoint: nothing to resume"}
    (project / name / "final_weights.pt").unlink(missing_ok=True)
    resumed = subprocess.run(_cmd(data, project, name, "none", last), env=_env(), capture_output=True, text=True)
    if resumed.returncode != 0:
        return {"fraction": fraction, "outcome": "resume failed", "error": resumed.stderr[-400:]}
    return {"fraction": fraction, "outcome": "resumed", "resumed_from_epoch": epoch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "resume_kills_cpu.json"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="resume_kills_"))
    data = generate_shapes(work / "shapes", n_train=48, n_val=16, imgsz=64, seed=0)
    full = _start(data, work, "full")
    weights = work / "full" / "weights"
    first = _wait_for(weights / "last.pt", full)
    t0 = time.perf_counter()
    _wait_for(weights / f"epoch{EPOCHS - 1}.pt", full)  # save_period=1: the last epoch's checkpoint
    span = time.perf_counter() - t0  # first to last checkpoint: where a kill leaves something to resume
    if full.wait() != 0:
        raise SystemExit("the uninterrupted run failed")
    rng, results = random.Random(args.seed), []
    for k in range(args.kills):
        r = kill_once(data, work, f"kill{k}", rng.random(), span, first)
        if r["outcome"] == "resumed":
            r["bit_identical"], r["why_not"] = same_run(work / "full", work / f"kill{k}")
        results.append(r)
        print(f"[{k + 1}/{args.kills}] {r}", flush=True)
    resumed = [r for r in results if r["outcome"] == "resumed"]
    summary = {"kills": args.kills, "resumed": len(resumed),
               "bit_identical": sum(r["bit_identical"] for r in resumed),
               "first_checkpoint_s": round(first, 1), "after_first_checkpoint_s": round(span, 1)}
    Path(args.out).write_text(json.dumps({"summary": summary, "kills": results, "note": args.note, **metadata(args)}, indent=2))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

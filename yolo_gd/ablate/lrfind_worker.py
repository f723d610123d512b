"""``protocol: lrfind``'s range tests side by side: one process per slot, like the trials.

Parent side, :func:`run_side_by_side`: writes each test's job (``lrfind/<config>/job.json``: lr_find's keywords and
the fallback LR), starts ``python -m yolo_gd.ablate.lrfind_worker JOB`` in its own session with its output in
``lrfind.log`` and the slot's CPU thread share, waits for all, and reads each ``result.json`` (the manifest
record, :func:`~yolo_gd.ablate.lrfind_stage.range_test_record`). A worker that dies without a result (a bug, a
kill) is an error naming its log; an interrupt stops every worker. Child side, :func:`main`.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from yolo_gd import _offline  # noqa: F401  (before Ultralytics is imported)

__all__ = ["main", "run_side_by_side"]

JOB, RESULT, LOG = "job.json", "result.json", "lrfind.log"


def _start(job: Path, threads: int | None):
    from yolo_gd.ablate.processes import THREADS_ENV, child_env, pdeathsig_fn
    import subprocess

    env = child_env()
    if threads is not None:
        env[THREADS_ENV] = str(threads)
    log = open(job.parent / LOG, "wb")  # noqa: SIM115  (closed when the worker ends)
    proc = subprocess.Popen([sys.executable, "-m", "yolo_gd.ablate.lrfind_worker", str(job)], env=env,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=pdeathsig_fn())
    return proc, log


def _result(name: str, out: Path, code: int) -> dict:
    result = out / RESULT
    if code == 0 and result.is_file():
        return json.loads(result.read_text(encoding="utf-8"))
    from yolo_gd.ablate.processes import log_tail

    raise RuntimeError(f"the range test of {name} ended with exit code {code} and no result; its log "
                       f"({out / LOG}) ends:\n{log_tail(out / LOG, 0)}")


def resolve_inputs(kw: dict) -> dict:
    """``kw`` with its dataset resolved (``shapes`` generated) and its checkpoint fetched, here in the parent: two
    workers generating the default dataset at once replaced its folder under each other (one test failed its
    dataset check with 188 problems)."""
    from yolo_gd._offline import fetch_weights
    from yolo_gd.datasets.check import resolve_data

    out = dict(kw, data=str(resolve_data(kw.get("data", "shapes"))))
    if "model" in kw and isinstance(kw["model"], str):
        out["model"] = fetch_weights(kw["model"])
    return out


def run_side_by_side(jobs: Sequence[tuple[str, dict, float | None]], threads: int | None) -> list[tuple[str, dict]]:
    """Run ``(config name, lr_find keywords with out, fallback LR)`` jobs at once; ``(name, record)`` in order."""
    from yolo_gd.ablate.processes import kill_group

    running = []
    try:
        for name, kw, fallback in jobs:
            out = Path(kw["out"])
            out.mkdir(parents=True, exist_ok=True)
            (out / RESULT).unlink(missing_ok=True)
            job = out / JOB
            kw = {**resolve_inputs(kw), "out": str(out)}
            job.write_text(json.dumps({"kwargs": kw, "fallback_lr": fallback}, default=str), encoding="utf-8")
            running.append((name, out, *_start(job, threads)))
        while any(proc.poll() is None for _, _, proc, _ in running):
            time.sleep(0.5)
    except BaseException:
        for _, _, proc, _ in running:
            kill_group(proc.pid)
        raise
    finally:
        for _, _, _, log in running:
            log.close()
    return [(name, _result(name, out, proc.returncode)) for name, out, proc, _ in running]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print("usage: python -m yolo_gd.ablate.lrfind_worker JOB_JSON", file=sys.stderr)
        return 2
    from yolo_gd.ablate.lrfind_record import range_test_record
    from yolo_gd.ablate.worker import share_cpu

    job_path = Path(argv[0])
    try:
        job = json.loads(job_path.read_text(encoding="utf-8"))
        share_cpu()
        rec = range_test_record(job["kwargs"], job["fallback_lr"])
    except Exception:  # noqa: BLE001  (a bug: the parent reports the log's tail)
        traceback.print_exc()
        return 1
    tmp = job_path.parent / (RESULT + ".tmp")
    tmp.write_text(json.dumps(rec, indent=1), encoding="utf-8")
    os.replace(tmp, job_path.parent / RESULT)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`yolo-gd compare` end to end (dataset generation, both trials, the report), variants run one after the other
in one invocation, each in a fresh folder, so before/after are measured side by side on the same machine.

    python bench/compare_time.py --out bench/results/compare_time_cpu.json
    python bench/compare_time.py --variants after          # only today's default

Variants:
    before  the compare of the first wave: bench/sgd_vs_adam_before.yaml, workers=1 (trials one after the other)
    wave2   the compare of the second wave: bench/sgd_vs_adam_wave2.yaml (fixed LRs, one seed), workers=2
    after   `yolo-gd compare` as shipped now (its own defaults)

Each variant's phases come from its manifest's clock times: setup (start to the first range test or trial, data
generation included), range tests (side by side), trials (first start to last finish), report (last finish to
exit).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = {
    "before": ["ablate", str(HERE / "sgd_vs_adam_before.yaml"), "workers=1"],
    "wave2": ["ablate", str(HERE / "sgd_vs_adam_wave2.yaml"), "workers=2"],
    "after": ["compare"],
}


def run_variant(name: str, argv: list[str]) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"yolo_gd_compare_{name}_"))
    env = dict(os.environ, YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(work / "cfg"))
    cmd = [sys.executable, "-m", "yolo_gd.cli", *argv]
    t0, wall0 = time.perf_counter(), time.time()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    total = time.perf_counter() - t0
    (work / "stdout.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"{name}: exit {proc.returncode}; output in {work / 'stdout.txt'}")
    manifest = next((work / "runs" / "ablate").glob("*/manifest.json"))
    m = json.loads(manifest.read_text())
    trials = m["trials"]
    out = {"total_s": round(total, 1), "argv": argv, "lines": len(proc.stdout.splitlines()),
           "phases_s": phases(m, wall0, wall0 + total), "range_tests": {
               c: {"lr": r["lr"], "rule": r["rule"], "seconds": r["seconds"]} for c, r in (m.get("lrfind") or {}).items()},
           "trials": {}}
    for tname, t in trials.items():
        rows = (Path(t["dir"]) / "results.csv").read_text().splitlines()
        header, last = rows[0].split(","), rows[-1].split(",")
        m50 = float(last[header.index("metrics/mAP50(B)")])
        out["trials"][tname] = {"elapsed_s": round(t["elapsed"], 1), "mAP50": m50, "epochs": len(rows) - 1,
                                "shared_device": t["shared_device"]}
    return out


def phases(m: dict, start: float, end: float) -> dict:
    """Seconds of setup, range tests, trials and report from the manifest's clock times (see the docstring)."""
    trials = m["trials"].values()
    first = min(t["started"] for t in trials)
    last = max(t["finished"] for t in trials)
    tests = sum(r["seconds"] for r in (m.get("lrfind") or {}).values()) / max(1, len(m.get("lrfind") or {}))
    return {"setup and range tests": round(first - start, 1), "range tests (side by side, mean)": round(tests, 1),
            "trials": round(last - first, 1), "report": round(end - last, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="wave2,after")
    ap.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import platform

    import torch
    import ultralytics

    result = {"cpus": os.cpu_count(), "torch": torch.__version__, "ultralytics": ultralytics.__version__,
              "python": platform.python_version(), "note": args.note, "variants": {}}
    for name in args.variants.split(","):
        print(f"[compare_time] {name}: {' '.join(VARIANTS[name])}", flush=True)
        result["variants"][name] = run_variant(name, VARIANTS[name])
        print(json.dumps(result["variants"][name], indent=1), flush=True)
    v = result["variants"]
    for old in ("before", "wave2"):
        if {old, "after"} <= set(v):
            result[f"after_over_{old}"] = round(v["after"]["total_s"] / v[old]["total_s"], 3)
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

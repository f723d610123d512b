"""Does `yolo-gd compare`'s ranking hold with other seeds? The shipped compare spec, run end to end (range tests
included) once per seed pair, each in a fresh folder, one after the other.

    python bench/compare_stability.py --pairs 0,1 2,3 4,5 6,7 --out bench/results/compare_stability_cpu

Per run it stores the range tests' LRs, each optimizer's final mAP50 / mAP50-95 per seed, the verdict sentence the
compare printed, and whether the ranking (the leader by mean final mAP50-95) is the same as the first run's. mAP
is deterministic per seed on a CPU, so load from other work changes the wall times only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import trackers_off_in  # noqa: E402

SPEC = HERE.parent / "configs" / "sgd_vs_adam.yaml"


def run_pair(seeds: list[int]) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"yolo_gd_stability_{'_'.join(map(str, seeds))}_"))
    spec = yaml.safe_load(SPEC.read_text())
    spec["name"], spec["seeds"] = f"{spec['name']}_s{'_'.join(map(str, seeds))}", seeds
    (work / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    env = dict(os.environ, YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(work / "cfg"))
    trackers_off_in(work / "cfg")  # as in the wheel's venv, which has no tracker packages
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "yolo_gd.cli", "ablate", str(work / "spec.yaml"), "workers=2"],
                          cwd=work, env=env, capture_output=True, text=True)
    total = time.perf_counter() - t0
    (work / "stdout.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"seeds {seeds}: exit {proc.returncode}; output in {work / 'stdout.txt'}")
    sweep = next((work / "runs" / "ablate").glob("*/manifest.json")).parent
    m = json.loads((sweep / "manifest.json").read_text())
    import pandas as pd

    trials = pd.read_csv(sweep / "report" / "trials.csv")
    verdict = [ln for ln in proc.stdout.splitlines() if re.match(r"(Not r|R)esolved at this budget", ln)]
    per = {c: {"lr": m["lrfind"][c]["lr"], "rule": m["lrfind"][c]["rule"],
               "final_map50": g["final_map50"].round(4).tolist(), "final_map50_95": g["final_map50_95"].round(4).tolist()}
           for c, g in trials.groupby("config", sort=False)}
    leader = max(per, key=lambda c: sum(per[c]["final_map50_95"]) / len(per[c]["final_map50_95"]))
    return {"seeds": seeds, "total_s": round(total, 1), "configs": per, "leader": leader,
            "verdict": verdict[0] if verdict else None, "folder": str(sweep)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", nargs="+", default=["0,1", "2,3", "4,5", "6,7"])
    ap.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    ap.add_argument("--out", required=True, help="folder for stability.json")
    args = ap.parse_args()
    runs = []
    for pair in args.pairs:
        seeds = [int(s) for s in pair.split(",")]
        print(f"[stability] seeds {seeds}", flush=True)
        runs.append(run_pair(seeds))
        print(json.dumps(runs[-1], indent=1), flush=True)
    leaders = {r["leader"] for r in runs}
    result = {"spec": str(SPEC.relative_to(HERE.parent)), "note": args.note, "runs": runs,
              "ranking_held": len(leaders) == 1, "leaders": sorted(leaders)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "stability.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("ranking_held", "leaders")}))


if __name__ == "__main__":
    main()

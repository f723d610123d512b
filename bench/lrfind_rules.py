"""Which suggestion rule would have held? Every rule of yolo_gd.lrfind.rangetest, re-applied to the stored range
tests of bench/lrfind_grid.py, against the best LR of the stored grid of short full trainings around them.

No training runs: it reads ``bench/results/lrfind_grid_<setting>_cpu/{sgd,adamw}_lrfind.csv`` (the probe signal the
test recorded) and ``validation.json`` (the grid's final mAP50-95 per LR and seed), so it takes a second and its
output is a pure function of the stored files.

    python bench/lrfind_rules.py --out bench/results/lrfind_rules_cpu

For each setting x optimizer x rule: the rule's LR, the grid's best LR over it (> 1: the rule is too timid), and
whether that is within a factor 3 either way. The rules are :func:`~yolo_gd.lrfind.rangetest.assess`'s (half-fall,
yolo_gd's) and the three it records beside it (fastai's valley and minimum/10, Lightning's steepest).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from yolo_gd.lrfind import rangetest

SETTINGS = ("shapes", "bccd", "finetune")
OPTIMIZERS = ("sgd", "adamw")
RULES = ("half-fall", "valley", "min/10", "steepest")
WITHIN = 3.0


def rule_lrs(csv: Path, suggestion: Path) -> dict[str, float | None]:
    """Each rule's LR on one stored range test: its probe signal, judged as the test judged it (smoothing, planned
    steps and whether it stopped at divergence, from the stored ``suggestion.json``)."""
    d = pd.read_csv(csv)
    s = json.loads(suggestion.read_text())
    v = rangetest.assess(d["lr"].to_numpy(), d["signal"].to_numpy(), s["stopped_at_divergence"],
                         beta=rangetest.PROBE_BETA, planned=s["conditions"]["steps_planned"])
    return {"half-fall": v.lr, **{k: v.others.get(k) for k in RULES[1:]}}


def judge(best_lr: float, lr: float | None) -> dict:
    """The grid's best over the rule's LR, and whether it is within :data:`WITHIN` either way (None: no LR)."""
    if lr is None:
        return {"lr": None, "best_over_rule": None, "within_3x": False}
    ratio = best_lr / lr
    return {"lr": lr, "best_over_rule": float(f"{ratio:.3g}"), "within_3x": bool(1 / WITHIN <= ratio <= WITHIN)}


def rows(results: Path) -> list[dict]:
    out = []
    for setting in SETTINGS:
        folder = results / f"lrfind_grid_{setting}_cpu"
        verdicts = {v["optimizer"]: v for v in json.loads((folder / "validation.json").read_text())["verdicts"]}
        for opt in OPTIMIZERS:
            best = float(verdicts[opt]["best_lr"])
            lrs = rule_lrs(folder / f"{opt}_lrfind.csv", folder / f"{opt}_suggestion.json")
            out += [{"setting": setting, "optimizer": opt, "grid_best": best, "rule": r, **judge(best, lrs[r])}
                    for r in RULES]
    return out


def table(df: pd.DataFrame) -> str:
    lines = ["| setting | optimizer | grid's best | " + " | ".join(RULES) + " |", "|---|---|---|" + "---|" * len(RULES)]
    for (setting, opt), g in df.groupby(["setting", "optimizer"], sort=False):
        cells = []
        for r in RULES:
            row = g[g.rule == r].iloc[0]
            flag = "" if row.within_3x else ", out"
            none = row.lr is None or np.isnan(row.lr)
            cells.append("none" if none else f"{row.lr:.3g} ({row.best_over_rule:g}x{flag})")
        lines.append(f"| {setting} | {opt} | {g.grid_best.iloc[0]:.3g} | " + " | ".join(cells) + " |")
    counts = df.groupby("rule", sort=False).within_3x.sum()
    n = len(SETTINGS) * len(OPTIMIZERS)
    lines.append("| within 3x | | | " + " | ".join(f"{int(counts[r])} of {n}" for r in RULES) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default=str(HERE / "results"))
    ap.add_argument("--out", default=None, help="folder for rules.json and rules.md")
    args = ap.parse_args()
    df = pd.DataFrame(rows(Path(args.results)))
    md = table(df)
    print(md)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rules.json").write_text(json.dumps(df.to_dict("records"), indent=1) + "\n")
        (out / "rules.md").write_text(md + "\n")


if __name__ == "__main__":
    main()

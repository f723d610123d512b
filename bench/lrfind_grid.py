"""Does the range test's verdict hold? Range tests, then a grid of short full trainings around each verdict.

Three settings (``--setting``), each at batch 8, nbs 8, a tiny budget of ``--epochs`` epochs (mosaic closed
throughout, as Ultralytics' close_mosaic=10 does for runs of 10 epochs or fewer), seeds 0 and 1:

- ``shapes``: the default generated shapes set (256 train + 64 val images), yolo11n.yaml from scratch, 128 px;
- ``bccd``: BCCD (292 train + 72 val real blood-cell images), yolo11n.yaml from scratch, 128 px;
- ``finetune``: BCCD, fine-tuning the pretrained fixture (``bench/fetch_pretrained.py``: a YOLOv8s-sized
  detector trained on another task), 96 px, 3 epochs: the product's main use.

Per optimizer (SGD, AdamW):

1. the range test under the trials' conditions (yolo_gd.ablate.lrfind_stage.range_test_kwargs, as
   ``protocol: lrfind`` would run it);
2. a centre: the suggestion, or the optimizer's registry default when there is none (what the sweep falls back to);
3. 4 LRs a factor 3 apart around it (centre x 3^-1.5, 3^-0.5, 3^0.5, 3^1.5), each trained with both seeds by the
   ablation runner (2 trials side by side), scored by final mAP50-95 on the val split.

    PYTHONPATH=$PWD python bench/lrfind_grid.py --setting shapes --out bench/results/lrfind_grid_shapes_cpu
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401  (offline env before Ultralytics is imported)

FACTORS = (3**-1.5, 3**-0.5, 3**0.5, 3**1.5)
COMMON = {"imgsz": 128, "batch": 8, "nbs": 8, "workers": 0}
# The fixture is YOLOv8s-sized (~4x yolo11n's compute), so fine-tuning runs at 96 px for 3 epochs to keep its grid
# of 16 trainings within ~45 minutes on 2 CPU cores.
SETTINGS = {"shapes": {"model": "yolo11n.yaml", "data": "shapes"},
            "bccd": {"model": "yolo11n.yaml", "data": "bccd"},
            "finetune": {"model": None, "data": "bccd", "imgsz": 96, "epochs": 3}}  # model: the pretrained fixture


def base_for(setting: str) -> dict:
    base = {**COMMON, **SETTINGS[setting]}
    if base["model"] is None:
        from fetch_pretrained import fetch

        base["model"] = str(fetch())
    return base


def range_test(base: dict, optimizer: str, epochs: int, out: Path) -> dict:
    from yolo_gd.ablate.lrfind_stage import range_test_kwargs
    from yolo_gd.ablate.spec import Config
    from yolo_gd.lrfind.run import lr_find
    from yolo_gd.optim.registry import resolve_optimizer

    config = Config(optimizer, optimizer, {**base, "optimizer": optimizer})
    kw = range_test_kwargs(config, 0, epochs, "cpu")
    res = lr_find(out=out / f"lrfind_{optimizer}", **kw)
    v = res.suggestion
    centre = v.lr if v.lr is not None else resolve_optimizer(optimizer).default_lr
    return {"optimizer": optimizer, "suggested": v.lr, "reason": v.reason, "verdict": v.text(), "centre": centre,
            "seconds": round(res.seconds, 1), "steps": res.steps, "conditions": res.conditions,
            "fall": v.fall, "start": v.start, "uncertainty": v.uncertainty}


def grid_spec(base: dict, tests: list[dict], epochs: int) -> str:
    entries = []
    for t in tests:
        for f in FACTORS:
            lr = float(f"{t['centre'] * f:.3g}")
            entries.append(f"    - {{name: {t['optimizer']}, lr: {lr}, label: {t['optimizer']}-lr{lr:g}}}")
    fields = ", ".join(f"{k}: {v}" for k, v in base.items())
    return (f"name: lrfind_grid\nbase: {{{fields}}}\naxes:\n  optimizer:\n" + "\n".join(entries) +
            f"\nseeds: [0, 1]\nbudget: {{epochs: {epochs}}}\nprotocol: fixed\n")


def grid_rows(summary, optimizer: str):
    """The summary rows of ``optimizer``'s grid (configs ``<optimizer>-lr<LR>``) with their LR, by LR."""
    rows = summary[summary["config"].str.startswith(optimizer + "-lr")].copy()
    rows["lr"] = [float(c.split("-lr")[1]) for c in rows["config"]]
    return rows.sort_values("lr")


def plot(tests: list[dict], summary, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4))
    for i, t in enumerate(tests):
        ax = fig.add_subplot(1, len(tests), i + 1)
        rows = grid_rows(summary, t["optimizer"])
        ax.errorbar(rows["lr"], rows["final_map50_95_mean"], yerr=rows["final_map50_95_std"].fillna(0), fmt="o-",
                    capsize=3)
        label = f"suggested {t['suggested']:.3g}" if t["suggested"] else f"no suggestion ({t['reason']}): default"
        ax.axvline(t["centre"], color="C3", ls="--", label=label)
        ax.set_xscale("log")
        ax.set_title(t["optimizer"])
        ax.set_xlabel("LR (log)")
        ax.set_ylabel("final mAP50-95 (mean +- std, 2 seeds)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def judge(tests: list[dict], summary) -> list[dict]:
    """Per optimizer: the grid's best LR (mean final mAP50-95 over seeds) against the range test's centre. The grid
    is centre x 3^(-1.5, -0.5, 0.5, 1.5): the best within a factor 3 of the centre means an inner point; an edge
    point means the grid did not bracket the best (it may lie further out)."""
    verdicts = []
    for t in tests:
        rows = grid_rows(summary, t["optimizer"])
        best = rows.loc[rows["final_map50_95_mean"].idxmax()]
        ratio = float(best["lr"]) / t["centre"]
        verdicts.append({
            "optimizer": t["optimizer"], "suggested": t["suggested"], "reason": t["reason"], "centre": t["centre"],
            "grid": {f"{lr:g}": [round(float(m), 4), round(float(m50), 4)] for lr, m, m50 in
                     zip(rows["lr"], rows["final_map50_95_mean"], rows["final_map50_mean"])},
            "best_lr": float(best["lr"]), "best_over_centre": round(ratio, 3),
            "within_3x": max(ratio, 1 / ratio) <= 3, "bracketed": best["lr"] not in (rows["lr"].min(), rows["lr"].max()),
        })
    return verdicts


def finish(out: Path, setting: str, tests: list[dict], summary) -> dict:
    """Write grid_summary.csv, grid.png and validation.json (the judgement) into ``out``; copy each range test's
    curve and suggestion beside them."""
    import shutil

    summary.to_csv(out / "grid_summary.csv", index=False)
    plot(tests, summary, out / "grid.png")
    for t in tests:
        test_dir = out / "work" / f"lrfind_{t['optimizer']}"
        for name, target in (("lrfind.png", "lrfind.png"), ("lrfind.csv", "lrfind.csv"),
                             ("suggestion.json", "suggestion.json")):
            if (test_dir / name).exists():
                shutil.copy(test_dir / name, out / f"{t['optimizer']}_{target}")
    result = {"setting": setting, "verdicts": judge(tests, summary)}
    (out / "validation.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    return result


def main() -> None:
    import pandas as pd

    from yolo_gd.ablate.runner import run_sweep
    from yolo_gd.report import build_report

    ap = argparse.ArgumentParser()
    ap.add_argument("--setting", choices=sorted(SETTINGS), default="shapes")
    ap.add_argument("--out", default=None, help="default bench/results/lrfind_grid_<setting>_cpu")
    ap.add_argument("--epochs", type=int, default=5, help="unless the setting fixes its own")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--judge-only", action="store_true", help="re-judge the stored range tests and grid summary")
    ap.add_argument("--extra", action="append", default=[],
                    help="with --judge-only: the grid_summary.csv of a further sweep of the same setting (more LRs, "
                         "configs named <optimizer>-lr<LR>), judged with the grid and merged into grid_summary.csv")
    a = ap.parse_args()
    out = Path(a.out or f"bench/results/lrfind_grid_{a.setting}_cpu").resolve()
    if a.judge_only:
        tests = json.loads((out / "range_tests.json").read_text())
        summary = pd.concat([pd.read_csv(p) for p in [out / "grid_summary.csv", *a.extra]], ignore_index=True)
        summary = summary.drop_duplicates("config")  # grid_summary.csv holds the extras after a first judgement
        print(json.dumps(finish(out, a.setting, tests, summary), indent=1))
        return
    base = base_for(a.setting)
    epochs = base.pop("epochs", a.epochs)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    tests = [range_test(base, opt, epochs, out / "work") for opt in ("sgd", "adamw")]
    (out / "range_tests.json").write_text(json.dumps(tests, indent=1, default=str) + "\n")
    spec = out / "work" / "lrfind_grid.yaml"
    spec.write_text(grid_spec(base, tests, epochs))
    sweep_dir = run_sweep(spec, workers=a.workers, out_root=out / "work" / "runs")
    summary = pd.read_csv(build_report(sweep_dir).tables[0])
    result = finish(out, a.setting, tests, summary)
    print(json.dumps({"base": base, "seconds": round(time.time() - t0), **result}, indent=1, default=str))


if __name__ == "__main__":
    main()

"""The report's sections as document blocks: what was compared and how, the results, the trials.

Each function returns blocks for :mod:`yolo_gd.report.document`; every value is written by
:mod:`yolo_gd.report.cells`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from yolo_gd.report.cells import DASH, ci_text, lr_text, mean_std, num, p_cell, p_text, short_reason
from yolo_gd.report.document import Table
from yolo_gd.report.stats import finite
from yolo_gd.report.tables import MAP, TrialResult

__all__ = ["protocol_blocks", "summary_blocks", "trial_blocks"]

REPORTED_SPLIT = "val"  # results.csv holds the validation metrics Ultralytics computes each epoch
_BUDGET_KEYS = ("model", "data", "epochs", "imgsz", "batch", "nbs", "workers", "amp", "time")


def _budget(trials: list[TrialResult]) -> str:
    """Training settings shared by the main trials (from their args.yaml; 'varies' where they differ) and the
    devices the runner put them on (args.yaml often says only device='' for "pick one")."""
    devices = sorted({str(t.device) for t in trials if t.stage == "main" and t.device})
    dev = f"device={'/'.join(devices)}" if devices else ""
    args = [t.args for t in trials if t.stage == "main" and t.args]
    if not args:
        return "not recorded (no args.yaml in the trial directories)" + (f"; {dev}" if dev else "")
    parts = []
    for k in _BUDGET_KEYS:
        vals = {str(a.get(k)) for a in args if k in a} - {"", "None"}
        if not vals or (k == "time" and vals <= {"0", "0.0"}):
            continue
        v = vals.pop() if len(vals) == 1 else "varies"
        if k in ("model", "data") and v != "varies":
            v = Path(v).name if k == "model" else Path(v).parent.name + "/" + Path(v).name
        parts.append(f"{k}={v}")
    return ", ".join(parts + ([dev] if dev else []))


def protocol_blocks(manifest: dict, configs: list[str], trials: list[TrialResult]) -> list[tuple]:
    blocks: list[tuple] = [("h2", "What was compared")]
    main = [t for t in trials if t.stage == "main"]
    seeds = sorted({t.seed for t in main if t.seed is not None})
    base = manifest.get("baseline")
    def describe(c: str) -> str:
        lrs = sorted({t.lr for t in main if t.config == c and t.lr is not None})
        extra = (["baseline"] if c == base else []) + (["lr " + "/".join(f"{lr:g}" for lr in lrs)] if lrs else [])
        return f"`{c}`" + (f" ({', '.join(extra)})" if extra else "")

    items = [
        "Configs: " + (", ".join(describe(c) for c in configs) or "none yet"),
        "Seeds: " + (" ".join(str(s) for s in seeds) if seeds else DASH)
        + f" ({len(main)} main trials, {sum(t.used for t in main)} finished)",
        "Budget: " + _budget(trials),
    ]
    target = manifest.get("target")
    if target:
        items.append(f"Target: `{target['metric']}` ≥ {target['value']:g}. Time to target: results.csv cumulative "
                     "time (training + validation) at the first epoch reaching it; steps to target: optimizer steps "
                     "done by the end of that epoch.")
    blocks.append(("ul", items))
    blocks.append(("h2", "Protocol"))
    tuned = manifest.get("tuned")
    if tuned:
        splits = {str(v.get("split", "val")) for v in tuned.values()}
        split = splits.pop() if len(splits) == 1 else "/".join(sorted(splits))
        rows = []
        for c, v in tuned.items():
            tried = sorted(((float(lr), m) for lr, m in (v.get("tried") or {}).items()), key=lambda x: x[0])
            rows.append([c, ", ".join(f"{lr:g}: {num(m)}" for lr, m in tried),
                         f"{float(v['picked']):g}" if finite([v.get("picked")]) else DASH,
                         str(v.get("metric", MAP)).removeprefix("metrics/")])
        blocks.append(("p", f"Learning rates were tuned per optimizer before the main runs: each LR below was "
                            f"trained once and scored on the `{split}` split; the best one was used for every seed."))
        blocks.append(("table", Table(["config", "LR tried: metric", "LR picked", "metric"], rows)))
        if split == REPORTED_SPLIT:
            blocks.append(("p", "**LR picked on the validation split, which is also the split reported**: the "
                                "numbers of the tuned configs below are optimistically biased (the LR was chosen "
                                "to be good on exactly these images)."))
        else:
            blocks.append(("p", f"LR picked on the `{split}` split; results below are on the `{REPORTED_SPLIT}` "
                                "split."))
    elif manifest.get("protocol") == "lrfind":
        from yolo_gd.report.health import lrfind_blocks

        blocks += lrfind_blocks(manifest)
    elif manifest.get("protocol") == "tuned":
        blocks.append(("p", "Protocol `tuned`, but no LR has been picked yet (the tuning stage did not finish). "
                            "All metrics are on the validation split (Ultralytics' results.csv)."))
    else:
        blocks.append(("p", "Fixed learning rates (no tuning stage). All metrics are on the validation split "
                            "(Ultralytics' results.csv)."))
    blocks.append(("p", "Statistics use the main-stage trials that finished; mean ± sample std (ddof 1) over "
                        "seeds, 95% CI of the mean from Student's t; p: Welch's two-sided t-test of final "
                        "mAP50-95 against the baseline on the same dataset (needs ≥ 2 seeds on both sides)."))
    return blocks


def summary_blocks(summary: pd.DataFrame, target: dict | None, share: str | None = None,
                   verdicts: list[str] | tuple = ()) -> list[tuple]:
    rows = summary.to_dict("records")
    base_n = next((r["n"] for r in rows if r.get("baseline")), 0)  # summaries without baseline_n
    notes = []
    acc, speed, marked = [], [], set()
    for i, r in enumerate(rows):
        note = []
        if r.get("best"):
            note.append("**best**")
            marked.add(i)
        if r.get("failed"):
            note.append(f"{r['failed']} failed")
        if r.get("unfinished"):
            note.append(f"{r['unfinished']} not finished")
        if not r["n"]:
            note.append("no finished trial")
        if r.get("shared_device"):
            note.append("shared device")
        name = f"**{r['config']}**" if r.get("best") else r["config"]
        acc.append([name, str(r["n"]), mean_std(r, "final_map50_95", 3), ci_text(r, "final_map50_95", 3),
                    mean_std(r, "best_map50_95", 3), mean_std(r, "final_map50", 3),
                    mean_std(r, "final_train_loss", 3),
                    p_cell(r, base_n), ", ".join(note) or DASH])
        reached = f" ({r['target_reached']}/{r['n']} reached)" if target and r["n"] else ""
        speed.append([r["config"], mean_std(r, "time_to_target", 1) + reached if target else DASH,
                      ci_text(r, "time_to_target", 1) if target else DASH,
                      mean_std(r, "steps_to_target", 0) if target else DASH,
                      mean_std(r, "wall_time", 1), mean_std(r, "images_per_s", 1),
                      _comparable(r, share)])
        if r.get("shared_device") and not share:
            notes.append(f"`{r['config']}`: at least one trial shared its device with another trial, so its time "
                         "to target and images/s are not comparable with the other configs.")
    blocks: list[tuple] = [("h2", "Results")]
    blocks += [("p", v) for v in verdicts]
    blocks += _best_blocks([r for r in rows if r.get("best")])
    blocks.append(("h3", "Accuracy (validation split)"))
    blocks.append(("table", Table(
        ["config", "seeds", "final mAP50-95 mean ± std", "95% CI", "best-epoch mAP50-95", "final mAP50",
         "final train loss", "p vs baseline (Welch)", "notes"], acc, marked)))
    blocks.append(("h3", "Speed and cost"))
    blocks.append(("table", Table(
        ["config", "time to target (s)", "95% CI", "steps to target", "wall time (s)", "images/s", "comparable"],
        speed)))
    if notes:
        blocks.append(("p", "**Shared-device warning.**"))
        blocks.append(("ul", notes))
    if share:
        blocks.append(("p", f"**Side by side, equal share.** {share}"))
    blocks.append(("p", "Every metric's mean, std, n and CI is in `summary.csv`; per-trial numbers in `trials.csv`."))
    return blocks


def _best_blocks(best: list[dict]) -> list[tuple]:
    """One sentence per best config (one per dataset with a data axis), with its test against its own baseline."""
    blocks: list[tuple] = []
    for b in best:
        where = f" on `{b['dataset']}`" if len(best) > 1 and b.get("dataset") else ""
        line = (f"Best config{where}: **{b['config']}**, final mAP50-95 {mean_std(b, 'final_map50_95', 3)} over "
                f"{b['n']} seed{'s' if b['n'] != 1 else ''}")
        if not b.get("baseline"):
            vs = f"`{b['baseline_config']}`" if b.get("baseline_config") else "baseline"
            line += (f"; vs {vs} p = {p_text(b.get('p_vs_baseline'))} (Welch)" if finite([b.get("p_vs_baseline")])
                     else f"; no test against {vs} (needs ≥ 2 seeds on both sides)")
        blocks.append(("p", line + "."))
    if len(best) > 1:
        blocks.append(("p", "Each dataset has its own baseline (the first optimizer entry on it): every test, interval "
                            "and \"best\" above is within one dataset; across datasets see the performance profile."))
    return blocks


def _comparable(row: dict, share: str | None) -> str:
    if not row.get("shared_device"):
        return DASH
    return "with each other (side by side, equal share)" if share else "**not comparable: shared device**"


def trial_blocks(tdf: pd.DataFrame) -> list[tuple]:
    bad = tdf[tdf["state"] != "done"]
    blocks: list[tuple] = [("h2", "Failed and unfinished trials")]
    if len(bad):
        recs = bad.to_dict("records")
        rows = [[r["trial"], r["config"], num(r["seed"], 0), r["stage"], r["state"],
                 short_reason(r["reason"], r["state"])] for r in recs]
        blocks.append(("p", "Listed here and left out of every statistic and plot."))
        blocks.append(("table", Table(["trial", "config", "seed", "stage", "state", "reason"], rows)))
        for r in recs:
            if r["reason"] and len(str(r["reason"]).strip().splitlines()) > 1:
                blocks.append(("p", f"`{r['trial']}`, full message:"))
                blocks.append(("pre", str(r["reason"]).strip()))
    else:
        blocks.append(("p", "None: every trial finished."))
    blocks.append(("h2", "All trials"))
    show_lr = any(finite([v]) for v in tdf["lr"])  # the runner records it only when the spec or tuning fixed it
    cols: list[tuple[str, Callable[[dict], str]]] = [  # header, cell of a record
        ("trial", lambda r: r["trial"]), ("config", lambda r: r["config"]), ("seed", lambda r: num(r["seed"], 0)),
        *([("lr", lambda r: lr_text(r["lr"]))] if show_lr else []),
        ("stage", lambda r: r["stage"]), ("state", lambda r: r["state"]), ("epochs", lambda r: num(r["epochs"], 0)),
        ("final mAP50-95", lambda r: num(r["final_map50_95"])), ("best mAP50-95", lambda r: num(r["best_map50_95"])),
        ("final mAP50", lambda r: num(r["final_map50"])), ("final train loss", lambda r: num(r["final_train_loss"])),
        ("time to target (s)", lambda r: num(r["time_to_target"], 1)),
        ("steps to target", lambda r: num(r["steps_to_target"], 0)),
        ("wall time (s)", lambda r: num(r["wall_time"], 1)), ("images/s", lambda r: num(r["images_per_s"], 1)),
        ("device", lambda r: (str(r["device"]) if r["device"] else DASH) + (" (shared)" if r["shared_device"] else "")),
    ]
    rows = [[cell(r) for _, cell in cols] for r in tdf.to_dict("records")]
    blocks.append(("table", Table([h for h, _ in cols], rows)))
    return blocks

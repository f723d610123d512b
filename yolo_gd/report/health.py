"""Report sections on LR choice and run health: the ``protocol: lrfind`` range tests (LR, rule, cost, plots) and
the doctor's findings on each finished main trial (:mod:`yolo_gd.health`)."""

from __future__ import annotations

from pathlib import Path

from yolo_gd.report.cells import DASH
from yolo_gd.report.document import Table
from yolo_gd.report.tables import TrialResult

__all__ = ["doctor_blocks", "lrfind_blocks"]


def lrfind_blocks(manifest: dict) -> list[tuple]:
    """The range tests of a ``protocol: lrfind`` sweep: what each config got, by which rule, at what cost."""
    tests = manifest.get("lrfind") or {}
    if not tests:
        return [("p", "Protocol `lrfind`, but no range test has finished yet.")]
    rows, imgs = [], []
    for c, v in tests.items():
        others = ", ".join(f"{k} {x:.3g}" if x is not None else f"{k} {DASH}" for k, x in (v.get("others") or {}).items())
        lr = v.get("lr")
        rows.append([c, f"{lr:.3g}" if lr is not None else DASH, str(v.get("rule")), others or DASH,
                     str(v.get("steps", DASH)), f"{float(v.get('seconds') or 0):.0f}",
                     "yes" if v.get("stopped_at_divergence") else "no"])
        if v.get("plot") and Path(v["plot"]).exists():
            imgs.append(("img", Path(v["plot"]), f"LR range test of {c}"))
    steps = sum(int(v.get("steps") or 0) for v in tests.values())
    seconds = sum(float(v.get("seconds") or 0) for v in tests.values())
    blocks = [("p", f"Protocol `lrfind`: each config's LR came from an LR range test on the `train` split (LR "
                    f"rising exponentially from 1e-6 to 1 over at most 100 optimizer steps, stopped when the smoothed "
                    f"loss passed 4x its minimum; the rule that picked each LR is in the table), then every seed "
                    f"trained at that LR. Cost: {steps} optimizer steps and {seconds:.0f} s in all. All metrics "
                    f"are on the validation split (Ultralytics' results.csv).")]
    blocks.append(("table", Table(["config", "LR used", "rule", "other rules", "steps", "seconds", "diverged"],
                                  rows)))
    return blocks + imgs


def doctor_blocks(trials: list[TrialResult]) -> list[tuple]:
    """Each finished main trial's health findings (``yolo-gd doctor`` on its telemetry)."""
    from yolo_gd.health.rules import run_rules
    from yolo_gd.telemetry.sinks import read_epochs

    rows = []
    for t in trials:
        if t.stage != "main" or t.state != "done" or t.steps is None or t.steps.empty:
            continue
        steps = t.steps.drop_duplicates("step", keep="last").sort_values("step", kind="stable")
        found = run_rules(steps, read_epochs(t.dir) if t.dir else None)
        rows += [[t.name, f.code, f.evidence, f.suggestion] for f in found] or [[t.name, "none", DASH, DASH]]
    if not rows:
        return []
    return [("h2", "Run health (yolo-gd doctor)"),
            ("p", "Findings of `yolo-gd doctor` on each finished main trial's telemetry: evidence, and a change to "
                  "try. A clip-dominated run trains at step size LR x clip whatever the gradient's size, so its LR "
                  "is not comparable with an unclipped optimizer's."),
            ("table", Table(["trial", "finding", "evidence", "change to try"], rows))]

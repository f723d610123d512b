"""Report sections on LR choice and run health: the ``protocol: lrfind`` range tests (LR, rule, cost, plots) and
the doctor's findings on each finished main trial (:mod:`yolo_gd.health`)."""

from __future__ import annotations

from pathlib import Path

from yolo_gd.report.cells import DASH
from yolo_gd.report.document import Table
from yolo_gd.report.tables import TrialResult

__all__ = ["doctor_blocks", "lrfind_blocks"]


def lrfind_blocks(manifest: dict) -> list[tuple]:
    """The range tests of a ``protocol: lrfind`` sweep: what each config got (a suggestion, or the entry's LR and
    why), the ramp, steps and conditions each test actually ran with, and its cost."""
    from yolo_gd.lrfind.run import conditions_text

    tests = manifest.get("lrfind") or {}
    if not tests:
        return [("p", "Protocol `lrfind`, but no range test has finished yet.")]
    rows, imgs, conds, fallbacks = [], [], [], []
    for c, v in tests.items():
        others = ", ".join(f"{k} {x:.3g}" if x is not None else f"{k} {DASH}" for k, x in (v.get("others") or {}).items())
        lr = v.get("lr")
        got = "suggested" if v.get("suggested") is not None else f"fallback ({v.get('reason') or 'no suggestion'})"
        rows.append([c, f"{lr:.3g}" if lr is not None else DASH, got, str(v.get("rule")), others or DASH,
                     str(v.get("steps", DASH)), f"{float(v.get('seconds') or 0):.0f}",
                     "yes" if v.get("stopped_at_divergence") else "no"])
        if v.get("suggested") is None:
            fallbacks.append(f"`{c}`: no reliable suggestion ({v.get('reason') or 'none'}), so it trained at the "
                             f"entry's own LR" + (f"; to do: {v['advice']}" if v.get("advice") else "") + ".")
        conds.append(f"`{c}`: {conditions_text(v.get('conditions') or {})}"
                     if v.get("conditions") else f"`{c}`: not recorded (a sweep started before conditions were kept)")
        if v.get("plot") and Path(v["plot"]).exists():
            imgs.append(("img", Path(v["plot"]), f"LR range test of {c}"))
    steps = sum(int(v.get("steps") or 0) for v in tests.values())
    seconds = sum(float(v.get("seconds") or 0) for v in tests.values())
    blocks = [("p", f"Protocol `lrfind`: each config's LR came from an LR range test on the `train` split (the LR "
                    f"rising exponentially, one optimizer step at a time, under the conditions listed below), then "
                    f"every seed trained at that LR. A test suggests an LR only where its loss signal clearly fell "
                    f"(by more than its measured noise); otherwise the config kept the entry's own LR and the table "
                    f"says why. Cost: {steps} optimizer steps and {seconds:.0f} s in all. All metrics are on the "
                    f"validation split (Ultralytics' results.csv).")]
    blocks.append(("table", Table(["config", "LR used", "from", "rule", "other rules", "steps", "seconds",
                                   "diverged"], rows)))
    if fallbacks:
        blocks.append(("p", "**No reliable suggestion** (the entry's LR was used):"))
        blocks.append(("ul", fallbacks))
    blocks.append(("p", "Conditions each range test ran with (ramp, steps, batch, nbs, mosaic, device, signal):"))
    blocks.append(("ul", conds))
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

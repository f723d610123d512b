"""One range test of ``protocol: lrfind`` as its manifest record, and its progress line (shared by the test in the
runner process and the side-by-side workers)."""

from __future__ import annotations

import time

from yolo_gd.errors import UserError

__all__ = ["range_test_record", "record_line"]


def range_test_record(kw: dict, fallback_lr: float | None) -> dict:
    """Run ``lr_find(**kw)`` and return the manifest record: the suggestion as the config's LR, else
    ``fallback_lr`` (the entry's own) with the reason. A failed test (one-line error, out of memory...) falls back
    too; other exceptions (bugs) propagate."""
    from yolo_gd.lrfind.run import lr_find

    t0 = time.perf_counter()
    try:
        res = lr_find(**kw)
    except (UserError, RuntimeError, ValueError) as e:  # the sweep goes on at the entry's own LR
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return {"lr": fallback_lr, "rule": f"fallback: the range test failed ({first})", "suggested": None,
                "reason": "failed", "advice": None, "others": {}, "steps": 0,
                "seconds": round(time.perf_counter() - t0, 1), "stopped_at_divergence": False, "split": "train",
                "plot": None, "csv": None, "conditions": {}}
    v = res.suggestion
    if v.lr is not None:
        lr, rule = v.lr, v.rule
    else:
        lr, rule = fallback_lr, f"fallback: no reliable suggestion ({v.reason}): the entry's LR"
    return {"lr": float(lr) if lr is not None else None, "rule": rule, "suggested": v.lr, "reason": v.reason,
            "advice": v.advice, "others": v.others, "steps": res.steps, "seconds": round(res.seconds, 1),
            "stopped_at_divergence": res.stopped_early, "split": "train",
            "plot": str(res.plot) if res.plot else None, "csv": str(res.csv), "conditions": res.conditions}


def record_line(name: str, rec: dict) -> str:
    """The progress line for one finished range test."""
    if rec["reason"] == "failed":
        return f"[ablate] {name}: range test {rec['rule'][len('fallback: the range test '):]}: using lr {rec['lr']}"
    if rec["suggested"] is not None:
        return (f"[ablate] {name}: range test suggests lr {rec['lr']:.3g} ({rec['rule']}; {rec['steps']} steps, "
                f"{rec['seconds']:.0f} s)")
    return (f"[ablate] {name}: range test gives no reliable suggestion ({rec['reason']}: {rec['advice']}): using the "
            f"entry's lr {rec['lr']}")

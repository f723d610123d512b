"""How one value is written in a report cell: numbers with a dash for missing, p-values, mean ± std, CIs, reasons.

Every number in the report goes through :func:`num`, which writes a dash for a missing value, so neither the
Markdown nor the HTML can contain "nan".
"""

from __future__ import annotations

from yolo_gd.report.stats import NO_CI, finite

__all__ = ["DASH", "ci_text", "lr_text", "mean_std", "num", "p_cell", "p_text", "short_reason"]

DASH = "–"


def num(v, digits: int = 3) -> str:
    f = finite([v])
    if not f:
        return DASH
    return f"{f[0]:,.{digits}f}"


def p_text(p) -> str:
    f = finite([p])
    if not f:
        return DASH
    return "< 0.001" if f[0] < 0.001 else f"{f[0]:.3f}"


def lr_text(v) -> str:
    f = finite([v])
    return f"{f[0]:g}" if f else DASH


def short_reason(reason, state: str) -> str:
    """One line for a table cell: the message's first line, and its last (the log tail's end) if different."""
    lines = [ln.strip() for ln in str(reason or "").splitlines() if ln.strip()]
    if not lines:
        return "(no reason recorded)" if state == "failed" else f"not finished ({state})"
    cut = lambda x: x if len(x) <= 160 else x[:157] + "..."  # noqa: E731
    return cut(lines[0]) + (f" … {cut(lines[-1])}" if len(lines) > 1 else "")


def p_cell(row: dict, base_n: int = 0) -> str:
    """p vs the row's baseline, or why there is none (``base_n``: the baseline's seeds when the row does not
    carry ``baseline_n``, as in a summary.csv written before datasets had their own baselines)."""
    if row.get("baseline"):
        return "baseline"
    if finite([row.get("p_vs_baseline")]):
        return p_text(row["p_vs_baseline"])
    own = finite([row.get("baseline_n")])
    if (row.get("n") or 0) < 2 or (int(own[0]) if own else base_n) < 2:
        return "n/a: < 2 seeds"
    return "n/a: no variance"


def mean_std(row: dict, m: str, digits: int) -> str:
    mean, std = row.get(f"{m}_mean"), row.get(f"{m}_std")
    if finite([mean]) == []:
        return DASH
    return num(mean, digits) + (f" ± {num(std, digits)}" if finite([std]) else "")


def ci_text(row: dict, m: str, digits: int) -> str:
    n = row.get(f"{m}_n") or 0
    if n == 1:
        return NO_CI
    if finite([row.get(f"{m}_ci_low")]) == []:
        return DASH
    return f"[{num(row[f'{m}_ci_low'], digits)}, {num(row[f'{m}_ci_high'], digits)}]"

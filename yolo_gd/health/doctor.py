"""``doctor(run_dir)``: read a run's telemetry and results and apply every health rule."""

from __future__ import annotations

import os
from pathlib import Path

from yolo_gd.errors import UserError
from yolo_gd.health.findings import Finding
from yolo_gd.health.rules import run_rules

__all__ = ["doctor", "format_findings"]


def doctor(run_dir: str | os.PathLike) -> list[Finding]:
    """The findings on the run in ``run_dir`` (a training's save dir or its telemetry folder); [] for a healthy run.

    Raises :class:`UserError` when the folder holds no step table (a run without yolo_gd telemetry)."""
    from yolo_gd.telemetry.sinks import read_epochs, read_steps

    run_dir = Path(run_dir)
    steps = read_steps(run_dir, latest_only=True)
    if steps.empty:
        raise UserError(f"no telemetry steps under {run_dir}: pass a run trained with yolo_gd (telemetry=basic|full)")
    return run_rules(steps, read_epochs(run_dir))


def format_findings(findings: list[Finding], run_dir: str | os.PathLike | None = None) -> str:
    head = f"yolo-gd doctor: {run_dir}: " if run_dir is not None else ""
    if not findings:
        return head + "no findings: nothing in the telemetry points at a problem"
    lines = [head + f"{len(findings)} finding{'s' if len(findings) > 1 else ''}"]
    lines += [f.text() for f in findings]
    return "\n".join(lines)

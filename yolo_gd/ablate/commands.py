"""What the CLI calls: ``yolo-gd ablate SPEC key=value ...`` and ``yolo-gd compare key=value ...``.

    sweep_dir = ablate_command("configs/sgd_vs_adam.yaml", workers=2)
    sys.exit(exit_code(sweep_dir))       # 1 only if EVERY trial failed

Options (``key=value``): ``devices`` ('cpu', 'mps' or GPU ids '0,1'), ``workers`` (parallel CPU trials),
``per_device`` (parallel trials per GPU), ``out`` (sweeps root, default runs/ablate), ``retry_failed``
(rerun failed trials), ``backend`` ('local' or 'ray'), ``address`` (Ray cluster: 'auto', host:port; default a
private local instance), ``status_every`` (seconds).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from yolo_gd.errors import unknown_name
from yolo_gd.shipped import shipped_file

__all__ = ["RUN_OPTIONS", "ablate_command", "compare_command", "compare_side_by_side", "compare_spec_path",
           "exit_code", "report_summary", "summary"]

RUN_OPTIONS = ("devices", "workers", "per_device", "out", "retry_failed", "backend", "address", "status_every")


def compare_spec_path() -> Path:
    """``configs/sgd_vs_adam.yaml``: from the checkout, or the copy the wheel ships in ``yolo_gd/_configs``."""
    checkout, installed = shipped_file("configs", "sgd_vs_adam.yaml")
    return checkout if checkout.is_file() else installed


def ablate_command(spec: str | Path, *, progress: Callable[[str], Any] | None = print, **opts: Any) -> Path:
    """Run (or continue) the sweep ``spec`` with the runner options ``opts``, then build its report (attached to the
    sweep's MLflow run when MLflow is on) and print the summary table and the report's path; return the sweep
    folder. Use :func:`exit_code` for the exit status."""
    from yolo_gd.ablate.runner import run_sweep
    from yolo_gd.ablate.sweep_tracker import attach_report
    from yolo_gd.report import build_report

    for key in opts:
        if key not in RUN_OPTIONS:
            raise unknown_name("ablate option", key, RUN_OPTIONS)
    opts = dict(opts)
    out = opts.pop("out", None)
    sweep_dir = run_sweep(spec, out_root=out, progress=progress, **opts)
    paths = build_report(sweep_dir)
    attach_report(sweep_dir, paths.html.parent, progress or (lambda line: None))
    if progress is not None:
        progress(summary(sweep_dir))
        progress(report_summary(paths))
    return sweep_dir


def compare_command(*, progress: Callable[[str], Any] | None = print, **opts: Any) -> Path:
    """``ablate configs/sgd_vs_adam.yaml``: SGD vs AdamW on the default shapes set (generated when missing).

    On a CPU with two cores or more the two trials run side by side (``workers=2``, each on half the cores, see
    :func:`~yolo_gd.ablate.slots.cpu_threads`) unless ``workers`` is given: one after the other they took twice as
    long on 2 cores, where Ultralytics trains on one thread and leaves the other core idle. Both trials get the
    same share, and the report marks them ``shared device`` (their times are comparable with each other, not with
    trials that ran alone)."""
    if compare_side_by_side(opts):
        opts["workers"] = 2
    return ablate_command(compare_spec_path(), progress=progress, **opts)


def compare_side_by_side(opts: dict, cores: int | None = None) -> bool:
    """Does ``compare`` run its two trials at once? On CPU (the default device) with >= 2 cores, unless the user
    chose ``workers`` or another backend."""
    import os

    cores = cores if cores is not None else os.cpu_count() or 1
    on_cpu = str(opts.get("devices", "cpu")).strip().lower() == "cpu"
    return on_cpu and "workers" not in opts and opts.get("backend", "local") == "local" and cores >= 2


def report_summary(paths) -> str:
    """The report's summary table as text, and where the report is."""
    import pandas as pd

    from yolo_gd.report import format_summary
    from yolo_gd.report.verdict import ranking_verdicts

    tables = {p.name: pd.read_csv(p) for p in paths.tables if p.suffix == ".csv"}
    verdicts = [v.replace("**", "").replace("`", "") for v in ranking_verdicts(tables["summary.csv"],
                                                                               tables["trials.csv"])]
    return "\n".join([format_summary(tables["summary.csv"]), *verdicts, f"report: {paths.html}",
                      f"        {paths.markdown}"])


def exit_code(sweep_dir: str | Path) -> int:
    """The CLI's exit status for a finished ``run_sweep``: 1 only if every trial of the sweep failed, else 0
    (some failures are reported in the summary and the manifest, not by the exit code)."""
    from yolo_gd.ablate.manifest import read_manifest

    trials = read_manifest(sweep_dir).get("trials") or {}
    return 1 if trials and all(t.get("state") == "failed" for t in trials.values()) else 0


def summary(sweep_dir: str | Path) -> str:
    """A few lines per sweep: each trial's state, final mAP50 / mAP50-95 and time; failures with their reason."""
    from yolo_gd.ablate.manifest import read_manifest
    from yolo_gd.ablate.runner import final_metric, format_duration

    m = read_manifest(sweep_dir)
    trials = m.get("trials") or {}
    lines = [f"yolo-gd ablate: sweep {m.get('sweep')} in {Path(sweep_dir)}"]
    width = max((len(n) for n in trials), default=5)
    for name, t in trials.items():
        state = t.get("state")
        row = f"  {name:<{width}}  {state:<7}"
        if state == "done":
            m50 = final_metric(t["dir"], "metrics/mAP50(B)")
            m5095 = final_metric(t["dir"], "metrics/mAP50-95(B)")
            fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
            row += f"  mAP50 {fmt(m50)}  mAP50-95 {fmt(m5095)}  {format_duration(t.get('elapsed') or 0)}"
            if t.get("shared_device"):
                row += "  (shared device)"
        elif state == "failed" and t.get("reason"):
            reason = [ln for ln in str(t["reason"]).splitlines() if ln.strip()]
            row += f"  {reason[0]}" + (f" | {reason[-1]}" if len(reason) > 1 else "")
        lines.append(row)
    for config, tuned in (m.get("tuned") or {}).items():
        lines.append(f"  tuned {config}: lr {tuned.get('picked')} picked on {tuned.get('split')} "
                     f"({tuned.get('metric')})")
    return "\n".join(lines)

"""Assemble a sweep's report: tables (CSV/Parquet), plots (PNG), and one document as Markdown and as HTML.

The document is built once as a list of blocks (:mod:`yolo_gd.report.document`) from the sections in
:mod:`yolo_gd.report.sections` and rendered twice, so the Markdown and the HTML always say the same thing. The HTML
is self-contained (inline CSS, plots as base64 data URIs): it can be mailed or attached to an issue as one file.
Every number goes through :func:`yolo_gd.report.cells.num`, which writes a dash for a missing value, so neither
document can contain "nan".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from yolo_gd.ablate.manifest import read_manifest
from yolo_gd.report.cells import ci_text, mean_std, p_cell
from yolo_gd.report.document import to_html, to_markdown
from yolo_gd.report.health import doctor_blocks
from yolo_gd.report.plots import PLOTS, plot_sweep
from yolo_gd.report.profile import profile_blocks
from yolo_gd.report.sections import protocol_blocks, summary_blocks, trial_blocks
from yolo_gd.report.tables import config_order, equal_share, load_trials, summary_table, trials_table
from yolo_gd.report.verdict import ranking_verdicts

__all__ = ["ReportPaths", "build_report", "format_summary"]


@dataclass(frozen=True)
class ReportPaths:
    """What :func:`build_report` wrote (all under ``<sweep_dir>/report/``)."""

    markdown: Path
    html: Path
    tables: tuple[Path, ...]  # summary.csv, trials.csv, trials.parquet
    plots: tuple[Path, ...] = field(default=())


def _write_tables(out: Path, summary: pd.DataFrame, tdf: pd.DataFrame) -> tuple[Path, ...]:
    paths = (out / "summary.csv", out / "trials.csv", out / "trials.parquet")
    summary.to_csv(paths[0], index=False)  # None -> empty cell
    tdf.to_csv(paths[1], index=False)
    typed = tdf.copy()
    for c in typed.columns:  # Parquet wants one type per column: numbers as float64 (None -> null)
        if c not in ("trial", "config", "stage", "state", "reason", "device", "shared_device"):
            typed[c] = pd.to_numeric(typed[c], errors="coerce").astype("float64")
    typed["shared_device"] = typed["shared_device"].astype(bool)
    typed.to_parquet(paths[2], index=False, engine="pyarrow")
    return paths


def build_report(sweep_dir: str | os.PathLike) -> ReportPaths:
    """Read ``<sweep_dir>/manifest.json`` and the trial dirs; write ``<sweep_dir>/report/``: ``report.md``,
    ``report.html`` (self-contained), ``summary.csv``, ``trials.csv``, ``trials.parquet`` and the plots' PNGs.

    Works on a partial or partly failed sweep: failed trials are listed with their reason, never averaged.
    """
    sweep_dir = Path(sweep_dir)
    manifest = read_manifest(sweep_dir)
    out = sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    trials = load_trials(manifest)
    configs = config_order(manifest, trials)
    target = manifest.get("target") or None
    tdf = trials_table(trials, target)
    summary = summary_table(trials, tdf, configs, manifest.get("baseline"), target, manifest.get("baselines"))
    tables = _write_tables(out, summary, tdf)
    plots = plot_sweep(trials, configs, out, target)

    name = str(manifest.get("sweep") or sweep_dir.name)
    title = f"Optimizer ablation: {name}"
    blocks: list[tuple] = [("h1", title), ("p", f"Sweep `{name}` in `{sweep_dir}`.")]
    blocks += protocol_blocks(manifest, configs, trials)
    share = equal_share(trials, manifest.get("cpus"))
    blocks += summary_blocks(summary, target, share, ranking_verdicts(summary, tdf))
    blocks += profile_blocks(summary, tdf, target)  # only with a data axis
    blocks += trial_blocks(tdf)
    blocks += doctor_blocks(trials)
    if plots:
        blocks.append(("h2", "Plots"))
        blocks.append(("p", "One colour per config in every plot; finished main-stage trials only."))
        blocks += [("img", path, PLOTS[stem][1]) for stem, path in plots.items()]
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text(to_markdown(blocks), encoding="utf-8")
    html_path.write_text(to_html(blocks, title), encoding="utf-8")
    return ReportPaths(md_path, html_path, tables, tuple(plots.values()))


def format_summary(summary_df: pd.DataFrame) -> str:
    """A fixed-width text table for the terminal: a header line, then one line per config.

    Columns: config, seeds, final mAP50-95 mean ± std, its 95% CI (or "1 seed: no CI"), time to target, images/s,
    p vs the baseline on the same dataset; ``*`` marks the best config (of each dataset), ``!`` a config with a trial on a shared device.
    """
    header = ["config (*best !shared device)", "n", "mAP50-95", "95% CI", "to target (s)", "img/s", "p vs base"]
    lines = []
    records = summary_df.to_dict("records")
    base_n = next((r["n"] for r in records if r.get("baseline")), 0)
    for r in records:
        mark = ("*" if r.get("best") else " ") + ("!" if r.get("shared_device") else " ")
        lines.append([f"{mark}{r['config']}", str(r.get("n", 0)), mean_std(r, "final_map50_95", 3),
                      ci_text(r, "final_map50_95", 3), mean_std(r, "time_to_target", 1),
                      mean_std(r, "images_per_s", 1), p_cell(r, base_n)])
    rows = [["  " + header[0], *header[1:]], *lines]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
            for row in rows]
    return "\n".join(text)

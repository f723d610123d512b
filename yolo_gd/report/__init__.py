"""The report of an optimizer ablation sweep: statistics over seeds, comparison tables, plots, Markdown/HTML.

``build_report(sweep_dir)`` reads the runner's ``manifest.json`` and the trials' save dirs and writes
``<sweep_dir>/report/``. Layers, each usable alone: :mod:`.stats` (pure math), :mod:`.tables` (manifest + files ->
DataFrames), :mod:`.plots` (PNGs), :mod:`.cells` (how a value is written), :mod:`.document` (blocks -> Markdown and
HTML), :mod:`.sections` (the report's sections as blocks), :mod:`.build` (assembly).
"""

from yolo_gd.report.build import ReportPaths, build_report, format_summary

__all__ = ["ReportPaths", "build_report", "format_summary"]

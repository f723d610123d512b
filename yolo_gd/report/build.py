"""Assemble a sweep's report: tables (CSV/Parquet), plots (PNG), and one document as Markdown and as HTML.

The document is built once as a list of blocks (heading, paragraph, list, table, image) and rendered twice, so the
Markdown and the HTML always say the same thing. The HTML is self-contained (inline CSS, plots as base64 data
URIs): it can be mailed or attached to an issue as one file. Every number goes through :func:`_num`, which writes
a dash for a missing value, so neither document can contain "nan".
"""

from __future__ import annotations

import base64
import html
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from yolo_gd.ablate.manifest import read_manifest
from yolo_gd.report.plots import PLOTS, plot_sweep
from yolo_gd.report.stats import NO_CI, finite
from yolo_gd.report.tables import (
    MAP, TrialResult, config_order, load_trials, summary_table, trials_table,
)

__all__ = ["ReportPaths", "build_report", "format_summary"]

DASH = "–"
REPORTED_SPLIT = "val"  # results.csv holds the validation metrics Ultralytics computes each epoch
_BUDGET_KEYS = ("model", "data", "epochs", "imgsz", "batch", "nbs", "workers", "amp", "time")


@dataclass(frozen=True)
class ReportPaths:
    """What :func:`build_report` wrote (all under ``<sweep_dir>/report/``)."""

    markdown: Path
    html: Path
    tables: tuple[Path, ...]  # summary.csv, trials.csv, trials.parquet
    plots: tuple[Path, ...] = field(default=())


# ----------------------------------------------------------------------------------------------- number formatting
def _num(v, digits: int = 3) -> str:
    f = finite([v])
    if not f:
        return DASH
    return f"{f[0]:,.{digits}f}"


def _p(p) -> str:
    f = finite([p])
    if not f:
        return DASH
    return "< 0.001" if f[0] < 0.001 else f"{f[0]:.3f}"


def _lr(v) -> str:
    f = finite([v])
    return f"{f[0]:g}" if f else DASH


def _short(reason, state: str) -> str:
    """One line for a table cell: the message's first line, and its last (the log tail's end) if different."""
    lines = [ln.strip() for ln in str(reason or "").splitlines() if ln.strip()]
    if not lines:
        return "(no reason recorded)" if state == "failed" else f"not finished ({state})"
    cut = lambda x: x if len(x) <= 160 else x[:157] + "..."  # noqa: E731
    return cut(lines[0]) + (f" … {cut(lines[-1])}" if len(lines) > 1 else "")


def _p_cell(row: dict, base_n: int) -> str:
    """p vs baseline, or why there is none."""
    if row.get("baseline"):
        return "baseline"
    if finite([row.get("p_vs_baseline")]):
        return _p(row["p_vs_baseline"])
    if (row.get("n") or 0) < 2 or base_n < 2:
        return "n/a: < 2 seeds"
    return "n/a: no variance"


def _mean_std(row: dict, m: str, digits: int) -> str:
    mean, std = row.get(f"{m}_mean"), row.get(f"{m}_std")
    if finite([mean]) == []:
        return DASH
    return _num(mean, digits) + (f" ± {_num(std, digits)}" if finite([std]) else "")


def _ci(row: dict, m: str, digits: int) -> str:
    n = row.get(f"{m}_n") or 0
    if n == 1:
        return NO_CI
    if finite([row.get(f"{m}_ci_low")]) == []:
        return DASH
    return f"[{_num(row[f'{m}_ci_low'], digits)}, {_num(row[f'{m}_ci_high'], digits)}]"


# ------------------------------------------------------------------------------------------------ document blocks
# columns holding words: left-aligned (and allowed to wrap in HTML); every other column holds numbers
_TEXT_HEADERS = {"config", "trial", "stage", "state", "reason", "notes", "comparable", "LR tried: metric", "metric",
                 "device"}
_WRAP_HEADERS = {"reason", "notes", "LR tried: metric"}  # long prose: may wrap; names and numbers never do


@dataclass
class _Table:
    header: list[str]
    rows: list[list[str]]
    marked: set[int] = field(default_factory=set)  # row indices highlighted (the best config)

    @property
    def text_cols(self) -> list[bool]:
        return [h in _TEXT_HEADERS for h in self.header]


def _html_inline(text: str) -> str:
    """Escape, then the two Markdown marks the document uses: `code` and **bold**."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _md(blocks: list[tuple]) -> str:
    out = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + rest[0])
        elif kind == "p":
            out.append(rest[0])
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in rest[0]))
        elif kind == "pre":
            out.append("````text\n" + rest[0] + "\n````")  # four backticks: a log tail may hold three
        elif kind == "table":
            t: _Table = rest[0]
            esc = [[c.replace("|", "\\|") for c in r] for r in [t.header, *t.rows]]
            lines = ["| " + " | ".join(esc[0]) + " |", "|" + "".join(":---|" if x else "---:|" for x in t.text_cols)]
            lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
            out.append("\n".join(lines))
        elif kind == "img":
            path, caption = rest
            out.append(f"![{caption}]({path.name})\n\n*{caption}*")
    return "\n\n".join(out) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1180px;margin:24px auto;
padding:0 16px;color:#1d2327;line-height:1.45;font-size:15px}
h1{font-size:1.6em;border-bottom:2px solid #d0d7de;padding-bottom:6px}h2{font-size:1.25em;margin-top:1.8em;
border-bottom:1px solid #e5e8eb;padding-bottom:3px}
table{border-collapse:collapse;margin:10px 0;font-size:13px;display:block;overflow-x:auto}
th,td{border:1px solid #d0d7de;padding:4px 7px;text-align:right;white-space:nowrap}
th{background:#f3f5f7;white-space:normal;vertical-align:bottom;min-width:3.5em}
.text{text-align:left}td.wrap{white-space:normal}
tr.best td{background:#e8f5e9;font-weight:600}
code{background:#f3f5f7;padding:1px 4px;border-radius:3px;font-size:90%}
figure{margin:18px 0}img{max-width:100%;border:1px solid #e5e8eb}figcaption{font-size:13px;color:#57606a}
ul{padding-left:1.4em}
pre{background:#f6f8fa;border:1px solid #e5e8eb;padding:8px;font-size:12px;overflow-x:auto;white-space:pre-wrap}
"""


_TEXT, _WRAP, _BEST = ' class="text"', ' class="text wrap"', ' class="best"'


def _html(blocks: list[tuple], title: str) -> str:
    out = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append(f"<{kind}>{_html_inline(rest[0])}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{_html_inline(rest[0])}</p>")
        elif kind == "pre":
            out.append(f"<pre>{html.escape(rest[0], quote=False)}</pre>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_html_inline(i)}</li>" for i in rest[0]) + "</ul>")
        elif kind == "table":
            t: _Table = rest[0]
            text = t.text_cols
            head = "".join(f"<th{_TEXT if x else ''}>{_html_inline(h)}</th>" for h, x in zip(t.header, text))
            body = []
            for i, r in enumerate(t.rows):
                cells = "".join(f"<td{_WRAP if h in _WRAP_HEADERS else _TEXT if x else ''}>{_html_inline(c)}</td>"
                                for c, x, h in zip(r, text, t.header))
                body.append(f"<tr{_BEST if i in t.marked else ''}>{cells}</tr>")
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
        elif kind == "img":
            path, caption = rest
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            out.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{_html_inline(caption)}</figcaption></figure>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(out) + "\n</body></html>\n")


# ------------------------------------------------------------------------------------------------- report content
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


def _protocol(manifest: dict, configs: list[str], trials: list[TrialResult]) -> list[tuple]:
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
            rows.append([c, ", ".join(f"{lr:g}: {_num(m)}" for lr, m in tried),
                         f"{float(v['picked']):g}" if finite([v.get("picked")]) else DASH,
                         str(v.get("metric", MAP)).removeprefix("metrics/")])
        blocks.append(("p", f"Learning rates were tuned per optimizer before the main runs: each LR below was "
                            f"trained once and scored on the `{split}` split; the best one was used for every seed."))
        blocks.append(("table", _Table(["config", "LR tried: metric", "LR picked", "metric"], rows)))
        if split == REPORTED_SPLIT:
            blocks.append(("p", "**LR picked on the validation split, which is also the split reported**: the "
                                "numbers of the tuned configs below are optimistically biased (the LR was chosen "
                                "to be good on exactly these images)."))
        else:
            blocks.append(("p", f"LR picked on the `{split}` split; results below are on the `{REPORTED_SPLIT}` "
                                "split."))
    elif manifest.get("protocol") == "tuned":
        blocks.append(("p", "Protocol `tuned`, but no LR has been picked yet (the tuning stage did not finish). "
                            "All metrics are on the validation split (Ultralytics' results.csv)."))
    else:
        blocks.append(("p", "Fixed learning rates (no tuning stage). All metrics are on the validation split "
                            "(Ultralytics' results.csv)."))
    blocks.append(("p", "Statistics use the main-stage trials that finished; mean ± sample std (ddof 1) over "
                        "seeds, 95% CI of the mean from Student's t; p: Welch's two-sided t-test of final "
                        "mAP50-95 against the baseline (needs ≥ 2 seeds on both sides)."))
    return blocks


def _summary_blocks(summary: pd.DataFrame, target: dict | None) -> list[tuple]:
    rows = summary.to_dict("records")
    base_n = next((r["n"] for r in rows if r.get("baseline")), 0)
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
        acc.append([name, str(r["n"]), _mean_std(r, "final_map50_95", 3), _ci(r, "final_map50_95", 3),
                    _mean_std(r, "best_map50_95", 3), _mean_std(r, "final_map50", 3),
                    _mean_std(r, "final_train_loss", 3),
                    _p_cell(r, base_n), ", ".join(note) or DASH])
        reached = f" ({r['target_reached']}/{r['n']} reached)" if target and r["n"] else ""
        speed.append([r["config"], _mean_std(r, "time_to_target", 1) + reached if target else DASH,
                      _ci(r, "time_to_target", 1) if target else DASH,
                      _mean_std(r, "steps_to_target", 0) if target else DASH,
                      _mean_std(r, "wall_time", 1), _mean_std(r, "images_per_s", 1),
                      "**not comparable: shared device**" if r.get("shared_device") else DASH])
        if r.get("shared_device"):
            notes.append(f"`{r['config']}`: at least one trial shared its device with another trial, so its time "
                         "to target and images/s are not comparable with the other configs.")
    blocks: list[tuple] = [("h2", "Results")]
    best = [r for r in rows if r.get("best")]
    if best:
        b = best[0]
        line = (f"Best config: **{b['config']}**, final mAP50-95 {_mean_std(b, 'final_map50_95', 3)} over "
                f"{b['n']} seed{'s' if b['n'] != 1 else ''}")
        if not b.get("baseline"):
            line += (f"; vs baseline p = {_p(b.get('p_vs_baseline'))} (Welch)" if finite([b.get("p_vs_baseline")])
                     else "; no test against the baseline (needs ≥ 2 seeds on both sides)")
        blocks.append(("p", line + "."))
    blocks.append(("h3", "Accuracy (validation split)"))
    blocks.append(("table", _Table(
        ["config", "seeds", "final mAP50-95 mean ± std", "95% CI", "best-epoch mAP50-95", "final mAP50",
         "final train loss", "p vs baseline (Welch)", "notes"], acc, marked)))
    blocks.append(("h3", "Speed and cost"))
    blocks.append(("table", _Table(
        ["config", "time to target (s)", "95% CI", "steps to target", "wall time (s)", "images/s", "comparable"],
        speed)))
    if notes:
        blocks.append(("p", "**Shared-device warning.**"))
        blocks.append(("ul", notes))
    blocks.append(("p", "Every metric's mean, std, n and CI is in `summary.csv`; per-trial numbers in `trials.csv`."))
    return blocks


def _trial_blocks(tdf: pd.DataFrame) -> list[tuple]:
    bad = tdf[tdf["state"] != "done"]
    blocks: list[tuple] = [("h2", "Failed and unfinished trials")]
    if len(bad):
        recs = bad.to_dict("records")
        rows = [[r["trial"], r["config"], _num(r["seed"], 0), r["stage"], r["state"], _short(r["reason"], r["state"])]
                for r in recs]
        blocks.append(("p", "Listed here and left out of every statistic and plot."))
        blocks.append(("table", _Table(["trial", "config", "seed", "stage", "state", "reason"], rows)))
        for r in recs:
            if r["reason"] and len(str(r["reason"]).strip().splitlines()) > 1:
                blocks.append(("p", f"`{r['trial']}`, full message:"))
                blocks.append(("pre", str(r["reason"]).strip()))
    else:
        blocks.append(("p", "None: every trial finished."))
    blocks.append(("h2", "All trials"))
    show_lr = any(finite([v]) for v in tdf["lr"])  # the runner records it only when the spec or tuning fixed it
    cols: list[tuple[str, Callable[[dict], str]]] = [  # header, cell of a record
        ("trial", lambda r: r["trial"]), ("config", lambda r: r["config"]), ("seed", lambda r: _num(r["seed"], 0)),
        *([("lr", lambda r: _lr(r["lr"]))] if show_lr else []),
        ("stage", lambda r: r["stage"]), ("state", lambda r: r["state"]), ("epochs", lambda r: _num(r["epochs"], 0)),
        ("final mAP50-95", lambda r: _num(r["final_map50_95"])), ("best mAP50-95", lambda r: _num(r["best_map50_95"])),
        ("final mAP50", lambda r: _num(r["final_map50"])), ("final train loss", lambda r: _num(r["final_train_loss"])),
        ("time to target (s)", lambda r: _num(r["time_to_target"], 1)),
        ("steps to target", lambda r: _num(r["steps_to_target"], 0)),
        ("wall time (s)", lambda r: _num(r["wall_time"], 1)), ("images/s", lambda r: _num(r["images_per_s"], 1)),
        ("device", lambda r: (str(r["device"]) if r["device"] else DASH) + (" (shared)" if r["shared_device"] else "")),
    ]
    rows = [[cell(r) for _, cell in cols] for r in tdf.to_dict("records")]
    blocks.append(("table", _Table([h for h, _ in cols], rows)))
    return blocks


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
    summary = summary_table(trials, tdf, configs, manifest.get("baseline"), target)
    tables = _write_tables(out, summary, tdf)
    plots = plot_sweep(trials, configs, out, target)

    name = str(manifest.get("sweep") or sweep_dir.name)
    title = f"Optimizer ablation: {name}"
    blocks: list[tuple] = [("h1", title), ("p", f"Sweep `{name}` in `{sweep_dir}`.")]
    blocks += _protocol(manifest, configs, trials)
    blocks += _summary_blocks(summary, target)
    blocks += _trial_blocks(tdf)
    if plots:
        blocks.append(("h2", "Plots"))
        blocks.append(("p", "One colour per config in every plot; finished main-stage trials only."))
        blocks += [("img", path, PLOTS[stem][1]) for stem, path in plots.items()]
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text(_md(blocks), encoding="utf-8")
    html_path.write_text(_html(blocks, title), encoding="utf-8")
    return ReportPaths(md_path, html_path, tables, tuple(plots.values()))


def format_summary(summary_df: pd.DataFrame) -> str:
    """A fixed-width text table for the terminal: a header line, then one line per config.

    Columns: config, seeds, final mAP50-95 mean ± std, its 95% CI (or "1 seed: no CI"), time to target, images/s,
    p vs baseline; ``*`` marks the best config, ``!`` a config with a trial on a shared device.
    """
    header = ["config (*best !shared device)", "n", "mAP50-95", "95% CI", "to target (s)", "img/s", "p vs base"]
    lines = []
    records = summary_df.to_dict("records")
    base_n = next((r["n"] for r in records if r.get("baseline")), 0)
    for r in records:
        mark = ("*" if r.get("best") else " ") + ("!" if r.get("shared_device") else " ")
        lines.append([f"{mark}{r['config']}", str(r.get("n", 0)), _mean_std(r, "final_map50_95", 3),
                      _ci(r, "final_map50_95", 3), _mean_std(r, "time_to_target", 1),
                      _mean_std(r, "images_per_s", 1), _p_cell(r, base_n)])
    rows = [["  " + header[0], *header[1:]], *lines]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
            for row in rows]
    return "\n".join(text)

"""The report as a list of blocks (heading, paragraph, list, preformatted, table, image), rendered twice.

Built once, rendered as Markdown (:func:`to_markdown`) and as self-contained HTML (:func:`to_html`: inline CSS,
plots as base64 data URIs), so both documents always say the same thing. A block is a tuple ``(kind, *content)``:
``("h1"|"h2"|"h3", text)``, ``("p", text)``, ``("ul", [items])``, ``("pre", text)``, ``("table", Table)``,
``("img", path, caption)``; text may use two Markdown marks, `code` and **bold**.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Table", "to_html", "to_markdown"]

# columns holding words: left-aligned (and allowed to wrap in HTML); every other column holds numbers
_TEXT_HEADERS = {"config", "trial", "stage", "state", "reason", "notes", "comparable", "LR tried: metric", "metric",
                 "device", "finding", "evidence", "change to try", "rule", "other rules"}
# long prose: may wrap; names and numbers never do
_WRAP_HEADERS = {"reason", "notes", "LR tried: metric", "evidence", "change to try"}


@dataclass
class Table:
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


def to_markdown(blocks: list[tuple]) -> str:
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
            t: Table = rest[0]
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


def to_html(blocks: list[tuple], title: str) -> str:
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
            t: Table = rest[0]
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

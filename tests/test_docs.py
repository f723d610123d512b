"""Docs whose code runs: every Python block and every `yolo-gd` command in README.md and docs/*.md runs here,
shrunk to a tiny size by the rules in SHRINK, or is marked as not run with the reason; and the docs site builds
with `mkdocs build --strict`.

Marks (docs/development.md, "Docs whose code runs"):
- `<!-- not run: REASON -->` on the line before a fenced block: the whole block is not run;
- `# not run: REASON` at the end of a `yolo-gd` line in a shell block: that command is not run;
- `<!-- quickstart-command -->` before a block: `.ci/run` runs it verbatim from the installed wheel.

All pages run in one process and one working folder, in the order of mkdocs.yml's nav (README first), so a page
may use a run an earlier page made (`runs/detect/train` is the first training of the walk).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOT_RUN = re.compile(r"<!--\s*not run:\s*(\S.*?)\s*-->")
CI_RUNS = "<!-- quickstart-command -->"

# The shrink rules: (pattern, replacement) applied to every runnable block; the dataset becomes 8 + 4 generated
# images at 32 px (TINY), and training/range-test commands get `workers=0` and a few range-test steps.
TINY = "tiny/data.yaml"
SHRINK = [
    (r"\bepochs=\d+", "epochs=1"),
    (r"\bimgsz=\d+", "imgsz=32"),
    (r"\bbatch=\d+", "batch=4"),
    (r"\bnbs=\d+", "nbs=4"),
    (r"\bn_train=\d+", "n_train=8"),
    (r"\bn_val=\d+", "n_val=4"),
    (r"\bsteps=\d+", "steps=6"),
    (r"\"(?:datasets/bccd/data\.yaml|bccd|shapes|coco8\.yaml)\"", f'"{TINY}"'),
    (r"\bdata=(?:datasets/bccd/data\.yaml|bccd|shapes)\b", f"data={TINY}"),
    (r"\bdata check datasets/bccd/data\.yaml", f"data check {TINY}"),
    (r"\blr_find\(", "lr_find(steps=6, batch=4, nbs=4, workers=0, "),
]
CLI_EXTRA = {"train": "workers=0", "lrfind": "workers=0 steps=6 batch=4 nbs=4"}


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    text: str
    mark: str  # '' (runs here), 'not run: ...', or 'ci'


def pages() -> list[Path]:
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    return [ROOT / "README.md"] + [ROOT / "docs" / next(iter(entry.values())) for entry in nav]


def blocks(path: Path) -> list[Block]:
    lines, out, i = path.read_text().split("\n"), [], 0
    while i < len(lines):
        fence = re.match(r"^\s*```(\w*)\s*$", lines[i])
        if not fence or not fence.group(1):
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        before = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        reason = NOT_RUN.search(before)
        mark = "ci" if before == CI_RUNS else f"not run: {reason.group(1)}" if reason else ""
        out.append(Block(path.name, i + 1, fence.group(1), textwrap.dedent("\n".join(lines[i + 1:end])), mark))
        i = end + 1
    return out


def shrink(text: str) -> str:
    for pattern, replacement in SHRINK:
        text = re.sub(pattern, replacement, text)
    return text


def commands(block: Block) -> list[tuple[str, str]]:
    """``(command, mark)`` of each `yolo-gd` line of a shell block (mark as in :class:`Block`)."""
    out = []
    for line in block.text.splitlines():
        if line.strip().startswith("yolo-gd "):
            command, _, comment = line.partition("#")
            reason = re.match(r"\s*not run:\s*(\S.*)", comment)
            out.append((command.strip(), block.mark or (f"not run: {reason.group(1)}" if reason else "")))
    return out


def script() -> tuple[str, int]:
    """The walk over every page as one Python script, and how many snippets it runs."""
    parts, n = [f"from yolo_gd.datasets.shapes import generate_shapes\n"
                f"generate_shapes('tiny', n_train=8, n_val=4, imgsz=32, seed=0)\n"], 0
    for path in pages():
        for b in blocks(path):
            if b.lang == "python" and not b.mark:
                parts.append(f"print('--- {b.page}:{b.line}', flush=True)\n{shrink(b.text)}\n")
                n += 1
            for command, mark in commands(b) if b.lang in ("bash", "sh", "shell") else []:
                if not mark:
                    words = shrink(command).split()[1:]
                    given = {w.split("=", 1)[0] for w in words}
                    words += [w for w in CLI_EXTRA.get(words[0], "").split() if w.split("=", 1)[0] not in given]
                    parts.append(f"print('--- {b.page}:{b.line} {command}', flush=True)\n"
                                 f"assert _cli({words!r}) == 0, {command!r}\n")
                    n += 1
    return "from yolo_gd.cli import main as _cli\n" + "\n".join(parts), n


def test_every_snippet_runs_or_says_why_not():
    """Each not-run mark gives a reason; each shell block's `yolo-gd` lines are seen (none hides in a pipe)."""
    seen = 0
    for path in pages():
        for b in blocks(path):
            assert b.lang in ("python", "bash", "sh", "shell", "yaml", "text", ""), f"{b.page}:{b.line} {b.lang}"
            for command, mark in commands(b) if b.lang == "bash" else [(b.text, b.mark)]:
                assert mark in ("", "ci") or len(mark) > len("not run: ") + 10, f"{b.page}:{b.line}: {mark!r}"
                seen += 1
    _, runs = script()
    assert seen > runs >= 10


@pytest.mark.slow
def test_docs_snippets_run_shrunk(tmp_path):
    """The walk: all runnable snippets, shrunk, in one fresh process (no pytest in its environment, so
    Ultralytics resolves `runs/` under the working folder like a user's shell does)."""
    code, n = script()
    settings = ("from ultralytics.utils import SETTINGS\n"
                f"SETTINGS.update(runs_dir={str(tmp_path / 'runs')!r})\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    done = subprocess.run([sys.executable, "-c", settings + code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    ran = re.findall(r"^--- (\S+)", done.stdout, flags=re.M)
    assert done.returncode == 0, f"failed after {ran[-1:]}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert len(ran) == n


def test_mkdocs_builds_strict(tmp_path):
    """The docs site builds with no warning (a broken link or a page missing from the nav fails)."""
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "site" / "sweeps" / "index.html").is_file()


def test_ci_runs_the_quick_start_as_written():
    """`.ci/run` finds the Quick start's install line and command under their marks."""
    text = (ROOT / "README.md").read_text()
    for mark, start in (("quickstart-install", "pip install "), ("quickstart-command", "yolo-gd "),
                        ("test-command", "pip install ")):
        after = text.split(f"<!-- {mark} -->", 1)[1].split("\n")[1:4]
        assert after[0] == "```bash" and after[1].startswith(start), mark
    assert "readme_command quickstart-command" in (ROOT / ".ci" / "run").read_text()

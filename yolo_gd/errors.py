"""The one error type a user can fix.

Every check that rejects user input raises :class:`UserError` with a message that names the rule that was broken
and the fix. The CLI prints it as one line on stderr and exits with code 2 (a traceback only with ``--debug``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(ValueError):
    """Bad input the user can fix: the message says what is wrong and what to do instead.

    ``key`` names the option the message is about when there is one (``'lr'``), so a caller that knows where the
    option was written (a sweep spec's file:line) can point there.
    """

    def __init__(self, message: str, *, key: str | None = None):
        super().__init__(message)
        self.key = key


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> UserError:
    """An error for an unknown ``name`` that lists the valid ones and suggests the closest (Ultralytics-style)."""
    valid = sorted(valid)
    close = difflib.get_close_matches(str(name).lower(), valid, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return UserError(f"unknown {kind} '{name}'.{hint} Valid {kind}s: {', '.join(valid)}.")


def one_line(text: object, limit: int = 300) -> str:
    """The first non-empty line of ``text`` without Ultralytics' emoji prefixes, at most ``limit`` characters."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    line = lines[0] if lines else ""
    for prefix in ("ERROR", "WARNING", "❌️", "❌", "⚠️"):
        line = line.removeprefix(prefix).strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."

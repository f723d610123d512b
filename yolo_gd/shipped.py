"""Files that ship with yolo_gd: the BCCD dataset and the sweep configs.

They are stored once in the repository (``datasets/bccd/``, ``configs/``); the wheel carries them inside the
package as ``yolo_gd/_shipped/bccd/`` and ``yolo_gd/_configs/`` (``pyproject.toml``, hatch ``force-include``).
A checkout's copy wins, so an editable install reads what you are editing.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PACKAGE", "shipped_file"]

PACKAGE = Path(__file__).resolve().parent  # the installed (or checked-out) yolo_gd folder

# name in the checkout (relative to the repository root) -> name inside the installed package
_IN_WHEEL = {"datasets": "_shipped", "configs": "_configs"}


def shipped_file(folder: str, *parts: str) -> tuple[Path, Path]:
    """``(checkout path, installed path)`` of ``folder/parts...`` (``folder``: ``datasets`` or ``configs``).

    Callers take the first that exists and name both in their error when neither does.
    """
    return PACKAGE.parent.joinpath(folder, *parts), PACKAGE.joinpath(_IN_WHEEL[folder], *parts)

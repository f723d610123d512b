"""Checks of user-given numbers shared by the optim modules (group rules, schedules, weight-decay scaling)."""

from __future__ import annotations

import math
from typing import Any

from yolo_gd.errors import UserError

__all__ = ["finite_number"]


def finite_number(value: Any, what: str) -> float:
    """``value`` as a float, or a :class:`UserError` ``"<what>=<value> must be a finite number"``.

    A bool is not a number here (``True`` is almost always a YAML or typing slip), nor is a numeric string.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{what}={value!r} must be a finite number.")
    return float(value)

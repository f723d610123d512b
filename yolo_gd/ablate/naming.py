"""Config and trial names: filesystem-safe text built from an optimizer entry, its LR and its schedule.

A config name is the optimizer name, then any other key its entry sets (``momentum0.9``), then ``lr<lr>`` and the
schedule when they are set (``sgd-lr0.01-cosine``); an entry's ``label:`` replaces it. Trials are named
``<config>-s<seed>`` (tuning trials ``<config>-tune-lr<lr>-s<seed>``): see :mod:`yolo_gd.ablate.spec`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["baselines_by_dataset", "config_name", "num_text", "safe_name", "split_config"]


def safe_name(text: str) -> str:
    """Filesystem-safe: letters, digits and ``. _ + -``; anything else becomes ``_``."""
    out = re.sub(r"[^A-Za-z0-9._+-]+", "_", str(text)).strip("._-")
    return out[:120]


def num_text(x: float) -> str:
    """Short, exact-enough LR text for names: 0.01 -> '0.01', 1e-4 -> '0.0001', 3e-05 -> '3e-05'."""
    return f"{float(x):.6g}"


def config_name(optimizer: Any, entry: Mapping[str, Any], kwargs: Mapping[str, Any], lr: float | None,
                schedule_kwargs: Mapping[str, Any] | None) -> str:
    """The automatic name of the config that optimizer entry ``entry`` (its keys other than name and label) gives
    with train ``kwargs``; ``lr`` is the LR the name shows (None: none), ``schedule_kwargs`` the schedule axis'
    options."""
    parts = [_opt_name(optimizer)]
    parts += [_name_part(k, v) for k, v in entry.items()
              if k not in ("lr", "lr0", "schedule", "schedule_kwargs") or
              (k == "lr0" and "lr" in kwargs)]
    if lr is not None:
        parts.append(f"lr{num_text(lr)}")
    if kwargs.get("schedule") is not None:
        parts.append(str(kwargs["schedule"]).rsplit(":", 1)[-1].rsplit(".", 1)[-1])
        parts += [_name_part(k, v) for k, v in (schedule_kwargs or {}).items()]
    return safe_name("-".join(str(p) for p in parts))


def _opt_name(opt: Any) -> str:
    text = str(opt)
    return text.rsplit(":", 1)[-1] if ":" in text else text.lower()


def _name_part(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return key if value else f"no_{key}"
    if isinstance(value, (int, float)) and math.isfinite(value):
        return f"{key}{num_text(value)}"
    if isinstance(value, str):
        return f"{key}{value}"
    import hashlib
    import json

    digest = hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:6]
    return f"{key}{digest}"


DATA_SEP = "__"
"""Joins a dataset label and an optimizer config in the config names of a sweep with a ``data`` axis."""


def data_label(data: str) -> str:
    """A short name for a dataset: its name (``bccd``), a yaml's stem, or the folder of a ``data.yaml``."""
    from pathlib import Path

    p = Path(str(data))
    if p.name in ("data.yaml", "data.yml"):
        return safe_name(p.parent.name)
    return safe_name(p.stem if p.suffix in (".yaml", ".yml") else p.name).replace(DATA_SEP, "_")


def split_config(name: str) -> tuple[str | None, str]:
    """``'bccd__sgd-lr0.01'`` -> ``('bccd', 'sgd-lr0.01')``; a name without a dataset -> ``(None, name)``."""
    data, sep, config = name.partition(DATA_SEP)
    return (data, config) if sep else (None, name)


def baselines_by_dataset(configs: list[str], baseline: str | None) -> dict[str, str]:
    """Config -> the config it is tested against: the baseline's optimizer config on the config's own dataset.

    Without a data axis every config maps to ``baseline``. With one (names ``<dataset>__<config>``), a config on
    dataset ``d`` maps to ``d__<baseline's config part>``, or, when that one is not in ``configs``, to the first
    config listed on ``d``: statistics never compare results of two datasets.
    """
    if baseline is None:
        return {}
    base_data, base_config = split_config(baseline)
    if base_data is None:
        return {c: baseline for c in configs}
    first: dict[str | None, str] = {}
    for c in configs:
        first.setdefault(split_config(c)[0], c)
    out = {}
    for c in configs:
        data = split_config(c)[0]
        own = f"{data}{DATA_SEP}{base_config}" if data is not None else None
        out[c] = own if own in configs else first[data]
    return out

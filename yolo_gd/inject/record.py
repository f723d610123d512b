"""The run record ``yolo_gd_run.yaml`` beside Ultralytics' ``args.yaml``: what was resolved, and what changed."""

from __future__ import annotations

import platform
from pathlib import Path

from yolo_gd.inject.resolve import finetune_keys
from yolo_gd.optim.groups import describe_groups, format_groups

RECORD_NAME = "yolo_gd_run.yaml"


def announce(host, resolved, cfg) -> None:
    """Print the resolved run and write it to the record (rank 0)."""
    from ultralytics.utils import LOGGER

    optimizer = host.optimizer
    LOGGER.info(f"yolo_gd: injected {resolved.info.name} ({type(optimizer).__name__}), "
                f"{resolved.cadence.total_steps} optimizer steps, clip={resolved.clip}")
    LOGGER.info(format_groups(describe_groups(optimizer.param_groups)))
    update_record(host.save_dir, {"injected": resolved.summary(), "fingerprint": resolved.fingerprint(cfg),
                                  "finetune": finetune_keys(cfg),
                                  "groups": plain_rows(describe_groups(optimizer.param_groups)),
                                  "versions": versions()})


def update_record(save_dir: Path, entries: dict, *, append: dict | None = None) -> None:
    """Merge ``entries`` into the record; ``append`` maps list keys to items added to them (a history)."""
    from ultralytics.utils import YAML

    path = Path(save_dir) / RECORD_NAME
    record = (YAML.load(path) or {}) if path.exists() else {}
    record.update(entries)
    for key, item in (append or {}).items():
        record[key] = [*(record.get(key) or []), item]
    YAML.save(path, record)


def plain_rows(rows: list[dict]) -> list[dict]:
    """YAML-safe copies of describe_groups rows (tuples -> lists, numpy/torch scalars -> float)."""
    return [{k: list(v) if isinstance(v, tuple) else (v if isinstance(v, (str, int, float, type(None))) else float(v))
             for k, v in row.items()} for row in rows]


def versions() -> dict:
    import torch
    import ultralytics

    import yolo_gd

    return {"yolo_gd": yolo_gd.__version__, "ultralytics": ultralytics.__version__, "torch": str(torch.__version__),
            "python": platform.python_version()}

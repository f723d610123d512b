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

    optimizer, sam = host.optimizer, cfg.sam
    wrapped = f"{sam.kind} (rho {sam.rho:g}, alpha {sam.alpha:g}) over " if sam else ""
    LOGGER.info(f"yolo_gd: injected {wrapped}{resolved.info.name} ({type(optimizer).__name__}), "
                f"{resolved.cadence.total_steps} optimizer steps, clip={resolved.clip}")
    LOGGER.info(format_groups(describe_groups(optimizer.param_groups)))
    sam_entry = {"sam": sam.plain()} if sam else {}
    update_record(host.save_dir, {**sam_entry, "injected": resolved.summary(),
                                  "fingerprint": resolved.fingerprint(cfg), "finetune": finetune_keys(cfg),
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


class RunStarts:
    """Records each (re)start of the training loop in the record (``starts``: the 0-based epoch it started at).

    Ultralytics' results.csv ``time`` counts from the start of THIS process's loop, so after a resume it restarts
    at 0; the report (report/tables.py) adds the time before each recorded restart back, also where the restarted
    clock has not fallen below the previous row (a resume after a short first epoch)."""

    def on_train_start(self, trainer) -> None:
        from yolo_gd.inject.host import Host, rank

        if rank() in {-1, 0}:
            host = Host(trainer)
            update_record(host.save_dir, {}, append={"starts": {"epoch": host.start_epoch}})


def restart_epochs(save_dir: Path) -> set[int]:
    """The 0-based epochs at which a resumed loop restarted (from the record's ``starts``; empty when unknown)."""
    import yaml

    path = Path(save_dir) / RECORD_NAME
    try:
        record = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        return set()
    starts = (record or {}).get("starts") if isinstance(record, dict) else None
    return {int(s["epoch"]) for s in starts or () if isinstance(s, dict) and isinstance(s.get("epoch"), int)
            and s["epoch"] > 0}

"""``protocol: lrfind``'s spec options: ``lrfind: {steps, lr_min, lr_max, probe, probe_every}`` (checked here, run by
:mod:`~yolo_gd.ablate.lrfind_stage`)."""

from __future__ import annotations

from collections.abc import Mapping

from yolo_gd.ablate.validate import positive_number
from yolo_gd.ablate.yamlpos import Where
from yolo_gd.errors import UserError, unknown_name

__all__ = ["LRFIND_KEYS", "check_lrfind", "check_lrfind_optimizer"]

#: ``lrfind:`` options of ``protocol: lrfind`` (lr_find's own keywords; the rest come from each config).
LRFIND_KEYS = ("steps", "lr_min", "lr_max", "probe", "probe_every")


def check_lrfind(where: Where, raw: dict, protocol: str) -> dict:
    """``lrfind: {steps, lr_min, lr_max, probe, probe_every}`` (only with ``protocol: lrfind``; each optional)."""
    if "lrfind" in raw and protocol != "lrfind":
        raise where.error(("lrfind",), "lrfind options are only used with 'protocol: lrfind': add it, or remove "
                                       "lrfind")
    opts = raw.get("lrfind") or {}
    if not isinstance(opts, Mapping):
        raise where.error(("lrfind",), "lrfind takes a mapping, e.g. {steps: 100, lr_min: 1e-6, lr_max: 1}")
    for key, value in opts.items():
        if key not in LRFIND_KEYS:
            raise where.error(("lrfind", key), str(unknown_name("lrfind option", key, LRFIND_KEYS)))
        positive_number(where, ("lrfind", key), value, f"lrfind {key}")
    return dict(opts)


def check_lrfind_optimizer(where: Where, entry_path: tuple, optimizer: str) -> None:
    """An optimizer the range test refuses (LR-free ones) is an error at its spec line, before anything runs."""
    from yolo_gd.lrfind.run import check_optimizer

    try:
        check_optimizer(optimizer)
    except UserError as e:
        raise where.error(entry_path, str(e)) from None

"""Read a W&B offline run file (``run-<id>.wandb``) back, for tests: wandb 0.31 writes it from its Go core and ships
no Python reader, so this decodes its framing (a 7-byte ``:W&B`` header, then LevelDB log records in 32 KiB blocks)
and parses each record with wandb's own protobuf ``Record``."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

_BLOCK = 32768
_HEADER = 7  # ':W&B', magic 0xBEE1, version
_FULL, _LAST = 1, 4


def records(path: str | Path) -> list:
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file (header {data[:7]!r})")
    pos, out, chunk = _HEADER, [], b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (length == 0 and kind == 0):  # block trailer / zero padding: next block
            pos += left
            continue
        chunk += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (_FULL, _LAST):
            record = pb.Record()
            record.ParseFromString(chunk)
            out.append(record)
            chunk = b""
    return out


def finished_records(root: str | Path, timeout: float = 60.0) -> list:
    """The records of the one ``*.wandb`` file under ``root``, once its final ``exit`` record is on disk.

    ``run.finish()`` (and the end of the process that ran it) can return before wandb's core has written the file:
    measured here, a 7-byte file right after ``finish()``, complete a moment later."""
    deadline = time.monotonic() + timeout
    while True:
        found = list(Path(root).rglob("*.wandb"))
        if len(found) > 1:
            raise AssertionError(f"more than one W&B run file under {root}: {found}")
        got = records(found[0]) if found else []
        if (got and got[-1].WhichOneof("record_type") == "exit") or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def history_rows(root: str | Path) -> list[dict]:
    """The history rows (one dict per committed ``log``) of the one ``*.wandb`` file under ``root``."""
    return [{("/".join(i.nested_key) or i.key): json.loads(i.value_json) for i in r.history.item}
            for r in finished_records(root) if r.WhichOneof("record_type") == "history"]

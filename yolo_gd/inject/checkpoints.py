"""Atomic checkpoint writes for an attached run: ``last.pt``, ``best.pt`` and ``epochN.pt``.

Ultralytics writes each checkpoint in place (``Path.write_bytes``, ``engine/trainer.py`` ``save_model``), so a
kill during that write leaves a truncated ``last.pt`` and the run cannot be resumed. :class:`AtomicCheckpoints`
gives THIS trainer's checkpoint paths (``last``, ``best``, and ``wdir``, from which ``epochN.pt`` is joined) a
``write_bytes`` that writes a temporary file beside the target, fsyncs it, renames it over the target and fsyncs
the folder: a reader (or a resume after ``kill -9``) sees the old checkpoint or the new one, never a part. The
class and every other trainer are untouched (no global patch), so two runs in one process do not interact.

The temporary name (``.last.pt.tmp``) does not match Ultralytics' ``last*.pt`` glob (``get_latest_run``).
``final_eval``'s ``strip_optimizer`` (after the last epoch) saves with ``torch.save`` and is not covered.
"""

from __future__ import annotations

import os
from pathlib import Path

from yolo_gd.inject.host import Host


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file, fsync, rename, fsync of the folder."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # a platform without directory fds (Windows): the rename itself is atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicPath(type(Path())):
    """A path whose ``write_bytes`` is atomic; paths joined from it (``wdir / 'epoch3.pt'``) are atomic too."""

    def write_bytes(self, data) -> int:
        view = memoryview(data)
        atomic_write_bytes(Path(self), view)
        return view.nbytes


class AtomicCheckpoints:
    """The callback: on every rank at ``on_pretrain_routine_end`` (rank 0 saves), before the first save."""

    def on_pretrain_routine_end(self, trainer) -> None:
        Host(trainer).use_checkpoint_paths(AtomicPath)

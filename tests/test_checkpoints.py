"""inject/checkpoints.py: atomic checkpoint writes on one trainer's paths only (the kill -9 inside a write of
last.pt, then resume, is in tests/test_exact_resume.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from yolo_gd.inject.checkpoints import AtomicPath
from yolo_gd.inject.host import Host


def test_one_trainers_checkpoint_paths_write_atomically_and_others_are_untouched(tmp_path):
    wdir = tmp_path / "weights"
    wdir.mkdir()
    trainer = SimpleNamespace(wdir=wdir, last=wdir / "last.pt", best=wdir / "best.pt")  # trainer.py 163-168
    other = SimpleNamespace(wdir=wdir, last=wdir / "last.pt", best=wdir / "best.pt")
    Host(trainer).use_checkpoint_paths(AtomicPath)
    epoch = trainer.wdir / "epoch3.pt"  # how save_model joins epochN.pt
    assert all(type(p) is AtomicPath for p in (trainer.last, trainer.best, epoch))
    assert type(other.last) is type(Path())
    trainer.last.write_bytes(b"old")
    assert trainer.last.write_bytes(b"new checkpoint") == 14
    assert trainer.last.read_bytes() == b"new checkpoint"
    assert sorted(p.name for p in wdir.iterdir()) == ["last.pt"]  # no temporary left behind

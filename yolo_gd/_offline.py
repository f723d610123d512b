"""Weights the way users get them: local files, or Ultralytics' normal download, never a hang or a traceback.

Importing yolo_gd changes no environment variable and no Ultralytics setting. ``YOLO_OFFLINE`` is the user's:
unset, ``model=yolo11n.pt`` goes through Ultralytics' own download (:func:`fetch_weights`); set (``1``, ``true``),
or with no network, the answer is one line that says what to do instead (a local ``.pt``, or a ``.yaml`` to
train from scratch) before any connection is tried, or after one quick failed connection.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from yolo_gd.errors import UserError, one_line

#: Seconds to wait for the download host before saying the network is unreachable.
REACH_TIMEOUT = 5.0


def is_offline() -> bool:
    """Whether the user set ``YOLO_OFFLINE`` (read as Ultralytics reads it: 1, true, yes, on, y, t)."""
    return os.environ.get("YOLO_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on", "y", "t"}


def local_weights(model: str | os.PathLike) -> Path | None:
    """``model`` on disk, as given or in Ultralytics' ``weights_dir`` (where it looks before downloading)."""
    path = Path(model)
    if path.is_file():
        return path
    from ultralytics.utils import SETTINGS

    cached = Path(SETTINGS["weights_dir"]) / path
    return cached if cached.is_file() else None


def check_local_weights(model: str | os.PathLike) -> str:
    """Return ``model`` if it can be built without a download, else raise a one-line :class:`UserError`.

    ``*.yaml`` model configs ship inside Ultralytics; a ``*.pt`` must exist on disk."""
    text = str(model)
    if text.endswith(".pt") and local_weights(text) is None:
        raise UserError(f"weights '{text}' are not on disk: pass the path of a local .pt file, or build from a "
                        f"config instead (model={Path(text).stem}.yaml)")
    return text


def _fix(text: str) -> str:
    """Train from scratch with the config of the same model (yolo11n.pt -> yolo11n.yaml) when that ships."""
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    config = f"{Path(text).stem}.yaml" if Path(text).name in GITHUB_ASSETS_NAMES else "yolo11n.yaml"
    return f"pass a local .pt file, or train from scratch with a model config (model={config})"


def _reachable(host: str) -> bool:
    try:
        socket.create_connection((host, 443), timeout=REACH_TIMEOUT).close()
        return True
    except OSError:
        return False


def check_weights(model: str) -> str | None:
    """The local path of ``model`` if it needs no download (non-``.pt`` names as they are), else None when a
    download may bring it; :class:`UserError` when none can (``YOLO_OFFLINE`` set, or not a released name).
    Opens no connection."""
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    text = str(model)
    url = text.lower().startswith(("http://", "https://"))
    if not text.endswith(".pt") and not url:
        return text
    if not url and (found := local_weights(text)) is not None:
        return str(found)
    if not url and Path(text).name not in GITHUB_ASSETS_NAMES:
        raise UserError(f"weights '{text}' are not on disk (only Ultralytics' released names such as yolo11n.pt "
                        f"download by name): check the path, or {_fix(text)}", key="model")
    if is_offline():
        raise UserError(f"weights '{text}' are not on disk and YOLO_OFFLINE is set, so they are not downloaded: "
                        f"unset YOLO_OFFLINE to download them, or {_fix(text)}", key="model")
    return None


def fetch_weights(model: str) -> str:
    """The local path of checkpoint ``model``, downloaded by Ultralytics when it is a released name (``yolo11n.pt``)
    or a URL and not on disk yet. Non-``.pt`` names are returned unchanged.

    Raises :class:`UserError` without any connection when ``YOLO_OFFLINE`` is set or the name can never be
    downloaded, and after one quick connection attempt when the download host is unreachable (Ultralytics itself
    would retry for about half a minute, then raise a traceback).
    """
    from ultralytics.utils.downloads import attempt_download_asset

    text = str(model)
    found = check_weights(text)
    if found is not None:
        return found
    url = text.lower().startswith(("http://", "https://"))
    host = urlparse(text).hostname if url else "github.com"
    if not host or not _reachable(host):
        raise UserError(f"weights '{text}' are not on disk and cannot be downloaded ({host} is unreachable: no "
                        f"network?): {_fix(text)}", key="model")
    try:
        path = attempt_download_asset(text)
    except Exception as e:  # noqa: BLE001 - any failed download is the same one-line answer
        raise UserError(f"downloading '{text}' failed ({one_line(e, 160)}): {_fix(text)}", key="model") from None
    if not Path(path).is_file():
        raise UserError(f"weights '{text}' could not be downloaded: {_fix(text)}", key="model")
    return str(path)

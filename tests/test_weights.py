"""Weights the way users get them (issue 13): no YOLO_OFFLINE forced on import, Ultralytics' download when allowed,
one line without a hang when it cannot happen."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from yolo_gd import _offline
from yolo_gd.cli import main
from yolo_gd.errors import UserError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def network(monkeypatch):
    """Record every connection and name look-up; connections fail as on a machine without network."""
    attempts: list = []

    def refuse(self, address, *args):
        attempts.append(("connect", address))
        raise OSError(101, "Network is unreachable (test)")

    def resolve(host, *args, **kwargs):
        attempts.append(("getaddrinfo", host))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", args[0] if args else 443))]

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return attempts


def _run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_offline_missing_weights_open_no_connection(capsys, network, tiny_data, tmp_path):
    """(a) YOLO_OFFLINE=1 (conftest): one line, exit 2, and not a single connection or look-up."""
    assert os.environ["YOLO_OFFLINE"] == "1"
    code, out, err = _run(capsys, ["train", "model=yolo11n.pt", f"data={tiny_data}", f"project={tmp_path / 'p'}"])
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err + out
    assert "YOLO_OFFLINE is set" in err and "model=yolo11n.yaml" in err and "local .pt" in err
    assert network == [] and not (tmp_path / "p").exists()


def test_unreachable_network_is_one_line_quickly(capsys, network, monkeypatch, tiny_data, tmp_path):
    """(b) YOLO_OFFLINE unset and the network unreachable: the download is tried, then one line; no ~35 s of
    Ultralytics retries. The bound only guards against a hang, it is not a speed claim."""
    monkeypatch.delenv("YOLO_OFFLINE")
    start = time.monotonic()
    code, out, err = _run(capsys, ["train", "model=yolo11n.pt", f"data={tiny_data}", f"project={tmp_path / 'p'}"])
    elapsed = time.monotonic() - start
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err + out
    assert "cannot be downloaded (github.com is unreachable: no network?)" in err and "model=yolo11n.yaml" in err
    assert ("connect", ("192.0.2.1", 443)) in network  # the download was really attempted
    assert elapsed < 30, f"took {elapsed:.1f} s"
    assert not (tmp_path / "p").exists()


def test_failed_download_is_one_line(monkeypatch):
    import ultralytics.utils.downloads as downloads

    def fail(*args, **kwargs):
        raise ConnectionError("❌  Download failure for https://github.com/.../yolo11n.pt. Retry limit reached.")

    monkeypatch.delenv("YOLO_OFFLINE")
    monkeypatch.setattr(_offline, "_reachable", lambda host: True)
    monkeypatch.setattr(downloads, "attempt_download_asset", fail)
    with pytest.raises(UserError, match=r"^downloading 'yolo11n.pt' failed \(Download failure for .*Retry limit"):
        _offline.fetch_weights("yolo11n.pt")


def test_download_goes_through_ultralytics(monkeypatch, tmp_path):
    """Online, a released name is handed to Ultralytics' attempt_download_asset and its file is used."""
    import ultralytics.utils.downloads as downloads

    asked = []

    def download(name, *args, **kwargs):
        asked.append(name)
        (tmp_path / name).write_bytes(b"weights")
        return str(tmp_path / name)

    monkeypatch.delenv("YOLO_OFFLINE")
    monkeypatch.setattr(_offline, "_reachable", lambda host: True)
    monkeypatch.setattr(downloads, "attempt_download_asset", download)
    assert _offline.fetch_weights("yolo11n.pt") == str(tmp_path / "yolo11n.pt") and asked == ["yolo11n.pt"]


def test_local_and_not_downloadable_weights(tmp_path, network):
    local = tmp_path / "best.pt"
    local.write_bytes(b"x")
    assert _offline.fetch_weights(str(local)) == str(local) and _offline.fetch_weights("yolo11n.yaml") == "yolo11n.yaml"
    with pytest.raises(UserError, match="only Ultralytics' released names"):
        _offline.fetch_weights(str(tmp_path / "other.pt"))
    assert network == []


_IMPORTS = """
import json, os, sys
before = dict(os.environ)
import yolo_gd, yolo_gd.cli, yolo_gd.schema, yolo_gd.errors, yolo_gd.inject.config
light = {"env": dict(os.environ) == before, "ultralytics": "ultralytics" in sys.modules}
import ultralytics
from ultralytics.utils import SETTINGS
ul_env, ul_settings = dict(os.environ), dict(SETTINGS)
import yolo_gd.training, yolo_gd.preflight, yolo_gd._offline, yolo_gd.inject.attach, yolo_gd.ablate.spec
import yolo_gd.ablate.worker
yolo_gd.train, yolo_gd.attach
print(json.dumps({**light, "same_env": dict(os.environ) == ul_env, "same_settings": dict(SETTINGS) == ul_settings,
                  "offline": os.environ.get("YOLO_OFFLINE")}))
"""


def test_importing_yolo_gd_changes_no_environment(tmp_path):
    """(c) In a clean environment: importing yolo_gd sets nothing (Ultralytics' own import aside)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(REPO),
           "YOLO_CONFIG_DIR": str(tmp_path / "cfg"), "MPLCONFIGDIR": str(tmp_path / "mpl")}
    done = subprocess.run([sys.executable, "-c", _IMPORTS], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"env": True, "ultralytics": False, "same_env": True, "same_settings": True, "offline": None}

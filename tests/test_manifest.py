"""The sweep manifest: state round-trip, atomic writes, and the keys the report reads."""

from __future__ import annotations

import json
import os

import pytest

from yolo_gd.ablate.manifest import MANIFEST_NAME, STATES, Manifest, TrialRecord, manifest_path, read_manifest
from yolo_gd.errors import UserError

#: What the report relies on (see the module docstring of yolo_gd.ablate.manifest).
TOP_KEYS = {"sweep", "target", "baseline", "tuned", "trials", "spec", "spec_copy", "created"}
TRIAL_KEYS = {"config", "seed", "state", "reason", "dir", "shared_device", "device", "started", "finished", "stage"}


def _manifest(tmp_path) -> Manifest:
    m = Manifest(path=manifest_path(tmp_path / "sw"), sweep="sw", spec="/x/sw.yaml", spec_copy="name: sw\n",
                 target={"metric": "metrics/mAP50(B)", "value": 0.5}, baseline="sgd-lr0.01",
                 tuned={"sgd": {"tried": {"0.001": 0.2, "0.01": None}, "picked": 0.001, "metric": "m", "split": "val"}})
    m.trials["sgd-lr0.01-s0"] = TrialRecord(config="sgd-lr0.01", seed=0, dir=str(tmp_path / "sw" / "sgd-lr0.01-s0"))
    m.trials["adamw-s1"] = TrialRecord(config="adamw", seed=1, dir=str(tmp_path / "sw" / "adamw-s1"), stage="tune",
                                       state="failed", reason="exit code 1; last lines:\nboom", pid=None,
                                       started=1.5, finished=2.5, elapsed=1.0, shared_device=True, device="0",
                                       attempts=2, kwargs={"lr": 1e-3, "groups": {"a.*": {"lr": 0.1}}})
    return m


def test_round_trip_keeps_every_state(tmp_path):
    m = _manifest(tmp_path)
    for state in STATES:
        m.trials["sgd-lr0.01-s0"].state = state
        m.save()
        back = Manifest.load(tmp_path / "sw")  # the folder or the file
        assert back.to_dict() == m.to_dict()
        assert back.trials["sgd-lr0.01-s0"].state == state
        assert back.trials["adamw-s1"] == m.trials["adamw-s1"]
    assert Manifest.load(m.path).path == m.path


def test_bad_state_or_stage_is_refused():
    with pytest.raises(ValueError, match="state"):
        TrialRecord(config="c", seed=0, dir="/d", state="paused")
    with pytest.raises(ValueError, match="stage"):
        TrialRecord(config="c", seed=0, dir="/d", stage="warmup")


def test_write_is_atomic(tmp_path, monkeypatch):
    m = _manifest(tmp_path)
    m.save()
    before = m.path.read_text()
    m.trials["sgd-lr0.01-s0"].state = "done"

    def crash(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        m.save()
    assert m.path.read_text() == before  # the old manifest is untouched
    assert sorted(p.name for p in m.path.parent.iterdir()) == [MANIFEST_NAME]  # no temp file left behind
    monkeypatch.undo()
    m.save()
    assert read_manifest(m.path)["trials"]["sgd-lr0.01-s0"]["state"] == "done"


def test_read_contract(tmp_path):
    m = _manifest(tmp_path)
    m.save()
    d = json.loads(m.path.read_text())  # plain JSON: the report needs no yolo_gd classes
    assert TOP_KEYS <= set(d)
    assert d["sweep"] == "sw" and d["baseline"] == "sgd-lr0.01"
    assert d["target"] == {"metric": "metrics/mAP50(B)", "value": 0.5}
    assert d["tuned"]["sgd"]["picked"] == 0.001 and d["tuned"]["sgd"]["split"] == "val"
    assert d["tuned"]["sgd"]["tried"] == {"0.001": 0.2, "0.01": None}
    for rec in d["trials"].values():
        assert TRIAL_KEYS <= set(rec)
        assert rec["state"] in STATES and rec["stage"] in ("tune", "main")
        assert isinstance(rec["seed"], int) and isinstance(rec["shared_device"], bool)
        assert os.path.isabs(rec["dir"])
    assert read_manifest(tmp_path / "sw") == d


def test_read_manifest_errors(tmp_path):
    with pytest.raises(UserError, match="no sweep manifest"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text("{oops")
    with pytest.raises(UserError, match="not valid JSON"):
        read_manifest(tmp_path)

"""The sweep runner's bookkeeping on a recording backend (no training): what each trial is handed, once."""

from __future__ import annotations

import json
import time
from pathlib import Path

from yolo_gd.ablate.backend import Finished, Placement, Running
from yolo_gd.ablate.manifest import read_manifest
from yolo_gd.ablate.spec import load_spec
from yolo_gd.ablate.sweep_runner import SweepRunner


class RecordingBackend:
    """Starts nothing: records each trial file and reports the trial done at the next poll."""

    def __init__(self, slots=("cpu",)):
        self.slots, self.jobs = list(slots), []

    def place(self, slot: int) -> Placement:
        return Placement(device="cpu", trial_device="cpu")

    def start(self, name, job: Path, attempt, place, now) -> Running:
        self.jobs.append(json.loads(job.read_text()))
        return Running(name, None, 0, time.monotonic(), "cpu")

    def finished(self, running):
        return [Finished(r, code=0) for r in running]

    def stop(self, running):
        pass


def test_checkpoints_are_fetched_once_in_the_runner_and_trials_get_the_local_file(tmp_path, tiny_data, monkeypatch):
    import yolo_gd._offline as offline

    fetched = []
    local = str(tmp_path / "cache" / "yolo11n.pt")
    monkeypatch.setattr(offline, "check_weights", lambda model: None)  # the spec check: "a download may bring it"
    monkeypatch.setattr(offline, "fetch_weights", lambda model: fetched.append(model) or local)
    spec = tmp_path / "w.yaml"
    spec.write_text(f"name: w\nbase: {{model: yolo11n.pt, data: '{tiny_data}', imgsz: 64}}\n"
                    f"axes:\n  optimizer: [sgd, adamw]\nseeds: [0, 1]\nbudget: {{epochs: 1}}\n", encoding="utf-8")
    backend = RecordingBackend()
    lines: list[str] = []
    runner = SweepRunner(load_spec(spec), spec, tmp_path / "runs" / "w", backend, lines.append, False, 3600.0, 0.0)
    runner.run()
    assert fetched == ["yolo11n.pt"]  # once for four trials, before the first starts
    assert [j["kwargs"]["model"] for j in backend.jobs] == [local] * 4
    m = read_manifest(tmp_path / "runs" / "w")
    assert all(t["state"] == "done" and t["kwargs"]["model"] == local for t in m["trials"].values())
    assert lines[-1] == "[4/4 done, 0 running, 0 failed] ETA 0s"

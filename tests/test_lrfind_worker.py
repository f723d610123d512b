"""Tests of yolo_gd.ablate.lrfind_worker: range tests side by side, one process per slot, record what one test in
the runner process records."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from yolo_gd.ablate.lrfind_stage import run_range_tests
from yolo_gd.ablate.lrfind_worker import LOG, _result
from yolo_gd.ablate.manifest import Manifest, read_manifest
from yolo_gd.ablate.spec import Config


def _sweep(data):
    base = {"model": "yolo11n.yaml", "data": str(data), "imgsz": 32, "batch": 8, "nbs": 8, "workers": 0,
            "deterministic": True, "amp": False, "plots": False}
    configs = [Config("sgd", "sgd", {**base, "optimizer": "sgd"}, center_lr=0.01),
               Config("adamw", "adamw", {**base, "optimizer": "adamw"}, center_lr=0.001)]
    return SimpleNamespace(configs=configs, seeds=(0,), budget=SimpleNamespace(epochs=1),
                           lrfind={"steps": 6, "lr_min": 1e-4, "lr_max": 1e-1, "probe": 8})


def _run(tmp_path, sweep, devices, threads=None):
    lines = []
    m = Manifest(path=tmp_path / "manifest.json", sweep="s", protocol="lrfind")
    run_range_tests(sweep, m, tmp_path, lines.append, devices, threads)
    return read_manifest(tmp_path / "manifest.json")["lrfind"], lines


def test_side_by_side_tests_record_what_tests_in_the_runner_record(tiny_data, tmp_path):
    sweep = _sweep(tiny_data)
    serial, _ = _run(tmp_path / "serial", sweep, ("cpu",))
    both, lines = _run(tmp_path / "both", sweep, ("cpu", "cpu"), threads=1)
    assert list(both) == ["sgd", "adamw"]
    for name in both:
        a, b = dict(serial[name]), dict(both[name])
        for rec in (a, b):
            rec.pop("seconds")
            rec.pop("plot"), rec.pop("csv")
        assert a == b  # the same suggestion, rule, reason, steps and conditions
        curve = [pd.read_csv(tmp_path / run / "lrfind" / name / "lrfind.csv") for run in ("serial", "both")]
        pd.testing.assert_frame_equal(*curve)  # every probe loss equal: the same test, in another process
        log = (tmp_path / "both" / "lrfind" / name / LOG).read_text()
        assert "1 CPU thread(s) for this trial" in log and "Starting training" in log
    assert lines[0] == (f"[ablate] LR range tests (protocol lrfind) on the train split, side by side: sgd, adamw "
                        f"(logs: {tmp_path / 'both' / 'lrfind'}/<config>/lrfind.log)")
    assert [line.split(":")[0] for line in lines[1:]] == ["[ablate] sgd", "[ablate] adamw"]


def test_a_worker_without_result_is_an_error_naming_its_log(tmp_path):
    (tmp_path / LOG).write_text("Traceback (most recent call last):\nKeyError: 'bug'\n")
    with pytest.raises(RuntimeError, match=r"range test of sgd ended with exit code 1 and no result; its log .*"
                                           r"lrfind.log\) ends:\nTraceback .*\nKeyError: 'bug'"):
        _result("sgd", tmp_path, 1)


def test_side_by_side_tests_on_a_shapes_set_not_generated_yet(tmp_path, monkeypatch):
    """Both workers used to generate the default set at once, each replacing the other's folder: one test failed
    its dataset check. The parent now generates it (and fetches weights) before any worker starts."""
    monkeypatch.chdir(tmp_path)
    sweep = _sweep("shapes")
    sweep.lrfind = {"steps": 4, "probe": 4}
    rec, _ = _run(tmp_path / "sweep", sweep, ("cpu", "cpu"), threads=1)
    assert all(r["reason"] != "failed" and r["steps"] == 4 for r in rec.values())
    job = (tmp_path / "sweep" / "lrfind" / "sgd" / "job.json").read_text()
    assert str(tmp_path / "datasets" / "shapes" / "data.yaml") in job

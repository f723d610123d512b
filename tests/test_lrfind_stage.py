"""Tests of yolo_gd.ablate.lrfind_stage with lr_find monkeypatched: what each config's range test records."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from yolo_gd.ablate.lrfind_stage import range_test_kwargs, run_range_tests
from yolo_gd.ablate.manifest import Manifest, read_manifest
from yolo_gd.ablate.spec import Config
from yolo_gd.lrfind import run
from yolo_gd.lrfind.rangetest import Suggestion

A = Config("sgd-a", "sgd", {"optimizer": "sgd", "lr": 0.01, "schedule": "cosine", "epochs": 3, "warmup_epochs": 1,
                            "imgsz": 64, "momentum": 0.9}, lr=0.01, center_lr=0.01)
B = Config("adamw-b", "adamw", {"optimizer": "adamw", "imgsz": 64}, center_lr=0.002)


def _sweep(*configs, lrfind=None):
    return SimpleNamespace(configs=configs, seeds=(7, 8), lrfind=lrfind or {})


def _fake(monkeypatch, result):
    calls = []

    def lr_find(**kw):
        calls.append(kw)
        if isinstance(result, Exception):
            raise result
        return run.LrFindResult(kw["out"], result, 40, True, 12.34, kw["out"] / "lrfind.csv", kw["out"] / "p.png")

    monkeypatch.setattr(run, "lr_find", lr_find)
    return calls


def _run(tmp_path, sweep, m=None):
    m = m or Manifest(path=tmp_path / "manifest.json", sweep="s", protocol="lrfind")
    lines = []
    run_range_tests(sweep, m, tmp_path, lines.append)
    return read_manifest(tmp_path / "manifest.json")["lrfind"], lines


def test_range_test_kwargs_drop_the_keys_the_test_sets():
    assert range_test_kwargs(A, 3) == {"optimizer": "sgd", "imgsz": 64, "momentum": 0.9, "seed": 3}


def test_suggestion_becomes_the_lr(tmp_path, monkeypatch):
    calls = _fake(monkeypatch, Suggestion(0.0123, "valley", {"steepest": 0.02}))
    rec, lines = _run(tmp_path, _sweep(A, lrfind={"steps": 40.0, "lr_max": 1}))
    out = tmp_path / "lrfind" / "sgd-a"
    assert calls == [{"out": out, "optimizer": "sgd", "imgsz": 64, "momentum": 0.9, "seed": 7, "steps": 40,
                      "lr_max": 1}]
    assert type(calls[0]["steps"]) is int
    assert rec == {"sgd-a": {"lr": 0.0123, "rule": "valley", "suggested": 0.0123, "others": {"steepest": 0.02},
                             "steps": 40, "seconds": 12.3, "stopped_at_divergence": True, "split": "train",
                             "plot": str(out / "p.png"), "csv": str(out / "lrfind.csv")}}
    assert lines == ["[ablate] sgd-a: LR range test (protocol lrfind) on the train split",
                     "[ablate] sgd-a: range test suggests lr 0.0123 (valley; 40 steps, 12 s)"]


def test_no_suggestion_keeps_the_entry_lr(tmp_path, monkeypatch):
    _fake(monkeypatch, Suggestion(None, "none", {"valley": None}))
    rec, lines = _run(tmp_path, _sweep(B))
    rule = "fallback: no suggestion (the loss never fell): the entry's LR"
    assert rec["adamw-b"]["lr"] == 0.002 and rec["adamw-b"]["rule"] == rule
    assert rec["adamw-b"]["suggested"] is None and rec["adamw-b"]["others"] == {"valley": None}
    assert lines[-1] == f"[ablate] adamw-b: range test suggests lr 0.002 ({rule}; 40 steps, 12 s)"


@pytest.mark.parametrize("error, first", [(RuntimeError("CUDA out of memory\nTried to allocate"), "CUDA out of memory"),
                                          (ValueError(""), "ValueError")])
def test_a_failed_test_falls_back_to_the_entry_lr(tmp_path, monkeypatch, error, first):
    _fake(monkeypatch, error)
    rec, lines = _run(tmp_path, _sweep(A))
    got = rec["sgd-a"]
    assert got.pop("seconds") < 1.0
    assert got == {"lr": 0.01, "rule": f"fallback: the range test failed ({first})", "suggested": None, "others": {},
                   "steps": 0, "stopped_at_divergence": False, "split": "train", "plot": None, "csv": None}
    assert lines[-1] == f"[ablate] sgd-a: range test failed ({first}): using lr 0.01"


def test_other_errors_propagate(tmp_path, monkeypatch):
    _fake(monkeypatch, KeyError("bug"))
    with pytest.raises(KeyError, match="bug"):
        _run(tmp_path, _sweep(A))


def test_a_recorded_test_is_not_rerun(tmp_path, monkeypatch):
    calls = _fake(monkeypatch, Suggestion(0.5, "min/10", {}))
    m = Manifest(path=tmp_path / "manifest.json", sweep="s", lrfind={"sgd-a": {"lr": 0.1, "rule": "kept"}})
    rec, lines = _run(tmp_path, _sweep(A, B), m)
    assert [Path(c["out"]).name for c in calls] == ["adamw-b"]
    assert rec == {"sgd-a": {"lr": 0.1, "rule": "kept"}, "adamw-b": m.lrfind["adamw-b"]}
    assert rec["adamw-b"]["lr"] == 0.5 and len(lines) == 2

"""Tests of yolo_gd.ablate.lrfind_stage with lr_find monkeypatched: what each config's range test records."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from yolo_gd.ablate.lrfind_stage import range_test_kwargs, run_range_tests
from yolo_gd.ablate.manifest import Manifest, read_manifest
from yolo_gd.ablate.spec import Config
from yolo_gd.lrfind import run
from yolo_gd.lrfind.rangetest import Verdict

A = Config("sgd-a", "sgd", {"optimizer": "sgd", "lr": 0.01, "schedule": "cosine", "epochs": 3, "warmup_epochs": 1,
                            "imgsz": 64, "momentum": 0.9}, lr=0.01, center_lr=0.01)
B = Config("adamw-b", "adamw", {"optimizer": "adamw", "imgsz": 64}, center_lr=0.002)


def _sweep(*configs, lrfind=None, epochs=20):
    return SimpleNamespace(configs=configs, seeds=(7, 8), lrfind=lrfind or {}, budget=SimpleNamespace(epochs=epochs))


def _verdict(lr, rule="valley", others=None, reason=None, advice=None):
    return Verdict(lr, rule, reason, advice, 5.0, 3.0, 0.1, 0.05, others or {})


CONDITIONS = {"lr_min": 1e-6, "lr_max": 1.0, "steps_planned": 40}


def _fake(monkeypatch, result):
    calls = []

    def lr_find(**kw):
        calls.append(kw)
        if isinstance(result, Exception):
            raise result
        return run.LrFindResult(kw["out"], result, 40, True, 12.34, kw["out"] / "lrfind.csv", kw["out"] / "p.png",
                                CONDITIONS)

    monkeypatch.setattr(run, "lr_find", lr_find)
    return calls


def _run(tmp_path, sweep, m=None, device=None):
    m = m or Manifest(path=tmp_path / "manifest.json", sweep="s", protocol="lrfind")
    lines = []
    run_range_tests(sweep, m, tmp_path, lines.append, (device,))
    return read_manifest(tmp_path / "manifest.json")["lrfind"], lines


def test_range_test_kwargs_drop_the_keys_the_test_sets_and_add_the_trials_conditions():
    # Ultralytics' defaults batch 16, nbs 64; close_mosaic 10 < 20 epochs: the trial starts with mosaic
    assert range_test_kwargs(A, 3, 20) == {"optimizer": "sgd", "imgsz": 64, "momentum": 0.9, "seed": 3, "batch": 16,
                                           "nbs": 64, "mosaic": True}
    assert range_test_kwargs(A, 3, 10)["mosaic"] is False  # close_mosaic 10 covers all 10 epochs
    assert range_test_kwargs(A, 3, None)["mosaic"] is True  # a time budget
    c = Config("c", "sgd", {"optimizer": "sgd", "batch": 8, "nbs": 32, "close_mosaic": 0, "fraction": 0.5,
                            "device": "1"})
    assert range_test_kwargs(c, 0, 5, device="cpu") == {"optimizer": "sgd", "batch": 8, "nbs": 32, "fraction": 0.5,
                                                        "device": "1", "seed": 0, "mosaic": True}
    assert range_test_kwargs(B, 0, 5, device="2")["device"] == "2"


def test_suggestion_becomes_the_lr(tmp_path, monkeypatch):
    calls = _fake(monkeypatch, _verdict(0.0123, others={"steepest": 0.02}))
    rec, lines = _run(tmp_path, _sweep(A, lrfind={"steps": 40.0, "lr_max": 1}), device="cpu")
    out = tmp_path / "lrfind" / "sgd-a"
    assert calls == [{"out": out, "optimizer": "sgd", "imgsz": 64, "momentum": 0.9, "seed": 7, "batch": 16,
                      "nbs": 64, "mosaic": True, "device": "cpu", "steps": 40, "lr_max": 1}]
    assert type(calls[0]["steps"]) is int
    assert rec == {"sgd-a": {"lr": 0.0123, "rule": "valley", "suggested": 0.0123, "reason": None, "advice": None,
                             "others": {"steepest": 0.02}, "steps": 40, "seconds": 12.3, "stopped_at_divergence": True,
                             "split": "train", "plot": str(out / "p.png"), "csv": str(out / "lrfind.csv"),
                             "conditions": CONDITIONS}}
    assert lines == ["[ablate] sgd-a: LR range test (protocol lrfind) on the train split",
                     "[ablate] sgd-a: range test suggests lr 0.0123 (valley; 40 steps, 12 s)"]


def test_no_reliable_suggestion_keeps_the_entry_lr(tmp_path, monkeypatch):
    _fake(monkeypatch, _verdict(None, "none", {"valley": None}, "too noisy", "use more probe images"))
    rec, lines = _run(tmp_path, _sweep(B))
    rule = "fallback: no reliable suggestion (too noisy): the entry's LR"
    assert rec["adamw-b"]["lr"] == 0.002 and rec["adamw-b"]["rule"] == rule
    assert rec["adamw-b"]["suggested"] is None and rec["adamw-b"]["reason"] == "too noisy"
    assert rec["adamw-b"]["advice"] == "use more probe images"
    assert lines[-1] == ("[ablate] adamw-b: range test gives no reliable suggestion (too noisy: use more probe "
                         "images): using the entry's lr 0.002")


@pytest.mark.parametrize("error, first", [(RuntimeError("CUDA out of memory\nTried to allocate"), "CUDA out of memory"),
                                          (ValueError(""), "ValueError")])
def test_a_failed_test_falls_back_to_the_entry_lr(tmp_path, monkeypatch, error, first):
    _fake(monkeypatch, error)
    rec, lines = _run(tmp_path, _sweep(A))
    got = rec["sgd-a"]
    assert got.pop("seconds") < 1.0
    assert got == {"lr": 0.01, "rule": f"fallback: the range test failed ({first})", "suggested": None,
                   "reason": "failed", "advice": None, "others": {}, "steps": 0, "stopped_at_divergence": False,
                   "split": "train", "plot": None, "csv": None, "conditions": {}}
    assert lines[-1] == f"[ablate] sgd-a: range test failed ({first}): using lr 0.01"


def test_other_errors_propagate(tmp_path, monkeypatch):
    _fake(monkeypatch, KeyError("bug"))
    with pytest.raises(KeyError, match="bug"):
        _run(tmp_path, _sweep(A))


def test_a_recorded_test_is_not_rerun(tmp_path, monkeypatch):
    calls = _fake(monkeypatch, _verdict(0.5, "min/10"))
    m = Manifest(path=tmp_path / "manifest.json", sweep="s", lrfind={"sgd-a": {"lr": 0.1, "rule": "kept"}})
    rec, lines = _run(tmp_path, _sweep(A, B), m)
    assert [Path(c["out"]).name for c in calls] == ["adamw-b"]
    assert rec == {"sgd-a": {"lr": 0.1, "rule": "kept"}, "adamw-b": m.lrfind["adamw-b"]}
    assert rec["adamw-b"]["lr"] == 0.5 and len(lines) == 2

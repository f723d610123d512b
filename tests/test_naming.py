"""Tests of yolo_gd.ablate.naming: config names, LR text, safe names and dataset labels."""

from __future__ import annotations

import pytest

from yolo_gd.ablate.naming import config_name, data_label, num_text, safe_name


@pytest.mark.parametrize("x, text", [(0.01, "0.01"), (1e-4, "0.0001"), (3e-05, "3e-05"), (2, "2"),
                                     (1234567.0, "1.23457e+06")])
def test_num_text(x, text):
    assert num_text(x) == text


def test_safe_name_collapses_runs_strips_ends_and_caps_length():
    assert safe_name("--a  b/é..") == "a_b"
    assert safe_name("x+y.z") == "x+y.z"
    assert safe_name(3) == "3"
    assert safe_name("a" * 200) == "a" * 120


def test_config_name_parts_in_order():
    entry = {"lr": 0.5, "momentum": 0.9, "nesterov": True, "amsgrad": False, "mode": "fast"}
    assert config_name("SGD", entry, {}, 0.01, None) == "sgd-momentum0.9-nesterov-no_amsgrad-modefast-lr0.01"
    assert config_name("pkg.mod:MyOpt", {}, {}, None, None) == "MyOpt"


def test_config_name_lr0_only_when_lr_is_set():
    assert config_name("sgd", {"lr0": 0.1}, {}, 0.1, None) == "sgd-lr0.1"
    assert config_name("sgd", {"lr0": 0.1}, {"lr": 0.2}, 0.2, None) == "sgd-lr00.1-lr0.2"


def test_config_name_schedule_and_its_options():
    kw = {"schedule": "yolo_gd.schedules.builtin:cosine"}
    assert config_name("adamw", {"schedule": "x"}, kw, 1e-3, {"warmup": 3}) == "adamw-lr0.001-cosine-warmup3"
    assert config_name("adamw", {}, {"schedule": "my.pkg.OneCycle"}, None, None) == "adamw-OneCycle"


def test_config_name_hashes_other_values():
    assert config_name("SGD", {"x": [1, 2]}, {}, None, None) == "sgd-x1bc866"
    assert config_name("sgd", {"w": float("inf")}, {}, None, None) == "sgd-w0219fd"


@pytest.mark.parametrize("data, label", [("bccd", "bccd"), ("cfg/my set.yaml", "my_set"), ("ds/foo/data.yaml", "foo"),
                                         ("ds/bar/data.yml", "bar"), ("a__b", "a_b"), ("/x/coco8", "coco8")])
def test_data_label(data, label):
    assert data_label(data) == label

"""Tests of yolo_gd.ablate.lrfind_spec: the ``lrfind:`` options and the optimizers a range test accepts."""

from __future__ import annotations

import re

import pytest

from yolo_gd.ablate.lrfind_spec import LRFIND_KEYS, check_lrfind, check_lrfind_optimizer
from yolo_gd.ablate.yamlpos import Where, load_yaml
from yolo_gd.errors import UserError


def _check(text: str, protocol: str = "lrfind") -> dict:
    return check_lrfind(Where("s.yaml", text), load_yaml(text), protocol)


def test_keys():
    assert LRFIND_KEYS == ("steps", "lr_min", "lr_max", "probe", "probe_every")


def test_options_are_returned_as_given():
    assert _check("seeds: [0]\n") == {}
    assert _check("seeds: [0]\n", protocol="fixed") == {}
    assert _check("lrfind: {steps: 50, lr_min: 1e-6, lr_max: 1}\n") == {"steps": 50, "lr_min": 1e-6, "lr_max": 1}
    assert _check("lrfind:\n") == {}


def test_lrfind_with_another_protocol_points_at_its_line():
    with pytest.raises(UserError, match=r"^s\.yaml:2: lrfind: lrfind options are only used with 'protocol: lrfind'"):
        _check("seeds: [0]\nlrfind: {steps: 10}\n", protocol="tuned")


def test_not_a_mapping():
    msg = "s.yaml:1: lrfind: lrfind takes a mapping, e.g. {steps: 100, lr_min: 1e-6, lr_max: 1}"
    with pytest.raises(UserError, match=f"^{re.escape(msg)}$"):
        _check("lrfind: [10]\n")


def test_unknown_option_suggests_the_closest():
    msg = ("s.yaml:3: lrfind.stpes: unknown lrfind option 'stpes'. Did you mean 'steps'? Valid lrfind options: "
           "lr_max, lr_min, probe, probe_every, steps.")
    with pytest.raises(UserError, match=f"^{re.escape(msg)}$"):
        _check("lrfind:\n  lr_min: 1e-5\n  stpes: 10\n")


@pytest.mark.parametrize("value", ["0", "-1", "'ten'", "true"])
def test_values_must_be_positive_numbers(value):
    with pytest.raises(UserError, match=r"^s\.yaml:2: lrfind\.lr_max: lrfind lr_max must be a positive number, got "):
        _check(f"lrfind:\n  lr_max: {value}\n")


def test_optimizer_refused_by_the_range_test_is_an_error_at_its_entry():
    text = "axes:\n  optimizer:\n    - sgd\n    - nosuchopt\n"
    where = Where("s.yaml", text)
    assert check_lrfind_optimizer(where, ("axes", "optimizer", 0), "sgd") is None
    with pytest.raises(UserError, match=r"^s\.yaml:4: axes\.optimizer\[1\]: unknown optimizer 'nosuchopt'\. ") as e:
        check_lrfind_optimizer(where, ("axes", "optimizer", 1), "nosuchopt")
    assert e.value.__cause__ is None and e.value.__suppress_context__
    with pytest.raises(UserError, match=r"^s\.yaml:3: axes\.optimizer\[0\]: lrfind needs optimizer= \(e\.g\."):
        check_lrfind_optimizer(where, ("axes", "optimizer", 0), None)

"""yolo_gd.ablate.validate: the value rules and spec sections, each error naming ``<file>:<line>: <key>``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from yolo_gd.ablate import validate as V
from yolo_gd.ablate.yamlpos import Where
from yolo_gd.errors import UserError

TEXT = "name: s\nbudget:\n  epochs: 3\nseeds: [0, 1]\ntune:\n  lrs: [0.1, 0.1]\n"
W = Where("s.yaml", TEXT)


def test_is_number_rejects_bools_and_non_finite():
    assert [V.is_number(v) for v in (1, 0.5, True, float("nan"), float("inf"), "1")] == [
        True, True, False, False, False, False]


def test_positive_number_boundary():
    assert V.positive_number(W, ("budget",), 1e-9, "x") == 1e-9
    with pytest.raises(UserError, match=r"^s\.yaml:2: budget: an LR must be a positive number, got 0$"):
        V.positive_number(W, ("budget",), 0, "an LR")


def test_seed_list():
    assert V.seed_list(W, ("seeds",), [0, 1]) == (0, 1)
    with pytest.raises(UserError, match=r"^s\.yaml:4: seeds\[0\]: seed True must be a non-negative integer$"):
        V.seed_list(W, ("seeds",), [True])


def test_check_metric_aliases_map_to_full_names():
    assert V.check_metric(W, (), "MAP") == "metrics/mAP50-95(B)"
    assert V.check_metric(W, (), "p") == "metrics/precision(B)"
    assert V.check_metric(W, (), "metrics/mAP50(B)") == "metrics/mAP50(B)"
    with pytest.raises(UserError, match="unknown metric 'f1'"):
        V.check_metric(W, ("name",), "f1")


def test_check_top():
    assert V.check_top(W, None) == {}
    with pytest.raises(UserError, match=r"^s\.yaml:1: an ablation spec is a YAML mapping .*got list$"):
        V.check_top(W, [1])
    with pytest.raises(UserError, match=r"^s\.yaml:1: seedz: unknown top-level key 'seedz'"):
        V.check_top(W, {"seedz": [0]})


def test_check_budget_from_budget_or_base_epochs():
    assert V.check_budget(W, {"budget": {"epochs": 3}}, {}) == {"epochs": 3}
    assert V.check_budget(W, {}, {"epochs": 5}) == {"epochs": 5}
    assert V.check_budget(W, {"budget": {"time": 2}}, {}) == {"time": 2.0}
    with pytest.raises(UserError, match=r"^s\.yaml:1: no training budget: add 'budget: \{epochs: N\}'"):
        V.check_budget(W, {}, {})
    with pytest.raises(UserError, match=r"^s\.yaml:2: budget: give exactly one budget"):
        V.check_budget(W, {"budget": {"epochs": 3, "time": 1}}, {})
    with pytest.raises(UserError, match=r"^s\.yaml:3: budget\.epochs: epochs must be a positive integer, got True$"):
        V.check_budget(W, {"budget": {"epochs": True}}, {})


def test_check_target_returns_full_metric_and_float():
    assert V.check_target(W, {}) is None
    assert V.check_target(W, {"target": {"metric": "map50", "value": 1}}) == ("metrics/mAP50(B)", 1.0)
    with pytest.raises(UserError, match=r"target value must be a number in \(0, 1\]"):
        V.check_target(W, {"target": {"metric": "map50", "value": 0}})


def test_axis_list():
    assert V.axis_list(W, ("seeds",), [None], "x") == [None]
    with pytest.raises(UserError, match=r"^s\.yaml:4: seeds: is empty: list at least one value \(LRs\)$"):
        V.axis_list(W, ("seeds",), [], "LRs")


def test_check_schedules_null_entry_means_no_schedule():
    assert V.check_schedules(W, [None]) == [(0, None, {})]
    with pytest.raises(UserError, match=r"a schedule entry is a name or \{name: \.\.\., <options>\}"):
        V.check_schedules(W, [{"every": 3}])


def test_check_tune_defaults_and_errors():
    c = SimpleNamespace(name="sgd", optimizer="sgd", center_lr=0.01, line=3)
    assert V.check_tune(W, {}, "fixed", [c], 9, (0, 1)) is None
    assert V.check_tune(W, {}, "tuned", [c], 10, (4, 5)) == (None, 4, (4,))  # ceil(10 / 3), first seed
    assert V.check_tune(W, {"tune": {"lrs": [0.1, 0.2], "epochs": 2}}, "tuned", [c], 10, (0,)) == ((0.1, 0.2), 2, (0,))
    with pytest.raises(UserError, match=r"^s\.yaml:6: tune\.lrs: an LR is listed twice"):
        V.check_tune(W, {"tune": {"lrs": [0.1, 0.1]}}, "tuned", [c], 10, (0,))
    with pytest.raises(UserError, match="optimizer 'sgd' \\(config 'sgd', line 3\\) has no default LR"):
        V.check_tune(W, {}, "tuned", [SimpleNamespace(**{**vars(c), "center_lr": None})], 10, (0,))
    with pytest.raises(UserError, match="protocol: tuned needs an epoch budget"):
        V.check_tune(W, {}, "tuned", [c], None, (0,))

"""Layer-wise LR: lr_decay by top-level module index and the backbone / neck / head presets (exact LRs)."""

from __future__ import annotations

import pytest

from yolo_gd.errors import UserError
from yolo_gd.optim.group_rules import GroupRule, parse_rules
from yolo_gd.optim.groups import build_param_groups
from yolo_gd.optim.layer_lr import stages


@pytest.fixture(scope="module")
def yolo11n():
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolo11n.yaml", nc=3, verbose=False)
    for name, p in model.named_parameters():
        p.requires_grad = ".dfl" not in name  # as the trainer leaves it
    return model


def _module(name: str) -> int:
    return int(name.split(".")[1])


def test_presets_split_yolo11n_by_its_yaml(yolo11n):
    assert stages(yolo11n) == {"backbone": tuple(range(11)), "neck": tuple(range(11, 23)), "head": (23,)}


def test_lr_decay_gives_each_module_its_exact_lr(yolo11n):
    groups = build_param_groups(yolo11n, lr=0.01, weight_decay=0.0005, lr_decay=0.8)
    seen = set()
    for g in groups:
        for name in g["param_names"]:
            i = _module(name)
            expected = 0.01 if i == 23 or ".dfl" in name else 0.01 * 0.8 ** (23 - i)
            assert g["lr"] == expected, (g["name"], name)
            seen.add(i)
        if g["name"].startswith("weight:depth"):
            assert g["weight_decay"] == 0.0005
        if g["name"].startswith(("bn:", "bias:")):
            assert g["weight_decay"] == 0.0
    assert [g["name"] for g in groups][:6] == ["weight", "bn", "bias", "weight:depth0", "bn:depth0", "bias:depth0"]
    assert groups[3]["lr"] == 0.01 * 0.8 ** 23
    assert seen == set(range(24)) - {11, 12, 14, 15, 18, 21}  # Upsample and Concat rows hold no parameter


def test_presets_in_rules_and_their_cli_form(yolo11n):
    assert parse_rules("backbone:0.1,model.2?.*:0.5") == (GroupRule("backbone", 0.1), GroupRule("model.2?.*", 0.5))
    groups = build_param_groups(yolo11n, lr=0.01, weight_decay=0.0005, rules="backbone:0.1,head:3")
    by_name = {g["name"]: g for g in groups}
    assert by_name["weight:backbone"]["lr"] == 0.01 * 0.1
    assert by_name["weight:head"]["lr"] == 0.01 * 3.0
    assert {_module(n) for n in by_name["weight:backbone"]["param_names"]} == set(range(11))
    assert {_module(n) for n in by_name["bias:head"]["param_names"]} == {23}
    assert {_module(n) for n in by_name["weight"]["param_names"]} == {13, 16, 17, 19, 20, 22, 23}  # neck (layers with parameters) + dfl
    # head keeps its own multiplier, lr_decay covers the rest
    mixed = {g["name"]: g["lr"] for g in build_param_groups(yolo11n, lr=0.01, weight_decay=0.0, rules="head:3",
                                                            lr_decay=0.5)}
    assert mixed["weight:head"] == 0.03 and mixed["weight:depth22"] == 0.01 * 0.5 and "weight:depth23" not in mixed


def test_bad_layer_lr_values_say_the_fix(yolo11n):
    with pytest.raises(UserError, match="pattern:lr_multiplier"):
        parse_rules("backbone")
    with pytest.raises(UserError, match=r"lr_decay must be in \(0, 1\]"):
        build_param_groups(yolo11n, lr=0.01, weight_decay=0.0, lr_decay=1.5)


def test_the_bias_warmup_of_a_decayed_group_starts_at_its_multiple_of_warmup_bias_lr(yolo11n):
    """lr_decay=0.8: model.0's bias targets 0.01 * 0.8**23; its warmup starts at 0.1 * 0.8**23 (not at 0.1, ~1700x
    above the target), and the head's bias (multiplier 1) at 0.1 exactly as in Ultralytics."""
    from yolo_gd.optim.plan import HyperPlan, WarmupPlan
    from yolo_gd.optim.progress import Progress
    from yolo_gd.optim.schedules import constant

    groups = build_param_groups(yolo11n, lr=0.01, weight_decay=0.0005, lr_decay=0.8)
    HyperPlan(constant(), WarmupPlan(10, "batch", "linear", bias_lr=0.1)).apply(groups, Progress(0, 100, 0, 10, 10))
    bias = {_module(g["param_names"][0]): g["lr"] for g in groups if g["param_group"] == "bias"}
    assert bias[0] == 0.1 * 0.8 ** 23 and bias[23] == 0.1

"""Parameter groups: the same parameters, in the same order, with the same hyperparameters as Ultralytics' own.

Reference groups come from calling Ultralytics' ``BaseTrainer.build_optimizer`` unbound on real YOLO models built
offline from the packaged yaml (``yolo11n``, ``yolo26n``), so a change in Ultralytics' grouping fails here.
"""

from __future__ import annotations

import copy
import io
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from yolo_gd.errors import UserError
from yolo_gd.optim.groups import (
    MUON_HEAD_LR_MULT,
    GroupRule,
    build_param_groups,
    describe_groups,
    format_groups,
    parse_rules,
    scale_weight_decay,
)
from yolo_gd.optim.registry import build_optimizer, get_optimizer_info

LR, DECAY = 0.01, 5e-4


@pytest.fixture(scope="module")
def yolo11n():
    from ultralytics.nn.tasks import DetectionModel

    return DetectionModel("yolo11n.yaml", nc=3, verbose=False)


@pytest.fixture(scope="module")
def yolo26n():
    from ultralytics.nn.tasks import DetectionModel

    return DetectionModel("yolo26n.yaml", nc=3, verbose=False)


def _native(model: nn.Module, name: str, lr: float = LR, momentum: float = 0.937, decay: float = DECAY):
    """Ultralytics' own optimizer for ``model`` (BaseTrainer.build_optimizer with a stand-in self)."""
    from ultralytics.engine.trainer import BaseTrainer

    stub = SimpleNamespace(args=SimpleNamespace(lr0=lr, warmup_bias_lr=0.1, optimizer=name), data={"nc": 3})
    return BaseTrainer.build_optimizer(stub, model, name=name, lr=lr, momentum=momentum, decay=decay)


def _ids(params) -> list[int]:
    return [id(p) for p in params]


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))


# ----------------------------------------------------------------------------------------- Ultralytics' grouping


def _host_default_optimizer(model: nn.Module):
    """Ultralytics' own ``BaseTrainer.build_optimizer`` with its default configuration (optimizer=SGD)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.engine.trainer import BaseTrainer
    from ultralytics.utils import DEFAULT_CFG

    args = get_cfg(DEFAULT_CFG)
    stand_in = SimpleNamespace(args=args, data={"nc": 3})
    return BaseTrainer.build_optimizer(stand_in, model, name="SGD", lr=args.lr0, momentum=args.momentum,
                                       decay=args.weight_decay)


def test_default_layout_is_the_hosts_frozen_dfl_included(yolo11n):
    """Same groups, tags, parameters (by identity) and order as the host's own optimizer, the always-frozen DFL
    conv included: under DDP a rank loads our checkpoint's optimizer state into the host's optimizer by position."""
    host = _host_default_optimizer(yolo11n).param_groups
    ours = build_param_groups(yolo11n, lr=LR, weight_decay=DECAY)
    assert len(ours) == len(host) == 3
    assert [g["param_group"] for g in ours] == [g["param_group"] for g in host] == ["weight", "bn", "bias"]
    for o, h in zip(ours, host):
        assert _ids(o["params"]) == _ids(h["params"])
    dfl = yolo11n.model[-1].dfl.conv.weight
    assert not dfl.requires_grad and id(dfl) in _ids(ours[0]["params"])
    assert sum(len(g["params"]) for g in ours) == len(list(yolo11n.parameters()))


def test_groups_match_ultralytics(yolo11n):
    native = _native(yolo11n, "SGD")
    ours = build_param_groups(yolo11n, lr=LR, weight_decay=DECAY)
    assert [g["param_group"] for g in ours] == [g["param_group"] for g in native.param_groups] == [
        "weight",
        "bn",
        "bias",
    ]
    for o, n in zip(ours, native.param_groups):
        assert _ids(o["params"]) == _ids(n["params"])  # frozen parameters (the DFL conv) included, in place
        assert o["lr"] == n["lr"] and o["weight_decay"] == n["weight_decay"]
        assert o["initial_lr"] == o["lr"]


def test_param_names_are_ultralytics_fullnames(yolo11n):
    ours = build_param_groups(yolo11n, lr=LR, weight_decay=DECAY)
    named = dict(yolo11n.named_parameters())
    for g in ours:
        assert len(g["param_names"]) == len(g["params"])
        assert all(named[n] is p for n, p in zip(g["param_names"], g["params"]))
    assert ours[0]["param_names"][0] == "model.0.conv.weight"
    assert "model.23.dfl.conv.weight" in ours[0]["param_names"]


def test_frozen_parameters_stay_in_place(yolo11n):
    """Layers frozen with Ultralytics' ``freeze=`` stay in their groups too, where the host keeps them."""
    model = copy.deepcopy(yolo11n)
    for p in model.model[0].parameters():
        p.requires_grad = False
    host = _native(model, "SGD").param_groups
    ours = build_param_groups(model, lr=LR, weight_decay=DECAY)
    assert [_ids(g["params"]) for g in ours] == [_ids(g["params"]) for g in host]
    assert ours[0]["param_names"][0] == "model.0.conv.weight"


def test_no_trainable_parameters_is_an_error():
    model = tiny_model().requires_grad_(False)
    with pytest.raises(UserError, match="no trainable parameters"):
        build_param_groups(model, lr=LR, weight_decay=DECAY)


def test_wrapped_model_gives_the_same_names():
    model = tiny_model()
    plain = build_param_groups(model, lr=LR, weight_decay=DECAY)
    wrapped = build_param_groups(nn.DataParallel(model), lr=LR, weight_decay=DECAY)
    assert [g["param_names"] for g in wrapped] == [g["param_names"] for g in plain]


@pytest.mark.parametrize(("lr", "wd"), [(0.0, DECAY), (-1.0, DECAY), (float("nan"), DECAY), (LR, -1e-4)])
def test_bad_base_hyperparameters(lr, wd):
    with pytest.raises(UserError):
        build_param_groups(tiny_model(), lr=lr, weight_decay=wd)


# ------------------------------------------------------------------------------------------------------ MuSGD


@pytest.mark.parametrize("model_name", ["yolo11n", "yolo26n"])
def test_muon_groups_match_ultralytics(model_name, request):
    model = request.getfixturevalue(model_name)
    native = _native(model, "MuSGD", momentum=0.9)
    ours = build_param_groups(model, lr=LR, weight_decay=DECAY, muon=True)
    assert len(ours) == len(native.param_groups) == 8
    assert [g["param_group"] for g in ours] == [g["param_group"] for g in native.param_groups]
    for o, n in zip(ours, native.param_groups):
        assert _ids(o["params"]) == _ids(n["params"])  # the frozen DFL conv included (a 4-D muon parameter)
        assert o["lr"] == n["lr"] and o["weight_decay"] == n["weight_decay"]
        assert o.get("use_muon", False) == n["use_muon"]
    assert [g["lr"] for g in ours[::2]] == [LR * MUON_HEAD_LR_MULT] * 4  # the head's class branch at 3x
    assert ours[6]["params"], "the class head has muon parameters"


@pytest.mark.parametrize("model_name", ["yolo11n", "yolo26n"])
def test_musgd_steps(model_name, request):
    model = copy.deepcopy(request.getfixturevalue(model_name))
    info = get_optimizer_info("musgd")
    groups = build_param_groups(model, lr=LR, weight_decay=DECAY, muon=info.muon_groups)
    opt = build_optimizer(info, groups)
    assert type(opt).__name__ == "MuSGD" and (opt.muon, opt.sgd) == (0.2, 1.0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    g = torch.Generator().manual_seed(0)
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.randn(p.shape, generator=g) * 1e-2
    opt.step()
    after = dict(model.named_parameters())
    for group in opt.param_groups:
        for name, p in zip(group["param_names"], group["params"]):
            assert torch.isfinite(p).all()
            assert torch.equal(before[name], after[name]) != p.requires_grad, name  # frozen ones (in groups) stay
    frozen = [n for n, p in after.items() if not p.requires_grad]  # yolo11n's DFL conv; yolo26n has none
    assert all(torch.equal(before[n], after[n]) for n in frozen)


# ------------------------------------------------------------------------------------------------------ rules


def test_rule_multipliers_and_tags(yolo11n):
    rules = {"model.0.*": {"lr": 0.1, "wd": 2.0, "name": "stem"}, "model.23.*": {"lr": 3.0, "wd": 0.0}}
    groups = build_param_groups(yolo11n, lr=LR, weight_decay=DECAY, rules=rules)
    by_name = {g["name"]: g for g in groups}
    assert [g["name"] for g in groups[:3]] == ["weight", "bn", "bias"]
    stem = by_name["weight:stem"]
    assert stem["param_group"] == "weight" and stem["param_names"] == ["model.0.conv.weight"]
    assert stem["lr"] == stem["initial_lr"] == LR * 0.1 and stem["weight_decay"] == DECAY * 2.0
    assert by_name["bn:stem"]["weight_decay"] == 0.0 and by_name["bn:stem"]["lr"] == LR * 0.1
    assert by_name["bias:stem"]["param_group"] == "bias" and by_name["bias:stem"]["weight_decay"] == 0.0
    head = by_name["weight:model.23.*"]
    assert head["lr"] == LR * 3.0 and head["weight_decay"] == 0.0
    assert all(n.startswith("model.23.") for n in head["param_names"])
    trainable = {n for n, p in yolo11n.named_parameters() if p.requires_grad}
    for g in groups[:3]:
        assert not any(n.startswith(("model.0.", "model.23.")) for n in g["param_names"] if n in trainable)
    # rules take trainable parameters only: the frozen DFL conv stays in the base 'weight' group, where the host has it
    assert "model.23.dfl.conv.weight" in groups[0]["param_names"]
    assert not any("dfl" in n for g in groups[3:] for n in g["param_names"])
    # every parameter exactly once
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(yolo11n.parameters()))


def test_first_matching_rule_wins(yolo11n):
    rules = [GroupRule("model.1?.*", lr_mult=0.5), GroupRule("model.1*", lr_mult=2.0, name="one")]
    groups = build_param_groups(yolo11n, lr=LR, weight_decay=DECAY, rules=rules)
    teens = [n for g in groups if g["name"].endswith(":model.1?.*") for n in g["param_names"]]
    ones = [n for g in groups if g["name"].endswith(":one") for n in g["param_names"]]
    assert teens and all(n.split(".")[1] in {str(i) for i in range(10, 20)} for n in teens)
    assert ones and all(n.split(".")[1] == "1" for n in ones)


def test_rule_matching_nothing(yolo11n):
    with pytest.raises(UserError) as e:
        build_param_groups(yolo11n, lr=LR, weight_decay=DECAY, rules={"backbone.*": 0.1})
    msg = str(e.value)
    assert "'backbone.*' matches no trainable parameter" in msg
    assert "'model.0.conv.weight'" in msg  # example names show what patterns are matched against


def test_rule_shadowed_by_earlier_rule(yolo11n):
    with pytest.raises(UserError, match=r"'model.0.conv.\*' gets no parameter.*earlier rule 'model.0.\*'"):
        build_param_groups(yolo11n, lr=LR, weight_decay=DECAY, rules={"model.0.*": 0.1, "model.0.conv.*": 2.0})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr_mult": 0.0}, "lr multiplier must be > 0"),
        ({"lr_mult": -1.0}, "lr multiplier must be > 0"),
        ({"wd_mult": -0.1}, "weight-decay multiplier must be >= 0"),
        ({"lr_mult": float("nan")}, "finite number"),
        ({"lr_mult": "2"}, "finite number"),
    ],
)
def test_bad_rule_multipliers(kwargs, message):
    with pytest.raises(UserError, match=message):
        GroupRule("model.0.*", **kwargs)


def test_parse_rules_forms():
    assert parse_rules(None) == ()
    assert parse_rules({"a.*": 2}) == (GroupRule("a.*", lr_mult=2.0),)
    assert parse_rules({"a.*": {"lr_mult": 2, "wd_mult": 0}}) == (GroupRule("a.*", 2.0, 0.0),)
    assert parse_rules([{"pattern": "a.*", "lr": 0.5}, GroupRule("b.*")]) == (GroupRule("a.*", 0.5), GroupRule("b.*"))
    assert GroupRule("a.*").name == "a.*"
    with pytest.raises(UserError, match="unknown key 'lrr'"):
        parse_rules({"a.*": {"lrr": 2}})
    with pytest.raises(UserError, match="repeats"):
        parse_rules({"a.*": {"lr": 2, "lr_mult": 3}})
    with pytest.raises(UserError, match="mapping"):
        parse_rules({"a.*": "fast"})
    with pytest.raises(UserError, match="pattern"):
        parse_rules([{"lr": 2}])
    with pytest.raises(UserError, match="non-empty glob"):
        GroupRule("")


def test_rules_in_muon_mode(yolo11n):
    groups = build_param_groups(yolo11n, lr=LR, weight_decay=DECAY, muon=True, rules={"model.23.cv3.*": 0.5})
    by_name = {g["name"]: g for g in groups}
    assert by_name["muon:model.23.cv3.*:x3"]["lr"] == LR * MUON_HEAD_LR_MULT * 0.5
    assert by_name["muon:model.23.cv3.*:x3"]["use_muon"] is True
    assert not by_name["muon:x3"]["params"]  # yolo11n's whole class branch went to the rule


# ----------------------------------------------------------------------------------------------- inspection


def test_describe_groups_exact():
    model = tiny_model()
    groups = build_param_groups(model, lr=0.02, weight_decay=1e-4)
    rows = describe_groups(groups)
    assert rows == [
        {"name": "weight", "tag": "weight", "n_params": 2, "n_elements": 108 + 8, "lr": 0.02, "weight_decay": 1e-4},
        {"name": "bn", "tag": "bn", "n_params": 1, "n_elements": 4, "lr": 0.02, "weight_decay": 0.0},
        {"name": "bias", "tag": "bias", "n_params": 2, "n_elements": 4 + 2, "lr": 0.02, "weight_decay": 0.0},
    ]
    assert groups[2]["param_names"] == ["1.bias", "2.bias"]
    opt = build_optimizer(get_optimizer_info("sgd"), groups)
    rows = describe_groups(opt)
    assert rows[0]["momentum"] == 0.937 and rows[0]["nesterov"] is True
    adam = build_optimizer(get_optimizer_info("adamw"), groups, betas=[0.9, 0.99])
    assert describe_groups(adam)[1]["betas"] == (0.9, 0.99)


def test_format_groups():
    rows = describe_groups(build_param_groups(tiny_model(), lr=0.02, weight_decay=1e-4))
    text = format_groups(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["name", "tag", "n_params", "n_elements", "lr", "weight_decay"]
    assert lines[2].split() == ["weight", "weight", "2", "116", "0.02", "0.0001"]
    assert len(lines) == 5 and len({len(line) for line in lines[:3]}) == 1  # aligned
    assert format_groups([]) == "(no parameter groups)"


def test_param_names_survive_state_dict(yolo11n):
    model = copy.deepcopy(yolo11n)
    info = get_optimizer_info("sgd")
    opt = build_optimizer(info, build_param_groups(model, lr=LR, weight_decay=DECAY))
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.ones_like(p) * 1e-3
    opt.step()
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["param_groups"][0]["param_names"][0] == "model.0.conv.weight"
    assert state["param_groups"][2]["param_group"] == "bias"
    fresh = build_optimizer(info, build_param_groups(model, lr=LR, weight_decay=DECAY))
    fresh.load_state_dict(state)
    for a, b in zip(opt.param_groups, fresh.param_groups):
        assert a["param_names"] == b["param_names"] and a["initial_lr"] == b["initial_lr"]
        for p, q in zip(a["params"], b["params"]):
            if p.requires_grad:  # a frozen parameter (the DFL conv) never steps: no state
                assert torch.equal(opt.state[p]["momentum_buffer"], fresh.state[q]["momentum_buffer"])


# ------------------------------------------------------------------------------------------ weight-decay scale


def test_scale_weight_decay_exact():
    assert scale_weight_decay(5e-4, 16, 4, 64) == 5e-4
    for wd, batch, acc, nbs in [(5e-4, 16, 4, 64), (5e-4, 10, 6, 64), (3e-4, 7, 9, 64), (5e-4, 128, 1, 64)]:
        assert scale_weight_decay(wd, batch, acc, nbs) == wd * batch * acc / nbs  # Ultralytics' expression
    with pytest.raises(UserError, match="nbs must be > 0"):
        scale_weight_decay(5e-4, 16, 4, 0)
    with pytest.raises(UserError, match="batch must be > 0"):
        scale_weight_decay(5e-4, 0, 4, 64)
    with pytest.raises(UserError, match="weight_decay must be >= 0"):
        scale_weight_decay(-5e-4, 16, 4, 64)

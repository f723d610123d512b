"""build_optimizer: hyperparameter checks and precedence, fused only on CUDA, bit-identical to Ultralytics' own."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from test_registry import ALL, _groups, _require_package, tiny_model
from torch import nn

from yolo_gd.errors import UserError
from yolo_gd.optim.groups import build_param_groups
from yolo_gd.optim.registry import _REGISTRY, build_optimizer, get_optimizer_info

# ---------------------------------------------------------------------------------------------- hyperparameters


def test_bad_hparam_names_rule_and_fix():
    model = tiny_model()
    info = get_optimizer_info("sgd")
    with pytest.raises(UserError) as e:
        build_optimizer(info, _groups(model, info), betas=(0.9, 0.99))
    msg = str(e.value)
    assert "optimizer 'sgd' does not take 'betas'" in msg
    assert "it takes: lr, momentum, dampening, weight_decay, nesterov" in msg
    assert "momentum=" in msg  # the fix
    adam = get_optimizer_info("adam")
    with pytest.raises(UserError, match="beta1 in betas"):
        build_optimizer(adam, _groups(model, adam), momentum=0.9)


@pytest.mark.parametrize("lr", [0, 0.0, -0.01, float("nan"), float("inf"), "0.1", True])
def test_lr_must_be_positive(lr):
    model = tiny_model()
    info = get_optimizer_info("adamw")
    with pytest.raises(UserError, match="lr must be"):
        build_optimizer(info, _groups(model, info), lr=lr)


def test_group_lr_must_be_positive():
    model = tiny_model()
    info = get_optimizer_info("sgd")
    groups = _groups(model, info)
    groups[1]["lr"] = 0.0
    with pytest.raises(UserError, match=r"param group 1 \('bn'\) lr must be > 0"):
        build_optimizer(info, groups)


def test_hparams_win_over_defaults_and_groups_win_over_both():
    model = tiny_model()
    info = get_optimizer_info("sgd")
    groups = _groups(model, info, lr=0.02)
    groups[2]["momentum"] = 0.5
    opt = build_optimizer(info, groups, lr=0.3, momentum=0.8)
    assert opt.defaults["lr"] == 0.3 and opt.defaults["momentum"] == 0.8 and opt.defaults["nesterov"] is True
    assert [g["lr"] for g in opt.param_groups] == [0.02, 0.02, 0.02]
    assert [g["momentum"] for g in opt.param_groups] == [0.8, 0.8, 0.5]
    assert [g["param_group"] for g in opt.param_groups] == ["weight", "bn", "bias"]
    assert opt.param_groups[0]["initial_lr"] == 0.02 and opt.param_groups[0]["name"] == "weight"


def test_caller_groups_not_modified():
    model = tiny_model()
    info = get_optimizer_info("adamw")
    groups = _groups(model, info)
    snapshot = [dict(g) for g in groups]
    build_optimizer(info, groups)
    assert [set(g) for g in groups] == [set(g) for g in snapshot]


def test_betas_list_from_yaml_becomes_tuple():
    model = tiny_model()
    opt = build_optimizer(get_optimizer_info("adam"), _groups(model, _REGISTRY["adam"]), betas=[0.8, 0.99])
    assert opt.defaults["betas"] == (0.8, 0.99)


@pytest.mark.parametrize("name", ["sgd_plain", "adam", "adamw"])
def test_fused_only_on_cuda(name):
    model = tiny_model()
    info = get_optimizer_info(name)
    assert build_optimizer(info, _groups(model, info), device_type="cuda").defaults["fused"] is True
    assert build_optimizer(info, _groups(model, info), device_type=torch.device("cuda", 0)).defaults["fused"] is True
    assert build_optimizer(info, _groups(model, info)).defaults["fused"] is None  # CPU: torch's default stands
    assert build_optimizer(info, _groups(model, info), device_type="cuda", foreach=True).defaults["fused"] is None
    assert build_optimizer(info, _groups(model, info), device_type="cuda", fused=False).defaults["fused"] is False


def test_no_fused_where_not_offered():
    model = tiny_model()
    info = get_optimizer_info("nadam")
    assert "fused" not in build_optimizer(info, _groups(model, info), device_type="cuda").defaults


@pytest.mark.parametrize("name", ALL)
def test_fused_capability_is_read_by_construction(name, monkeypatch):
    """Every registry record: ``fused=True`` reaches the constructor on CUDA exactly when the record's
    ``fused_on_cuda`` says so (SGD: never, as native Ultralytics' SGD), and never on CPU (kwargs captured on CPU)."""
    import yolo_gd.optim.construct as construct

    info = get_optimizer_info(name)
    _require_package(info)
    if info.needs_closure:
        pytest.skip("refused before construction")
    passed = []

    def capture(info_, obj, groups, kwargs, *rest):
        passed.append(dict(kwargs))

    monkeypatch.setattr(construct, "_construct_class", capture)
    monkeypatch.setattr(construct, "_construct_callable", capture)
    for device_type in ("cuda", "cpu"):
        build_optimizer(info, _groups(tiny_model(), info), device_type=device_type)
    on_cuda, on_cpu = passed
    assert on_cuda.get("fused") is (True if info.fused_on_cuda else None)
    assert "fused" not in on_cpu
    if name in ("sgd", "sgd_plain"):
        assert info.fused_on_cuda is (name == "sgd_plain")  # injected 'sgd' keeps native's foreach kernel


def test_plain_parameter_list():
    model = tiny_model()
    opt = build_optimizer(get_optimizer_info("sgd"), model.parameters())
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["lr"] == 0.01


def test_no_parameters_is_an_error():
    with pytest.raises(UserError, match="no parameters"):
        build_optimizer(get_optimizer_info("sgd"), [])


# --------------------------------------------------------------------------------- faithfulness to Ultralytics


def _native_optimizer(model: nn.Module, name: str, lr: float, momentum: float, decay: float):
    """The optimizer Ultralytics' own BaseTrainer.build_optimizer makes (called unbound with a stand-in self)."""
    from ultralytics.engine.trainer import BaseTrainer

    stub = SimpleNamespace(args=SimpleNamespace(lr0=lr, warmup_bias_lr=0.1, optimizer=name), data={"nc": 4})
    return BaseTrainer.build_optimizer(stub, model, name=name, lr=lr, momentum=momentum, decay=decay)


@pytest.mark.parametrize(
    ("name", "lr", "hparams"),
    [
        ("sgd", 0.01, {"momentum": 0.937}),
        ("adamw", 0.002, {"betas": (0.937, 0.999)}),
        ("adam", 0.001, {"betas": (0.9, 0.999)}),
    ],
)
def test_bit_identical_to_ultralytics(name, lr, hparams):
    """Same model, same gradients: our sgd/adamw take exactly the steps Ultralytics' own construction takes."""
    momentum = hparams.get("momentum") or hparams["betas"][0]
    decay = 5e-4 * 16 * 4 / 64
    native_model = tiny_model()
    our_model = copy.deepcopy(native_model)
    native_name = {"sgd": "SGD", "adamw": "AdamW", "adam": "Adam"}[name]
    native = _native_optimizer(native_model, native_name, lr, momentum, decay)
    info = get_optimizer_info(name)
    ours = build_optimizer(info, build_param_groups(our_model, lr=lr, weight_decay=decay), lr=lr, **hparams)
    assert type(ours) is type(native)
    assert len(ours.param_groups) == len(native.param_groups)
    for a, b in zip(ours.param_groups, native.param_groups):
        for key in set(b) - {"params"}:
            assert a[key] == b[key], key  # every hyperparameter native has, incl. foreach/fused/maximize
    for step in range(3):
        g = torch.Generator().manual_seed(step)
        for pn, po in zip(native_model.parameters(), our_model.parameters()):
            grad = torch.randn(pn.shape, generator=g)
            pn.grad, po.grad = grad.clone(), grad.clone()
        native.step()
        ours.step()
    for pn, po in zip(native_model.parameters(), our_model.parameters()):
        assert torch.equal(pn, po)
    assert any(not torch.equal(p, q) for p, q in zip(native_model.parameters(), tiny_model().parameters()))

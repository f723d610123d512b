"""The optimizer registry, parametrized over itself: every entry builds, steps, round-trips; flags, names, specs."""

from __future__ import annotations

import copy
import inspect
import sys

import pytest
import torch
from conftest import require
from torch import nn

from yolo_gd.errors import UserError
from yolo_gd.optim.groups import build_param_groups
from yolo_gd.optim.registry import (
    OptimInfo,
    accepted_hparams,
    build_optimizer,
    get_optimizer_info,
    list_optimizers,
    register_optimizer,
    resolve_optimizer,
)
from yolo_gd.optim.registry import _REGISTRY

ALL = sorted(_REGISTRY)  # every registered name, installed or not
ALIASES = sorted(a for a in list_optimizers(include_aliases=True) if a not in _REGISTRY)


def _require_package(info: OptimInfo) -> None:
    """Skip (or fail under CI) when an optional optimizer's package is missing."""
    if info.extra and isinstance(info.factory, str):
        require(info.factory.partition(":")[0].split(".")[0])


def _info(name: str) -> OptimInfo:
    _require_package(_REGISTRY[name])
    return get_optimizer_info(name)


def tiny_model(seed: int = 0) -> nn.Module:
    """Conv + BN + conv + linear head: weight, bn, bias and (for MuSGD) 4-D and 2-D muon parameters."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.SiLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


def _groups(model: nn.Module, info: OptimInfo, lr: float | None = None) -> list[dict]:
    return build_param_groups(model, lr=lr or info.default_lr, weight_decay=5e-4, muon=info.muon_groups)


def _batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(4, 3, 8, 8, generator=g), torch.randint(0, 4, (4,), generator=g)


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, x, y) -> float:
    optimizer.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# ------------------------------------------------------------------------------------- every registered optimizer


@pytest.mark.parametrize("name", ALL)
def test_builds_steps_and_round_trips(name):
    info = _info(name)
    model = tiny_model()
    optimizer = build_optimizer(info, _groups(model, info))
    if info.has_train_eval_mode:
        optimizer.train()
    x, y = _batch()
    before = _params(model)
    losses = [_step(model, optimizer, x, y) for _ in range(3)]
    after = _params(model)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert all(torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(before, after)), f"{name}: 3 steps changed no parameter"

    # state_dict round trip: a fresh model + optimizer loaded from both takes the identical next step
    state = copy.deepcopy(optimizer.state_dict())
    twin = copy.deepcopy(model)
    twin_opt = build_optimizer(info, _groups(twin, info))
    twin_opt.load_state_dict(state)
    x2, y2 = _batch(seed=2)
    _step(model, optimizer, x2, y2)
    _step(twin, twin_opt, x2, y2)
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p, q), f"{name}: the step after load_state_dict differs"


@pytest.mark.parametrize("name", ALL)
def test_flags_agree_with_signature(name):
    info = _info(name)
    cls = info.load()
    takes = accepted_hparams(info)
    assert takes is not None, "a registered optimizer has an explicit signature"
    assert info.has_momentum == ("momentum" in takes)
    assert info.has_betas == ("betas" in takes)
    if info.fused_on_cuda:
        assert "fused" in takes
    assert set(info.defaults) <= set(takes), f"defaults {set(info.defaults) - set(takes)} not taken"
    assert info.default_lr is not None and info.default_lr > 0
    assert info.has_train_eval_mode == (callable(getattr(cls, "train", None)) and callable(getattr(cls, "eval", None)))
    closure = inspect.signature(cls.step).parameters.get("closure")
    assert info.needs_closure == (closure is not None and closure.default is inspect.Parameter.empty)
    assert info.name == name and info.summary
    if info.has_betas or "eps" in takes:
        assert info.adaptive  # Adam-family/RMSprop/Adagrad/Lion step sizes do not scale with the gradient


def test_expected_flag_table():
    """The capabilities the layers above rely on, pinned by name."""
    want = {
        "sgd": dict(has_momentum=True, adaptive=False, fused_on_cuda=False),  # native runs foreach
        "sgd_plain": dict(has_momentum=True, adaptive=False),
        "adam": dict(has_betas=True, adaptive=True, fused_on_cuda=True),
        "adamw": dict(has_betas=True, adaptive=True, fused_on_cuda=True),
        "rmsprop": dict(has_momentum=True, adaptive=True),
        "musgd": dict(has_momentum=True, muon_groups=True, adaptive=False),
        "lion": dict(has_betas=True, adaptive=True, extra="lion"),
        "sfadamw": dict(has_train_eval_mode=True, adaptive=True, extra="schedulefree"),
        "sfsgd": dict(has_train_eval_mode=True, has_momentum=True, extra="schedulefree"),
    }
    for name, flags in want.items():
        for flag, value in flags.items():
            assert getattr(_REGISTRY[name], flag) == value, (name, flag)
    assert _REGISTRY["sgd"].defaults == {"lr": 0.01, "momentum": 0.937, "nesterov": True}
    assert _REGISTRY["sgd_plain"].defaults["nesterov"] is False
    assert _REGISTRY["musgd"].defaults == {"lr": 0.01, "momentum": 0.9, "nesterov": True, "muon": 0.2, "sgd": 1.0}


def test_defaults_are_read_only():
    with pytest.raises(TypeError):
        _REGISTRY["sgd"].defaults["lr"] = 1.0  # type: ignore[index]


# --------------------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize("spelling", ["SGD", "Sgd", " sgd "])
def test_names_case_insensitive(spelling):
    assert get_optimizer_info(spelling) is _REGISTRY["sgd"]


def test_mixed_case_and_dash():
    assert get_optimizer_info("AdamW") is _REGISTRY["adamw"]
    assert get_optimizer_info("SGD-Plain") is _REGISTRY["sgd_plain"]
    assert get_optimizer_info("MuSGD") is _REGISTRY["musgd"]


@pytest.mark.parametrize("alias", ALIASES)
def test_aliases_resolve(alias):
    owner = next(info for info in _REGISTRY.values() if alias in info.aliases)
    _require_package(owner)
    assert get_optimizer_info(alias) is owner
    assert resolve_optimizer(alias.upper()) is owner


def test_named_aliases():
    assert _REGISTRY["musgd"] is next(i for i in _REGISTRY.values() if "muon" in i.aliases)
    assert "schedulefree_adamw" in _REGISTRY["sfadamw"].aliases
    assert "schedule_free_sgd" in _REGISTRY["sfsgd"].aliases


def test_unknown_name_lists_and_suggests():
    with pytest.raises(UserError) as e:
        get_optimizer_info("adamm")
    msg = str(e.value)
    assert "unknown optimizer 'adamm'" in msg
    assert "Did you mean 'adam'?" in msg
    for name in ("sgd", "adamw", "musgd", "lion", "sfadamw", "muon"):
        assert name in msg


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lion_pytorch", None)  # makes the package unimportable
    expected = r"optimizer 'lion' needs the package lion-pytorch: pip install 'yolo_gd\[lion\]'"
    with pytest.raises(UserError, match=expected):
        get_optimizer_info("lion")
    with pytest.raises(UserError, match="pip install"):
        resolve_optimizer("Lion")
    assert "lion" not in list_optimizers(available_only=True)
    assert "lion" in list_optimizers()


def test_register_rejects_clashes():
    with pytest.raises(UserError, match="already registered"):
        register_optimizer(OptimInfo(name="sgd", factory="torch.optim:SGD"))
    with pytest.raises(UserError, match="already taken by 'musgd'"):
        register_optimizer(OptimInfo(name="my_opt", factory="torch.optim:SGD", aliases=("muon",)))
    with pytest.raises(UserError, match="lower case"):
        register_optimizer(OptimInfo(name="MyOpt", factory="torch.optim:SGD"))
    assert "my_opt" not in list_optimizers()


# -------------------------------------------------------------------------------------------- other spec kinds


def test_import_path_spec():
    info = resolve_optimizer("torch.optim:SGD")
    assert info.name == "torch.optim:SGD"
    assert info.has_momentum and not info.has_betas and not info.fused_on_cuda
    assert info.defaults == {"lr": 0.001}  # torch's own default, not Ultralytics'
    model = tiny_model()
    opt = build_optimizer(info, build_param_groups(model, lr=0.1, weight_decay=0.0), momentum=0.9)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9 and not opt.defaults["nesterov"]
    adam = resolve_optimizer("torch.optim:AdamW")
    assert adam.has_betas and adam.adaptive and not adam.has_momentum


def test_import_path_with_train_eval_mode():
    require("schedulefree")
    info = resolve_optimizer("schedulefree:SGDScheduleFree")
    assert info.has_train_eval_mode and info.has_momentum and not info.needs_closure
    with pytest.raises(UserError, match="needs a closure"):  # its step(closure) has no default
        resolve_optimizer("schedulefree:SGDScheduleFreeClosure")


def test_an_optimizer_that_needs_a_closure_is_refused():
    """yolo_gd's step calls ``optimizer.step()`` without a closure: refuse such an optimizer before training."""

    class NeedsClosure(torch.optim.SGD):
        def step(self, closure):  # no default: a closure is required
            return super().step(closure)

    with pytest.raises(UserError, match=r"optimizer 'NeedsClosure' needs a closure in step\(\)"):
        resolve_optimizer(NeedsClosure)
    info = OptimInfo(name="needs_closure", factory=lambda: NeedsClosure, needs_closure=True)
    with pytest.raises(UserError, match="needs a closure"):
        resolve_optimizer(info)
    assert not resolve_optimizer(torch.optim.SGD).needs_closure  # closure=None: optional, fine


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_such_module_xyz:Opt", "cannot import module 'no_such_module_xyz'"),
        ("torch.optim:NoSuchOpt", "module 'torch.optim' has no attribute 'NoSuchOpt'"),
        ("torch.optim:", "must look like 'package.module:Class'"),
        (":SGD", "must look like 'package.module:Class'"),
        ("torch.optim:SGD:x", "must look like 'package.module:Class'"),
        ("torch.nn:Linear", "not a torch.optim.Optimizer subclass"),
        ("math:pi", "not a torch.optim.Optimizer subclass"),
    ],
)
def test_bad_import_paths(path, message):
    with pytest.raises(UserError) as e:
        resolve_optimizer(path)
    assert message in str(e.value)
    assert path in str(e.value)


def test_class_spec():
    info = resolve_optimizer(torch.optim.RMSprop)
    assert info.name == "RMSprop" and info.has_momentum and info.adaptive
    with pytest.raises(UserError, match="not a torch.optim.Optimizer subclass"):
        resolve_optimizer(nn.Linear)
    with pytest.raises(UserError, match="must be a name"):
        resolve_optimizer(3)


def test_callable_spec_gets_groups_with_lr():
    seen = {}

    def make(groups):
        seen["groups"] = groups
        return torch.optim.SGD(groups, momentum=0.9)

    info = resolve_optimizer(make)
    assert not any((info.has_momentum, info.has_betas, info.adaptive, info.fused_on_cuda))
    model = tiny_model()
    groups = build_param_groups(model, lr=0.05, weight_decay=1e-4)
    opt = build_optimizer(info, groups)
    assert [g["lr"] for g in opt.param_groups] == [0.05] * 3
    assert opt.param_groups[0]["weight_decay"] == 1e-4 and opt.param_groups[0]["param_group"] == "weight"
    # groups without an lr get the one passed
    opt = build_optimizer(info, model.parameters(), lr=0.2)
    assert opt.param_groups[0]["lr"] == 0.2
    x, y = _batch()
    before = _params(model)
    _step(model, opt, x, y)
    assert any(not torch.equal(a, b) for a, b in zip(before, _params(model)))


def test_callable_spec_keywords():
    model = tiny_model()
    info = resolve_optimizer(lambda groups, lr, momentum=0.0: torch.optim.SGD(groups, lr=lr, momentum=momentum))
    opt = build_optimizer(info, model.parameters(), lr=0.3, momentum=0.7)
    assert opt.defaults["lr"] == 0.3 and opt.defaults["momentum"] == 0.7
    with pytest.raises(UserError, match="does not take 'betas'"):
        build_optimizer(info, model.parameters(), lr=0.3, betas=(0.9, 0.99))
    bad = resolve_optimizer(lambda groups: "not an optimizer")
    with pytest.raises(UserError, match="not a torch.optim.Optimizer"):
        build_optimizer(bad, model.parameters(), lr=0.1)


# ----------------------------------------------------------------------------------------------- schedule-free


def test_schedule_free_reads_group_lr_each_step():
    """yolo_gd's warmup/schedule sets group['lr'] per step; schedule-free must follow it (not cache lr)."""
    require("schedulefree")
    info = get_optimizer_info("sfadamw")
    assert info.defaults["warmup_steps"] == 0
    model = tiny_model()
    opt = build_optimizer(info, _groups(model, info))
    opt.train()
    x, y = _batch()
    for lr in (1e-4, 2e-3):
        for g in opt.param_groups:
            g["lr"] = lr
        _step(model, opt, x, y)
        assert all(g["scheduled_lr"] == lr for g in opt.param_groups)
    assert all(g["lr_max"] == 2e-3 for g in opt.param_groups)
    opt.eval()  # back to the averaged point x for validation / saving
    assert all(not g["train_mode"] for g in opt.param_groups)

"""Optimizers by library name (``timm:lamb``, ``pytorch_optimizer:ranger``): EVERY name both libraries list is either
built and stepped once on a tiny model with yolo_gd's groups, or refused in one line for its exact reason."""

from __future__ import annotations

import importlib.util
import os
import random

import numpy as np
import pytest
import torch
from conftest import require

from yolo_gd.errors import UserError
from yolo_gd.optim.groups import build_param_groups
from yolo_gd.optim.libraries import LIBRARIES, library_names
from yolo_gd.optim.libraries.capabilities import eager, one_thread
from yolo_gd.optim.registry import build_optimizer, resolve_optimizer
from test_registry import tiny_model

# What each refusal must say (the reason), per refused name: timm 1.0.31, pytorch_optimizer 4.1.0, no CUDA, no
# bitsandbytes / apex / einops. A library update that changes this list fails here, on purpose: look at the new
# name, then update the list.
HESSIAN, CLOSURE, MODEL, SAM, OWN, PACKAGE, PROBE, WRAPS = (
    "create_graph=True", "needs a closure", "takes the model", "SAM-style", "own LR warmup", "not importable",
    "fails one step", "wraps another optimizer")
REFUSED = {
    "timm:adahessian": HESSIAN,
    **{f"timm:{n}": PACKAGE for n in (
        "bnbadam", "bnbadam8bit", "bnbadamw", "bnbadamw8bit", "bnbademamix", "bnbademamix8bit", "bnblion",
        "bnblion8bit", "bnbsgd", "bnbsgd8bit", "fusedadam", "fusedadamw", "fusedlamb", "fusednovograd", "fusedsgd")},
    "pytorch_optimizer:adahessian": HESSIAN,
    "pytorch_optimizer:sophiah": HESSIAN,
    "pytorch_optimizer:adalomo": MODEL,
    "pytorch_optimizer:adammini": MODEL,
    "pytorch_optimizer:lomo": MODEL,
    "pytorch_optimizer:alig": CLOSURE,  # found by the probe step: its step() raises without one
    "pytorch_optimizer:lbfgs": CLOSURE,
    "pytorch_optimizer:bsam": SAM,
    "pytorch_optimizer:ranger21": OWN,
    "pytorch_optimizer:magma": WRAPS,
    "pytorch_optimizer:demo": "needs a package that is not installed",  # einops, imported inside step()
    "pytorch_optimizer:distributedmuon": PROBE,  # needs torch.distributed initialised
    "pytorch_optimizer:lorarite": PROBE,  # LoRA factor pairs only
    "pytorch_optimizer:spectralsphere": PROBE,  # 2-D parameters only
}
# Built and stepped, but their first step leaves every weight where it was, by design: ADOPT's first step only
# initialises the second moment; AdaShift waits for its gradient window; RAdam (pytorch_optimizer) skips updates
# until the variance is tractable; SOAP's first step only sets up its preconditioner.
FIRST_STEP_STILL = {
    *(f"timm:{n}" for n in ("adopt", "adoptc", "adoptw", "cadopt", "cadoptc", "cadoptw")),
    *(f"pytorch_optimizer:{n}" for n in ("adashift", "adopt", "radam", "schedulefreeradam", "soap")),
}


def _specs() -> list:
    specs = []
    for library, (_, package, _) in LIBRARIES.items():
        if importlib.util.find_spec(package) is None:  # the test below then skips (fails under CI=true)
            specs.append(pytest.param(f"{library}:<missing>", id=f"{library}-missing"))
            continue
        specs += [f"{library}:{name}" for name in library_names(library)]
    return specs


SPECS = _specs()


@pytest.fixture(scope="module", autouse=True)
def _small_and_eager():
    """One thread and no torch.compile (timm's Kron compiles on CPU for ~12 s): tiny tensors, hundreds of names."""
    with one_thread(), eager():
        yield


@pytest.mark.parametrize("spec", SPECS)
def test_every_library_name_is_built_and_stepped_or_refused_with_its_reason(spec):
    """Built names also resume exactly: a second step from the saved state equals the uninterrupted one."""
    library, _, name = spec.partition(":")
    if name == "<missing>":
        require(LIBRARIES[library][1])
    if spec in REFUSED:
        with pytest.raises(UserError) as e:
            resolve_optimizer(spec)
        message = str(e.value)
        assert "\n" not in message and f"'{spec}'" in message and REFUSED[spec] in message
        assert ": " in message.split(REFUSED[spec], 1)[1]  # ... then the alternative after the reason
        return
    info = resolve_optimizer(spec)
    assert info.name == spec and info.refusal is None and info.default_lr > 0
    model = tiny_model()
    optimizer = build_optimizer(info, build_param_groups(model, lr=info.default_lr, weight_decay=5e-4,
                                                         muon=info.muon_groups))
    groups = optimizer.param_groups  # Ultralytics' tagged groups: decay on weights only, BN and bias without
    expected = ["weight:x3", "weight", "bn:x3", "bn", "bias:x3", "bias", "muon:x3", "muon"]
    assert [g["name"] for g in groups] == (expected if info.muon_groups else expected[1:6:2])
    assert all((g["weight_decay"] == 5e-4) == (g["name"].split(":")[0] in {"weight", "muon"}) for g in groups)
    if info.has_train_eval_mode:
        optimizer.train()
    before = [p.detach().clone() for p in model.parameters()]
    torch.manual_seed(1)
    model(torch.randn(2, 3, 8, 8)).square().mean().backward()
    optimizer.step()
    after = list(model.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    moved = any(not torch.equal(a, b) for a, b in zip(before, after))
    assert moved != (spec in FIRST_STEP_STILL)
    _resumes_exactly(info, model, optimizer)


def _resumes_exactly(info, model, optimizer) -> None:
    """A second step from the saved state (as yolo_gd's resume loads it) equals the uninterrupted second step."""
    import copy

    from yolo_gd.inject.resume import load_optimizer_state

    twin = copy.deepcopy(model)
    saved = copy.deepcopy(type(optimizer).state_dict(optimizer))
    restored = build_optimizer(info, build_param_groups(twin, lr=info.default_lr, weight_decay=5e-4,
                                                        muon=info.muon_groups))
    load_optimizer_state(restored, saved)
    for m, opt in ((model, optimizer), (twin, restored)):
        if info.has_train_eval_mode:
            opt.train()
        opt.zero_grad()
        torch.manual_seed(2)
        np.random.seed(2)  # Kron (pytorch_optimizer) draws np.random each step; exact resume restores that generator
        random.seed(2)  # SARA draws random.choice (exact resume restores Python's generator too)
        m(torch.randn(2, 3, 8, 8)).square().mean().backward()
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))


def test_the_refused_list_names_only_listed_optimizers():
    listed = set(SPECS)
    assert set(REFUSED) <= listed and FIRST_STEP_STILL <= listed


# ------------------------------------------------------------------------------------------ defaults, as records


@pytest.fixture(scope="module")
def both():
    require("timm")
    require("pytorch_optimizer")


def test_family_defaults_reach_the_record(both):
    sgd = resolve_optimizer("timm:sgd")  # Ultralytics' lr0 and momentum, timm's nesterov
    assert dict(sgd.defaults) == {"nesterov": True, "momentum": 0.937, "lr": 0.01}
    assert sgd.has_momentum and not sgd.has_betas and sgd.weight_decay_style == "l2"
    lamb = resolve_optimizer("TIMM:Lamb")  # names are case-insensitive
    assert lamb.name == "timm:lamb" and dict(lamb.defaults) == {"betas": (0.9, 0.999), "lr": 1e-3}
    assert lamb.has_betas and lamb.adaptive and not lamb.has_momentum
    assert resolve_optimizer("timm:lambw").weight_decay_style == "decoupled"  # timm's decoupled_decay=True
    assert resolve_optimizer("timm:adamw").weight_decay_style == "decoupled"  # decoupled by design
    assert resolve_optimizer("pytorch_optimizer:lion").default_lr == 1e-4  # the class's own lr
    adan = resolve_optimizer("pytorch_optimizer:adan")
    assert adan.defaults["betas"] == (0.98, 0.92, 0.99)
    prodigy = resolve_optimizer("pytorch_optimizer:prodigy")
    assert prodigy.lr_free and prodigy.default_lr == 1.0
    sf = resolve_optimizer("pytorch_optimizer:schedulefreeadamw")
    assert sf.has_train_eval_mode and sf.default_lr == 2.5e-3
    assert resolve_optimizer("pytorch_optimizer:muon").muon_groups
    assert not resolve_optimizer("timm:muon").muon_groups  # timm's Muon handles non-matrix parameters itself


def test_lookahead_wraps_any_timm_name(both):
    from timm.optim import Lookahead

    info = resolve_optimizer("timm:lookahead_lamb")
    model = tiny_model()
    optimizer = build_optimizer(info, build_param_groups(model, lr=1e-3, weight_decay=5e-4), lr=2e-3)
    assert isinstance(optimizer, Lookahead) and type(optimizer._base_optimizer).__name__ == "Lamb"
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3] * 3  # a group's own lr wins, as in torch
    with pytest.raises(UserError, match="does not take 'mommentum'"):
        build_optimizer(info, build_param_groups(model, lr=1e-3, weight_decay=5e-4), mommentum=0.9)


def test_unknown_names_suggest_the_closest_and_missing_packages_say_how_to_install(both, monkeypatch):
    with pytest.raises(UserError, match=r"unknown timm optimizer 'lamm'\. Did you mean 'lamb'\? Valid timm"):
        resolve_optimizer("timm:lamm")
    with pytest.raises(UserError, match="Did you mean 'ranger'"):
        resolve_optimizer("pytorch_optimizer:rangerr")
    from yolo_gd.optim import libraries

    monkeypatch.setitem(libraries.LIBRARIES, "timm", ("yolo_gd.optim.libraries.timm", "timm_not_here", "timm"))
    with pytest.raises(UserError, match=r"need the package timm_not_here .*: pip install 'yolo_gd\[timm\]'"):
        libraries.lookup("timm:lion_not_cached")


def test_layer_decay_is_refused_naming_lr_decay(both):
    info = resolve_optimizer("timm:adamw")
    with pytest.raises(UserError, match="only timm's schedulers apply .*: use yolo_gd's lr_decay="):
        build_optimizer(info, build_param_groups(tiny_model(), lr=1e-3, weight_decay=0.0), layer_decay=0.75)
    from yolo_gd.inject.config import InjectConfig

    with pytest.raises(UserError, match="optimizer_kwargs: .*'layer_decay'.*lr_decay="):
        InjectConfig(optimizer="timm:adamw", optimizer_kwargs={"layer_decay": 0.75})


def test_every_group_rule_reaches_a_library_optimizer(both):
    """groups=, lr_decay and unfreeze groups on yolo11n: the library optimizer gets exactly yolo_gd's groups."""
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolo11n.yaml", nc=3, verbose=False)
    for name, p in model.named_parameters():
        p.requires_grad = not name.startswith("model.0.")  # model.0 frozen, joins later
    late = {name: 1 for name, _ in model.named_parameters() if name.startswith("model.0.")}
    groups = build_param_groups(model, lr=1e-3, weight_decay=5e-4, rules={"head": {"lr": 3.0}}, lr_decay=0.5,
                                late=late)
    optimizer = build_optimizer(resolve_optimizer("pytorch_optimizer:adan"), groups)
    assert [(g["name"], g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [
        (g["name"], g["lr"], g["weight_decay"]) for g in groups]
    by_name = {g["name"]: g for g in optimizer.param_groups}
    assert by_name["weight:head"]["lr"] == pytest.approx(3e-3)
    assert by_name["weight:depth22"]["lr"] == pytest.approx(1e-3 * 0.5)
    assert by_name["weight:depth1"]["lr"] == pytest.approx(1e-3 * 0.5 ** 22)
    assert by_name["weight:depth0:unfreeze1"]["join"] == 1 and by_name["bn:depth0:unfreeze1"]["weight_decay"] == 0


def test_adan_three_betas_through_resolve_and_the_warmup(both):
    """beta1 warms up like momentum; Adan's second and third betas stay as they are."""
    from yolo_gd.inject.config import InjectConfig
    from yolo_gd.inject.resolve import _hparams
    from yolo_gd.optim.plan import HyperPlan, WarmupPlan
    from yolo_gd.optim.progress import Progress
    from yolo_gd.optim.schedules import constant

    info = resolve_optimizer("pytorch_optimizer:adan")
    facts = type("Facts", (), {"args": {"lr0": 0.01, "momentum": 0.937}, "changed": lambda self, key: False})()
    hparams, beta1 = _hparams(InjectConfig(optimizer="pytorch_optimizer:adan"), facts, info, {})
    assert hparams["betas"] == (0.98, 0.92, 0.99) and beta1 == 0.98
    group = {"params": [], "lr": 0.0, "initial_lr": 1e-3, "betas": hparams["betas"], "param_group": "weight"}
    plan = HyperPlan(constant(), WarmupPlan(4, "step", "linear", momentum=0.8), beta1, "betas")
    plan.apply([group], Progress(step=2, total_steps=10, batch=2, batches_per_epoch=10, epochs=1))
    assert group["betas"] == (pytest.approx(0.89), 0.92, 0.99)


def test_lrfind_takes_library_names_and_refuses_lr_free_ones(both):
    from yolo_gd.lrfind.run import check_optimizer

    check_optimizer("timm:lamb")
    with pytest.raises(UserError, match="pytorch_optimizer:prodigy sets its own step size"):
        check_optimizer("pytorch_optimizer:prodigy")
    with pytest.raises(UserError, match="own LR warmup and warm-down"):
        check_optimizer("pytorch_optimizer:ranger21")


def test_a_sweep_over_three_library_optimizers_expands_and_validates(both, tmp_path):
    from yolo_gd.ablate.spec import parse_spec

    text = """
name: libs
base: {model: yolo11n.yaml, data: shapes, imgsz: 32, batch: 8}
axes:
  optimizer:
    - timm:lamb
    - {name: pytorch_optimizer:adan, lr: 0.002}
    - {name: timm:lookahead_adamw, label: la_adamw}
seeds: [0]
budget: {epochs: 1}
"""
    sweep = parse_spec(text, tmp_path / "libs.yaml")
    assert [(t.name, t.kwargs["optimizer"], t.kwargs.get("lr")) for t in sweep.trials] == [
        ("lamb-s0", "timm:lamb", None), ("adan-lr0.002-s0", "pytorch_optimizer:adan", 0.002),
        ("la_adamw-s0", "timm:lookahead_adamw", None)]
    with pytest.raises(UserError, match=r"libs\.yaml:8: axes\.optimizer\[2\]\.name: .*'pytorch_optimizer:ranger21' runs its own LR"):
        parse_spec(text.replace("timm:lookahead_adamw", "pytorch_optimizer:ranger21"), tmp_path / "libs.yaml")


@pytest.mark.slow
def test_yolo_gd_train_with_timm_lamb_end_to_end(both, tmp_path, monkeypatch):
    """`yolo-gd train optimizer=timm:lamb` at 32 px, 1 epoch, 16 images: exits 0 and records the library name."""
    import yaml

    from yolo_gd.cli import main
    from yolo_gd.datasets.shapes import generate_shapes

    monkeypatch.chdir(tmp_path)
    data = generate_shapes(tmp_path / "data", n_train=16, n_val=8, imgsz=32, seed=0)
    code = main(["train", f"data={data}", "optimizer=timm:lamb", "epochs=1", "imgsz=32", "batch=8", "nbs=8",
                 "workers=0", "plots=false", f"project={tmp_path / 'runs'}", "name=lamb"])
    assert code == 0
    record = yaml.safe_load((tmp_path / "runs" / "lamb" / "yolo_gd_run.yaml").read_text())
    assert record["injected"]["optimizer"] == "timm:lamb" and record["injected"]["lr"] == 1e-3
    assert record["injected"]["sources"]["lr"] == "timm:lamb default"
    assert record["injected"]["weight_decay_style"] == "l2"


def test_a_package_attribute_the_library_does_not_list_stays_an_import_path(both):
    """``pytorch_optimizer:SAM`` named the class before library names existed and still does (an import-path
    record), refused for the closure its first_step/second_step need; ``pytorch_optimizer:Lamb`` now gets the
    library record."""
    with pytest.raises(UserError, match="'pytorch_optimizer:SAM' needs a closure .*optimizer=sam or asam"):
        resolve_optimizer("pytorch_optimizer:SAM")
    assert resolve_optimizer("pytorch_optimizer:Lamb").name == "pytorch_optimizer:lamb"

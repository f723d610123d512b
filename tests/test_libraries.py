"""Optimizers by library name (``timm:lamb``, ``pytorch_optimizer:ranger``): EVERY name both libraries list is either
built and stepped once on a tiny model with yolo_gd's groups, or refused in one line for its exact reason."""

from __future__ import annotations

import importlib.util
import os

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


def test_the_refused_list_names_only_listed_optimizers():
    listed = set(SPECS)
    assert set(REFUSED) <= listed and FIRST_STEP_STILL <= listed

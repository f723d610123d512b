"""Per-family defaults of library optimizers, read off constructor signatures (pure: no library needed)."""

from __future__ import annotations

import inspect

import torch

from yolo_gd.optim.libraries.families import family_of
from yolo_gd.optim.optim_info import signature_params


class _SGDLike(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay))


class _AdanLike(torch.optim.Optimizer):
    def __init__(self, params, lr=None, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=0.0, weight_decouple=True):
        super().__init__(params, dict(lr=lr))


class MyLion(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, dict(lr=lr))


def _family(name, cls, library_defaults=None):
    return family_of(name, cls.__name__, signature_params(cls), library_defaults or {})


def test_the_sgd_family_gets_ultralytics_lr0_and_momentum_over_the_class_defaults():
    fam = _family("sgdw", _SGDLike, {"nesterov": True})
    assert fam.name == "sgd" and fam.defaults == {"nesterov": True, "lr": 0.01, "momentum": 0.937}
    assert fam.has_momentum and not fam.has_betas and not fam.adaptive and fam.weight_decay_style == "l2"


def test_other_names_keep_the_class_lr_or_get_the_adaptive_default_and_all_betas():
    fam = _family("adan", _AdanLike)  # lr=None in the class: the adaptive family's 1e-3
    assert fam.name == "own" and fam.defaults == {"betas": (0.98, 0.92, 0.99), "lr": 1e-3}
    assert fam.has_betas and fam.adaptive and fam.weight_decay_style == "decoupled"  # weight_decouple=True
    assert _family("adan", _AdanLike, {"weight_decouple": False}).weight_decay_style == "l2"
    lion = _family("lion", MyLion)
    assert lion.defaults == {"betas": (0.9, 0.99), "lr": 1e-4} and lion.weight_decay_style == "decoupled"
    momentum = _family("kron", _SGDLike)  # momentum but not an SGD name: the class's own lr and momentum
    assert momentum.defaults == {"momentum": 0.0, "lr": 1e-3} and momentum.has_momentum


def test_lr_free_names_keep_their_multiplier():
    class Prodigy(torch.optim.Optimizer):
        def __init__(self, params, lr=1.0, betas=(0.9, 0.999), weight_decay=0.0):
            super().__init__(params, dict(lr=lr))

    fam = _family("prodigy", Prodigy)
    assert fam.name == "lr_free" and fam.defaults["lr"] == 1.0 and fam.weight_decay_style == "l2"


def test_no_weight_decay_argument_means_no_style():
    class Plain(torch.optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr))

    assert _family("plain", Plain).weight_decay_style == ""
    assert inspect.signature(Plain)  # a readable signature is all family_of needs

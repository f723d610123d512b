"""What a library optimizer needs from the loop, found from its class and one probe step; refusals in one line."""

from __future__ import annotations

import torch

from yolo_gd.optim.libraries.capabilities import detect, probe


def _make(cls):
    return lambda groups, muon: cls(groups, lr=0.1)


class _Plain(torch.optim.SGD):
    pass


class _TakesModel(torch.optim.SGD):
    def __init__(self, model, lr=0.1):
        super().__init__(model.parameters(), lr=lr)


class _Wraps(torch.optim.Optimizer):
    def __init__(self, optimizer, lr=0.1):
        super().__init__([torch.zeros(1, requires_grad=True)], dict(lr=lr))


class _SamStyle(torch.optim.SGD):
    def first_step(self):
        pass

    def second_step(self):
        pass


class _Closure(torch.optim.SGD):
    def step(self, closure):
        return super().step(closure)


class _ClosureInside(torch.optim.SGD):
    def step(self, closure=None):
        if closure is None:
            raise RuntimeError("this optimizer requires closure")
        return super().step(closure)


class _Hessian(torch.optim.SGD):
    def step(self, closure=None, hessian=None):
        return super().step(closure)


class _OwnSchedule(torch.optim.SGD):
    def __init__(self, params, num_iterations, lr=0.1):
        super().__init__(params, lr=lr)


class _NeedsMuonKey(torch.optim.SGD):
    def step(self, closure=None):
        if any("use_muon" not in g for g in self.param_groups):
            raise ValueError("`use_muon` must be set.")
        return super().step(closure)


class _Modes(torch.optim.SGD):
    def train(self):
        self.mode = "train"

    def eval(self):
        self.mode = "eval"


class _Explodes(torch.optim.SGD):
    def step(self, closure=None):
        for g in self.param_groups:
            for p in g["params"]:
                p.data.fill_(float("inf"))


def test_a_plain_optimizer_is_usable_and_modes_are_supported():
    assert detect("x:plain", _Plain, _make(_Plain)).refusal is None
    modes = detect("x:modes", _Modes, _make(_Modes))
    assert modes.refusal is None and modes.has_train_eval_mode


def test_each_need_is_refused_with_its_reason_and_alternative():
    cases = {
        _TakesModel: ("wants_model", "takes the model (model=), not param groups"),
        _Wraps: (None, "wraps another optimizer instance"),
        _SamStyle: ("needs_closure", "is SAM-style"),
        _Closure: ("needs_closure", "needs a closure in step()"),
        _ClosureInside: ("needs_closure", "needs a closure in step()"),  # found by the probe step
        _Hessian: ("needs_create_graph", "loss.backward(create_graph=True)"),
        _OwnSchedule: ("own_schedule", "runs its own LR warmup and warm-down over num_iterations="),
        _Explodes: (None, "fails one step on a tiny conv model with yolo_gd's groups (FloatingPointError"),
    }
    for cls, (flag, reason) in cases.items():
        caps = detect(f"x:{cls.__name__}", cls, _make(cls))
        assert caps.refusal is not None and reason in caps.refusal and "\n" not in caps.refusal, cls
        assert caps.refusal.startswith(f"optimizer 'x:{cls.__name__}' ")
        assert flag is None or getattr(caps, flag), cls
    assert detect("x:h", _Plain, _make(_Plain), second_order=True).needs_create_graph  # timm's flag


def test_an_optimizer_that_wants_use_muon_on_every_group_gets_muon_groups():
    def make(groups, muon):
        if muon:
            groups = [dict(g, use_muon=g.get("use_muon", False)) for g in groups]
        return _NeedsMuonKey(groups, lr=0.1)

    caps = detect("x:muon", _NeedsMuonKey, make)
    assert caps.refusal is None and caps.muon_groups


def test_the_probe_leaves_the_random_state_and_threads_as_they_were():
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    state = torch.get_rng_state()
    assert probe(lambda groups: torch.optim.SGD(groups, lr=0.1), lr=0.1) is None
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads
    error = probe(lambda groups: torch.optim.LBFGS(groups), lr=0.1)
    assert isinstance(error, ValueError) and "per-parameter options" in str(error)

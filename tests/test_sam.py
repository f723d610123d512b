"""The SAM family (optim/sam.py, inject/sam.py): the math against pytorch_optimizer's SAM/GSAM, the owned two-pass
step against pytorch_optimizer's closure-driven SAM on a small trainer, the AMP skip, BatchNorm statistics moved
once per step, the options' one-line errors, and a tiny real Ultralytics run."""

from __future__ import annotations

import copy
import types

import pytest
import torch
from torch import nn

from conftest import require
from yolo_gd.errors import UserError
from yolo_gd.inject.config import InjectConfig
from yolo_gd.inject.host import Host
from yolo_gd.inject.run import RunState, StepCounters
from yolo_gd.inject.step import owned_step
from yolo_gd.optim.plan import HyperPlan
from yolo_gd.optim.progress import Cadence
from yolo_gd.optim.sam import SamRule, gsam_direction_, perturbation, sam_rule
from yolo_gd.optim.schedules import constant


class TinyDetector(nn.Module):
    """Called like an Ultralytics model in training: ``model(batch) -> (loss parts, items)``; has BatchNorm."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 2))

    def forward(self, batch):
        out = self.body(batch["img"])
        parts = torch.stack([(out - batch["target"]).square().mean(), out.abs().mean() * 0.1])
        return parts, {"mse": parts[0].detach(), "l1": parts[1].detach()}


def _batches(n):
    g = torch.Generator().manual_seed(1)
    return [{"img": torch.randn(16, 4, generator=g), "target": torch.randn(16, 2, generator=g)} for _ in range(n)]


def _trainer(model, optimizer, scaler=None):
    args = types.SimpleNamespace(amp=False, compile=False)
    return types.SimpleNamespace(model=model, optimizer=optimizer, ema=None, device=torch.device("cpu"), amp=False,
                                 args=args, world_size=0,
                                 scaler=scaler or torch.amp.GradScaler("cpu", enabled=False))


def _sgd(model):
    return torch.optim.SGD([{"params": list(model.parameters()), "initial_lr": 0.05, "param_group": "weight"}],
                           lr=0.05, momentum=0.9)


def _owned_run(rule: SamRule, batches, scaler=None):
    """Train a TinyDetector with the owned step (SAM family) as Ultralytics' loop would drive it."""
    torch.manual_seed(0)
    model = TinyDetector()
    trainer = _trainer(model, _sgd(model), scaler)
    run = RunState(Cadence(batches_per_epoch=len(batches), epochs=1, accumulate=1), StepCounters(),
                   HyperPlan(constant()), clip=None, batches_per_epoch=len(batches))
    run.sam = rule
    for ni, batch in enumerate(batches):
        run.batch, run.sam_batch = ni, batch  # the batch the host preprocessed (captured in a real run)
        trainer.scaler.scale(model(batch)[0].sum()).backward()  # the host's first pass
        owned_step(Host(trainer), run)
    return model, run


def _reference_run(adaptive: bool, rho: float, batches):
    """pytorch_optimizer's SAM (first_step / second_step around two backward passes), the same base SGD and batches.
    Its second forward moves the BatchNorm statistics again, which the weights compared here do not depend on."""
    po = require("pytorch_optimizer")
    torch.manual_seed(0)
    model = TinyDetector()
    opt = po.SAM([{"params": list(model.parameters())}], torch.optim.SGD, rho=rho, adaptive=adaptive, lr=0.05,
                 momentum=0.9)
    for batch in batches:
        model(batch)[0].sum().backward()
        opt.first_step(zero_grad=True)
        model(batch)[0].sum().backward()
        opt.second_step(zero_grad=True)
    return model


@pytest.mark.parametrize("kind, adaptive", [("sam", False), ("asam", True)])
def test_owned_sam_matches_pytorch_optimizer_for_several_steps(kind, adaptive):
    batches = _batches(5)
    ours, _ = _owned_run(sam_rule(kind, rho=0.05), batches)
    ref = _reference_run(adaptive, 0.05, batches)
    for (name, a), b in zip(ours.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    torch.manual_seed(0)
    start = TinyDetector()
    assert max((a - b).abs().max().item() for a, b in zip(ours.parameters(), start.parameters())) > 1e-2  # trained


def test_batchnorm_statistics_move_once_per_step():
    """After both passes the running statistics are those of the host's one forward on the step's batch."""
    batches = _batches(3)
    torch.manual_seed(0)
    single = TinyDetector()
    single(batches[0])  # one training-mode forward, as the host's first pass
    one_step, _ = _owned_run(sam_rule("sam"), batches[:1])
    torch.testing.assert_close(one_step.body[1].running_mean, single.body[1].running_mean, rtol=0, atol=0)
    torch.testing.assert_close(one_step.body[1].running_var, single.body[1].running_var, rtol=0, atol=0)
    three_steps, _ = _owned_run(sam_rule("sam"), batches)
    assert three_steps.body[1].num_batches_tracked.item() == 3  # one per step, not two


def test_perturbation_and_gsam_decomposition_match_pytorch_optimizer():
    po = require("pytorch_optimizer")
    torch.manual_seed(0)
    params = [torch.randn(3, 4), torch.randn(5)]
    grads = [torch.randn(3, 4), torch.randn(5)]
    for kind in ("sam", "asam"):
        rule = sam_rule(kind, rho=0.1)
        e, _ = perturbation(params, grads, rule, 0.1)
        ps = [nn.Parameter(p.clone()) for p in params]
        for p, g in zip(ps, grads):
            p.grad = g.clone()
        opt = po.SAM([{"params": ps}], torch.optim.SGD, rho=0.1, adaptive=rule.adaptive, lr=0.1)
        opt.first_step()
        for p, p0, d in zip(ps, params, e):
            torch.testing.assert_close(p.detach() - p0, d, rtol=1e-6, atol=1e-7)
    first, second = [g.clone() for g in grads], [torch.randn(3, 4), torch.randn(5)]
    expected = [g.clone() for g in second]
    inner = sum((a * b).sum() for a, b in zip(first, second))
    sq = sum(b.square().sum() for b in second)
    for x, a, b in zip(expected, first, second):
        x.sub_(0.3 * (a - inner / sq * b))  # g_p - alpha * (g_0 - proj_{g_p} g_0)
    gsam_direction_(second, first, 0.3)
    for a, b in zip(second, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_non_finite_first_pass_skips_the_step_under_amp():
    """With a GradScaler, inf in the first pass makes the scaler skip the step and lower the scale; the weights
    are exactly as before the step (perturbation undone)."""
    batches = _batches(1)
    batches[0]["img"][0, 0] = float("inf")
    torch.manual_seed(0)
    before = [p.detach().clone() for p in TinyDetector().parameters()]
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8)
    model, _ = _owned_run(sam_rule("sam"), batches, scaler)
    assert scaler.get_scale() == 2.0 ** 7
    for a, b in zip(model.parameters(), before):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(optimizer="sam"), "optimizer=sam needs base=<optimizer>"),
    (dict(optimizer="gsam", base="gsam"), "optimizer=gsam needs base=<optimizer>"),
    (dict(optimizer="adamw", rho=0.1), "rho is an option of the SAM family"),
    (dict(optimizer="asam", base="sgd", sam_alpha=0.2), "sam_alpha is GSAM's"),
    (dict(optimizer="sam", base="sgdd"), "unknown optimizer 'sgdd'"),
])
def test_options_are_checked_in_one_line(kwargs, message):
    with pytest.raises(UserError) as e:
        InjectConfig(**kwargs)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_defaults_per_variant_and_the_optimizer_that_steps():
    cfg = InjectConfig(optimizer="ASAM", base="adamw")
    assert cfg.optimizer == "asam" and cfg.optimizer_to_build == "adamw"
    assert cfg.sam == SamRule("asam", 0.5, 0.0)
    assert InjectConfig(optimizer="gsam", base="sgd").sam == SamRule("gsam", 0.05, 0.4)
    assert InjectConfig(optimizer="sgd").sam is None
    assert sam_rule("gsam", 0.1, 0.2).rho_at(0.5) == 0.05 and sam_rule("sam", 0.1).rho_at(0.5) == 0.1


@pytest.mark.slow
def test_sam_trains_in_ultralytics_and_refuses_accumulation(tiny_data, tmp_path):
    import yaml

    import yolo_gd
    from yolo_gd.telemetry.sinks import read_steps

    common = dict(data=str(tiny_data), epochs=1, imgsz=32, batch=8, workers=0, plots=False, project=str(tmp_path))
    with pytest.raises(UserError, match="set nbs=8"):
        yolo_gd.train("yolo11n.yaml", optimizer="sam", base="sgd", nbs=64, name="acc", **common)
    assert not (tmp_path / "acc").exists()
    result = yolo_gd.train("yolo11n.yaml", optimizer="sam", base="adamw", rho=0.02, nbs=8, name="sam", **common)
    record = yaml.safe_load((result.save_dir / "yolo_gd_run.yaml").read_text())
    assert record["sam"] == {"kind": "sam", "rho": 0.02, "alpha": 0.0}
    assert record["fingerprint"]["sam"] == record["sam"]
    assert record["injected"]["optimizer"] == "adamw"
    steps = read_steps(result.save_dir)
    assert len(steps) == 6  # 48 images / batch 8, one epoch
    assert steps["sam_perturbation_norm"].tolist() == pytest.approx([0.02] * 6, rel=1e-5)
    assert (steps["sam_grad_norm_first"] > 0).all() and (steps["grad_norm"] > 0).all()


@pytest.mark.slow
def test_sam_resumes_bit_identical_after_kill(tiny_data, tmp_path, monkeypatch):
    """kill -9 in the middle of epoch 1 of 2, resume: the same raw and EMA weights as the uninterrupted run."""
    import json

    from test_exact_resume import _run

    monkeypatch.setenv("YOLO_GD_WORKER_INJECT", json.dumps(dict(optimizer="asam", base="sgd", schedule="cosine",
                                                                lr=0.01)))
    monkeypatch.setenv("YOLO_GD_WORKER_ARGS", json.dumps(dict(epochs=2, nbs=8, imgsz=32)))
    _run(str(tiny_data), str(tmp_path), "full", "none")
    _run(str(tiny_data), str(tmp_path), "killed", "mid_epoch:1:2", expect_kill=True)
    _run(str(tiny_data), str(tmp_path), "killed", "none", str(tmp_path / "killed" / "weights" / "last.pt"))
    a, b = (torch.load(tmp_path / name / "final_weights.pt", weights_only=True) for name in ("full", "killed"))
    assert a["updates"] == b["updates"] == 12
    for part in ("model", "ema"):
        diff = [k for k in a[part] if not torch.equal(a[part][k], b[part][k])]
        assert not diff, f"{part}: {len(diff)} tensors differ, first {diff[:3]}"

"""Norm math against exact hand-computed values and against torch's own clip_grad_norm_."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from yolo_gd.telemetry.norms import (
    global_norm,
    group_norms,
    layer_keys,
    layer_norms,
    ratio,
    segment_index,
    segment_norms,
    slice_norms,
    tensor_norms,
    update_norms,
)


def _model_with_grads(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.SiLU(), nn.Flatten(), nn.LazyLinear(4))
    model(torch.randn(2, 3, 8, 8)).square().sum().backward()
    return model


def test_global_norm_equals_clip_grad_norm_return_value():
    model = _model_with_grads()
    grads = [p.grad.clone() for p in model.parameters()]
    ours = global_norm(grads)
    theirs = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1e-3)
    assert ours.dim() == 0
    # same kernels in the same order: bit-identical, not merely close
    assert torch.equal(ours, theirs)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=0)


def test_global_norm_exact_and_empty():
    assert global_norm([torch.tensor([3.0]), torch.tensor([4.0])]).item() == 5.0
    assert global_norm([torch.tensor([[1.0, 2.0], [2.0, 4.0]])]).item() == 5.0
    assert global_norm([]).item() == 0.0


def test_global_norm_mixed_dtypes():
    out = global_norm([torch.tensor([3.0], dtype=torch.float16), torch.tensor([4.0], dtype=torch.float32)])
    assert out.item() == 5.0


def test_tensor_norms_order_dtype_and_empty():
    out = tensor_norms([torch.tensor([3.0, 4.0]), torch.zeros(0), torch.tensor([[6.0], [8.0]], dtype=torch.float64)])
    assert out.dtype == torch.float32
    assert out.tolist() == [5.0, 0.0, 10.0]


def test_group_norms_exact():
    groups = [
        [torch.tensor([3.0, 4.0])],  # 5
        [torch.tensor([1.0]), torch.tensor([2.0, 2.0])],  # sqrt(1 + 8) = 3
        [],  # empty group: 0
        [torch.tensor([[6.0, 8.0]])],  # 10
    ]
    assert group_norms(groups).tolist() == [5.0, 3.0, 0.0, 10.0]
    index = segment_index([len(g) for g in groups])
    assert index.tolist() == [0, 1, 1, 3]
    assert group_norms(groups, index=index).tolist() == [5.0, 3.0, 0.0, 10.0]
    assert group_norms([[], []]).tolist() == [0.0, 0.0]


def test_group_norms_rejects_other_norm_types():
    with pytest.raises(ValueError, match="2-norm"):
        group_norms([[torch.ones(2)]], norm_type=1.0)


def test_segment_and_slice_norms_agree_with_global():
    torch.manual_seed(1)
    tensors = [torch.randn(n) for n in (5, 7, 1, 30)]
    sizes = [2, 0, 2]
    per = tensor_norms(tensors)
    seg = segment_norms(per, segment_index(sizes), 3)
    flat = torch.cat(tensors)
    sl = slice_norms(flat, [5 + 7, 0, 1 + 30])
    torch.testing.assert_close(seg, sl)
    assert seg[1].item() == 0.0
    torch.testing.assert_close(torch.linalg.vector_norm(seg), global_norm(tensors))


def test_layer_keys_yolo_names():
    names = [
        "model.0.conv.weight",
        "model.0.bn.bias",
        "model.23.cv3.0.0.conv.weight",
        "model.23.dfl.conv.weight",
        "model.10.m.0.attn.qkv.conv.weight",
    ]
    assert layer_keys(names, 1) == {
        "model.0.conv.weight": "model.0",
        "model.0.bn.bias": "model.0",
        "model.23.cv3.0.0.conv.weight": "model.23",
        "model.23.dfl.conv.weight": "model.23",
        "model.10.m.0.attn.qkv.conv.weight": "model.10",
    }
    assert layer_keys(names, 2) == {
        "model.0.conv.weight": "model.0.conv",
        "model.0.bn.bias": "model.0.bn",
        "model.23.cv3.0.0.conv.weight": "model.23.cv3",
        "model.23.dfl.conv.weight": "model.23.dfl",
        "model.10.m.0.attn.qkv.conv.weight": "model.10.m",
    }
    # depth beyond the module path keeps the whole module path, never the leaf
    assert layer_keys(["model.0.conv.weight"], 5) == {"model.0.conv.weight": "model.0.conv"}


def test_layer_keys_other_models_and_pairs():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)))
    assert layer_keys(model.named_parameters(), 1) == {
        "0.weight": "0", "0.bias": "0", "1.0.weight": "1", "1.0.bias": "1",
    }
    assert layer_keys(["weight"], 1) == {"weight": "(root)"}
    with pytest.raises(ValueError):
        layer_keys(["a.b"], 0)


def test_layer_norms_exact():
    named = [
        ("model.0.conv.weight", torch.tensor([3.0])),
        ("model.1.conv.weight", torch.tensor([1.0, 1.0])),
        ("model.0.bn.weight", torch.tensor([4.0])),
    ]
    keys, norms = layer_norms(named, depth=1)
    assert keys == ["model.0", "model.1"]
    assert norms.tolist() == [5.0, torch.tensor(2.0).sqrt().item()]  # exact in float32


def test_update_norm_equals_measured_parameter_change():
    model = _model_with_grads(2)
    opt = torch.optim.SGD(
        [{"params": [model[0].weight, model[4].weight]}, {"params": [model[1].weight]},
         {"params": [model[0].bias, model[1].bias, model[4].bias]}],
        lr=0.1, momentum=0.9,
    )
    groups = [list(g["params"]) for g in opt.param_groups]
    before = [[p.detach().clone() for p in g] for g in groups]
    opt.step()
    out = update_norms(before, groups)
    measured = [
        math.sqrt(sum(((p.detach().double() - b.double()) ** 2).sum().item() for p, b in zip(g, gb)))
        for g, gb in zip(groups, before)
    ]
    torch.testing.assert_close(out.double(), torch.tensor(measured, dtype=torch.float64), rtol=1e-5, atol=1e-7)
    assert (out > 0).all()


def test_ratio():
    a, b = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([4.0, 0.0, 0.5])
    assert ratio(a, b).tolist() == [0.25, 0.0, 4.0]


def test_no_host_sync_in_norm_functions(monkeypatch):
    """The per-step helpers never read a device value on the host."""
    calls = []
    for name in ("item", "cpu", "tolist", "__float__", "__bool__", "numpy"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(
            torch.Tensor, name, lambda self, *a, _n=name, _o=original, **k: (calls.append(_n), _o(self, *a, **k))[1]
        )
    tensors = [torch.randn(3), torch.randn(4, 2), torch.zeros(0)]
    idx = torch.tensor([0, 1, 1])
    global_norm(tensors)
    per = tensor_norms(tensors)
    segment_norms(per, idx, 2)
    slice_norms(torch.randn(10), [3, 0, 7])
    group_norms([tensors[:1], tensors[1:]], index=idx)
    ratio(per, per + 1)
    assert calls == []

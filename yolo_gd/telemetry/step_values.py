"""The recorder's per-step device math: gradient norms, clip, AMP flags, losses. No host sync anywhere here.

Each function returns device tensors that :meth:`StepRecorder.before_step` concatenates into its buffer row.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from yolo_gd.telemetry.layout import Layout
from yolo_gd.telemetry.norms import CLIP_EPS, GradRead, tensor_norms


class Consts:
    """Device scalars made once per layout (making them per step would copy from the host each time)."""

    def __init__(self, device: torch.device):
        self.one = torch.ones((), device=device)
        self.zero = torch.zeros((), device=device)
        self.nan = torch.full((), math.nan, device=device)


def per_tensor_norms(lay: Layout, c: Consts, read: Any, clip: float | None) -> tuple[Tensor, Tensor, Tensor]:
    """Pre-clip per-tensor norms in the layout's parameter order, the pre-clip total, the clip coefficient.

    ``read`` is the step's :class:`GradRead` (the one read of the gradients, shared with the clip), or a
    ``clip_grad_norm_`` return value (a caller that clipped itself: the grads are then already multiplied by the
    coefficient, which is divided out again), or None (nothing read yet: read here; no clip happened).
    """
    if isinstance(read, GradRead):
        index, padded = lay.index_of(read.params)
        norms = read.norms.to(lay.device)
        if padded:  # some recorded parameter has no gradient: the index points it at an appended 0
            norms = torch.cat([norms, c.zero.reshape(1)])
        norms = norms[index]
        total = read.total.detach().to(lay.device, torch.float32)
        return norms, total, (read.coef.to(lay.device, torch.float32) if read.coef is not None else c.one)
    grads = [p.grad if p.grad is not None else p.new_zeros(0) for p in lay.params]
    if lay.homogeneous:  # the usual case: skip tensor_norms' per-tensor dtype/device bucketing
        norms = torch.stack(torch._foreach_norm(grads)).float()  # one foreach pass over the gradients
    else:
        norms = tensor_norms(grads)
    if read is None:
        return norms, torch.linalg.vector_norm(norms), c.one  # = clip_grad_norm_'s value (no clip happened)
    total = read.detach().to(lay.device, torch.float32)
    if clip is None:
        return norms, total, c.one
    coef = torch.clamp(clip / (total + CLIP_EPS), max=1.0)
    return norms / coef, total, coef  # undo the clip: report pre-clip norms


def amp_values(trainer, optimizer, c: Consts, device: torch.device) -> tuple[Tensor, Tensor, bool]:
    """AMP scale, skipped flag, and whether the flag must be read from the scale after the step instead."""
    scaler = getattr(trainer, "scaler", None)
    if scaler is None or not scaler.is_enabled() or getattr(scaler, "_scale", None) is None:
        return c.one, c.zero, False
    found = scaler._found_inf_per_device(optimizer)  # set by unscale_: device tensors, one per device
    if found:
        return scaler._scale, torch.stack([f.to(device) for f in found.values()]).sum() > 0, False
    # unscale_ not called before us: the step was skipped iff update() backs the scale off
    return scaler._scale, c.zero, True  # the tensor: get_scale() would sync


def loss_values(trainer, lay: Layout, c: Consts) -> tuple[Tensor, Tensor]:
    """The backpropagated loss (a 0-dim tensor, NaN if unknown) and the loss parts in the layout's order."""
    loss = getattr(trainer, "loss", None)
    loss = loss.detach().float().sum() if isinstance(loss, Tensor) else c.nan
    items = getattr(trainer, "loss_items", None)
    if isinstance(items, dict):  # a part missing from this step's dict is NaN (names are fixed at the first step)
        parts = [items[n].detach().float().reshape(()) if n in items else c.nan for n in lay.loss_names]
        return loss, torch.stack(parts) if parts else c.zero.reshape(0)
    if isinstance(items, Tensor):
        return loss, items.detach().float().reshape(-1)
    return loss, c.zero.reshape(0)


@torch.no_grad()
def grad_sq(params: list[Tensor], scaler) -> Tensor:
    """Squared global norm of the gradients as they are now, AMP-unscaled with the scaler's device tensor.

    For the noise scale: read after a window's first micro-batch (the gradients are still scaled then: the
    division by the scale happens on the norm, the gradients are not touched). No sync.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.full((), math.nan)
    norm = torch.linalg.vector_norm(tensor_norms(grads))
    if scaler is not None and scaler.is_enabled() and getattr(scaler, "_scale", None) is not None:
        norm = norm / scaler._scale.to(norm.device, torch.float32)
    return norm.square()

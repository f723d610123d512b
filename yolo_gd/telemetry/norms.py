"""Norm math for step telemetry: pure torch, every result stays on the tensors' device.

Why foreach: a YOLO model has hundreds of parameter tensors; ``torch._foreach_norm`` computes all their norms in a
few fused kernels, where a Python loop would launch one kernel per tensor. Every reduction over tensors goes
through per-tensor norms, so group, layer and global norms of one set of tensors come from ONE foreach pass
(:func:`tensor_norms` then :func:`segment_norms`).

Nothing here calls ``.item()``, ``.cpu()``, ``float(tensor)`` or ``.tolist()``: no function syncs the host with
the device, so all of them may run at every optimizer step. Arguments that describe structure (names, sizes,
depths) are plain Python and are read on the host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils._foreach_utils import (
    _device_has_foreach_support,
    _group_tensors_by_device_and_dtype,
    _has_foreach_support,
)

CLIP_EPS = 1e-6  # torch's clip_grad_norm_ coefficient: max_norm / (total + 1e-6); the same number, bit for bit

__all__ = [
    "GradRead",
    "read_grads",
    "clip_read_",
    "global_norm",
    "tensor_norms",
    "segment_index",
    "segment_norms",
    "slice_norms",
    "group_norms",
    "layer_keys",
    "layer_norms",
    "update_norms",
    "ratio",
]


def _by_device_and_dtype(tensors: Sequence[Tensor]) -> dict[tuple[torch.device, torch.dtype], list[int]]:
    """Positions of ``tensors`` per (device, dtype), in first-seen order (foreach kernels need one of each)."""
    buckets: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, t in enumerate(tensors):
        buckets.setdefault((t.device, t.dtype), []).append(i)
    return buckets


def global_norm(tensors: Iterable[Tensor], norm_type: float = 2.0) -> Tensor:
    """The norm of all ``tensors`` viewed as one vector, as a 0-dim tensor on the first tensor's device.

    The same computation as ``torch.nn.utils.clip_grad_norm_`` (per-tensor ``_foreach_norm`` per device and dtype,
    then the norm of the stacked norms), so its value equals that function's return value for the same gradients:
    the telemetry's ``grad_norm`` means what Ultralytics' clip threshold is compared against. Empty input: 0.
    """
    tensors = list(tensors)
    if not tensors:
        return torch.tensor(0.0)
    first = tensors[0].device
    norms: list[Tensor] = []
    for idx in _by_device_and_dtype(tensors).values():
        norms.extend(torch._foreach_norm([tensors[i] for i in idx], norm_type))
    return torch.linalg.vector_norm(torch.stack([n.to(first) for n in norms]), norm_type)


@dataclass
class GradRead:
    """One read of the gradients, shared by the clip and the recorder (issue 15: the gradients are read once).

    ``params``: the parameters whose ``grad`` is not None, in the order given (the clip's order);
    ``norms``: their pre-clip per-tensor 2-norms, 1-D float32, in ``params`` order;
    ``total``: the pre-clip global norm, exactly ``clip_grad_norm_``'s return value (its dtype and device);
    ``coef``: the clip coefficient ``min(max_norm / (total + 1e-6), 1)`` applied by :func:`clip_read_`, else None.
    """

    params: list[Tensor]
    norms: Tensor
    total: Tensor
    coef: Tensor | None = None


@torch.no_grad()
def read_grads(parameters: Iterable[Tensor], foreach: bool | None = None) -> GradRead:
    """Per-tensor and total gradient norms, computed as ``torch.nn.utils.clip_grad_norm_`` computes its total.

    The same steps as torch's ``_get_total_norm``: grads bucketed by (device, dtype) with torch's own helper,
    ``_foreach_norm`` per bucket (or one ``vector_norm`` per tensor where foreach is unsupported), the norms
    stacked in bucket order, then the norm of that stack. So ``total`` is the same number, bit for bit, and the
    clip can use it (:func:`clip_read_`) instead of reading the gradients a second time.
    """
    params = [p for p in parameters if p.grad is not None]
    grads = [p.grad for p in params]
    if not grads:
        return GradRead(params, torch.zeros(0), torch.tensor(0.0))
    buckets = _group_tensors_by_device_and_dtype([grads], with_indices=True)
    norms: list[Tensor] = []
    order: list[int] = []
    for (device, _), ([bucket], idx) in buckets.items():
        if (foreach is None and _has_foreach_support(bucket, device)) or (
            foreach and _device_has_foreach_support(device)
        ):
            norms.extend(torch._foreach_norm(bucket, 2.0))
        elif foreach:
            raise RuntimeError(f"foreach=True was passed, but can't use the foreach API on {device.type} tensors")
        else:
            norms.extend(torch.linalg.vector_norm(g, 2.0) for g in bucket)
        order.extend(idx)
    if len(buckets) > 1:  # torch moves every norm to the first device; one bucket is there already (saves 256 calls)
        norms = [n.to(grads[0].device) for n in norms]
    stacked = torch.stack(norms)
    total = torch.linalg.vector_norm(stacked, 2.0)
    per_tensor = stacked.float()
    if len(buckets) > 1 and order != list(range(len(order))):  # mixed dtypes/devices: back to the params' order
        per_tensor = per_tensor[torch.tensor(order).argsort().to(per_tensor.device)]
    return GradRead(params, per_tensor, total)


@torch.no_grad()
def clip_read_(read: GradRead, max_norm: float, foreach: bool | None = None) -> GradRead:
    """Clip the read gradients in place with the read's total: what ``clip_grad_norm_`` does after its read.

    ``torch.nn.utils.clip_grads_with_norm_`` multiplies every gradient by ``clamp(max_norm / (total + 1e-6),
    max=1)``; the same coefficient is computed here with the same ops for the record (no second read).
    """
    torch.nn.utils.clip_grads_with_norm_(read.params, max_norm, read.total, foreach=foreach)
    read.coef = torch.clamp(float(max_norm) / (read.total + CLIP_EPS), max=1.0)
    return read


def tensor_norms(tensors: Sequence[Tensor], norm_type: float = 2.0) -> Tensor:
    """1-D float32 tensor of the norm of each tensor, in input order (one foreach call per device and dtype).

    All tensors must be on one device. Empty tensors have norm 0.
    """
    if not tensors:
        return torch.zeros(0)
    # torch's C++ bucketing: it runs at every full-level step over hundreds of tensors (a Python loop costs more)
    buckets = _group_tensors_by_device_and_dtype([list(tensors)], with_indices=True)
    if len(buckets) == 1:
        return torch.stack(torch._foreach_norm(list(tensors), norm_type)).float()
    out: list[Tensor | None] = [None] * len(tensors)
    for [bucket], idx in buckets.values():
        for i, n in zip(idx, torch._foreach_norm(bucket, norm_type)):
            out[i] = n.float()
    return torch.stack(out)  # type: ignore[arg-type]


def segment_index(sizes: Sequence[int], device: torch.device | str | None = None) -> Tensor:
    """Segment id of each element for consecutive segments of ``sizes`` (e.g. [2, 0, 1] -> [0, 0, 2]).

    Build it once (it copies from the host) and pass it to :func:`segment_norms` at every step.
    """
    ids = [seg for seg, n in enumerate(sizes) for _ in range(n)]
    return torch.tensor(ids, dtype=torch.long, device=device)


def segment_norms(norms: Tensor, index: Tensor, n_segments: int) -> Tensor:
    """2-norm of each segment of per-tensor ``norms``: ``sqrt(sum of squares)`` per segment id in ``index``.

    ``n_segments`` fixes the output length, so segments with no tensor get 0 (an empty parameter group).
    """
    sq = torch.zeros(n_segments, dtype=norms.dtype, device=norms.device)
    return sq.index_add_(0, index, norms.square()).sqrt_()


def slice_norms(flat: Tensor, sizes: Sequence[int]) -> Tensor:
    """1-D float32 tensor: the 2-norm of each consecutive slice of the 1-D tensor ``flat`` (``sum(sizes)`` long).

    For tensors that live in one flat buffer (the recorder's parameter snapshot) this is cheaper than per-tensor
    norms: a few large contiguous reductions instead of hundreds of small ones. Empty slices give 0.
    """
    return torch.stack([torch.linalg.vector_norm(s, dtype=torch.float32) for s in flat.split(list(sizes))])


def group_norms(groups: Sequence[Sequence[Tensor]], norm_type: float = 2.0, index: Tensor | None = None) -> Tensor:
    """1-D float32 tensor: the 2-norm of each group of tensors (0 for an empty group).

    One foreach pass over all tensors of all groups, then a segment sum. ``index`` is
    ``segment_index([len(g) for g in groups], device)``; pass it when calling at every step so the index is not
    rebuilt (and copied from the host) each time. Only ``norm_type=2`` is supported (segments sum squares).
    """
    if norm_type != 2.0:
        raise ValueError(f"group_norms supports the 2-norm only, got norm_type={norm_type}")
    flat = [t for g in groups for t in g]
    if not flat:
        return torch.zeros(len(groups))
    norms = tensor_norms(flat)
    if index is None:
        index = segment_index([len(g) for g in groups], norms.device)
    return segment_norms(norms, index, len(groups))


def layer_keys(named_params: Iterable[tuple[str, Tensor]] | Iterable[str], depth: int = 1) -> dict[str, str]:
    """Map each parameter name to the key of the module ("layer") it is reported under.

    YOLO parameters are named ``model.<index>.<submodule>...<leaf>``; ``depth`` counts the components kept after
    ``model``: depth 1 -> ``'model.23'`` (one row of the YAML), depth 2 -> ``'model.23.cv3'``. Names of other
    models keep ``depth`` components of their module path. The leaf (``weight``, ``bias``) is never part of a key;
    a parameter owned by the root module maps to ``'(root)'``. Accepts ``(name, param)`` pairs or names.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    out: dict[str, str] = {}
    for item in named_params:
        name = item if isinstance(item, str) else item[0]
        module = name.split(".")[:-1]
        keep = depth + 1 if len(module) > 1 and module[0] == "model" and module[1].isdigit() else depth
        out[name] = ".".join(module[:keep]) or "(root)"
    return out


def layer_norms(
    named_tensors: Iterable[tuple[str, Tensor]] | Mapping[str, Tensor], depth: int = 1
) -> tuple[list[str], Tensor]:
    """Per-layer 2-norms of named tensors (e.g. ``(name, param.grad)``): layer keys in first-seen order, norms.

    The keys come from :func:`layer_keys`. Convenience for one-off use; the recorder precomputes the grouping.
    """
    pairs = list(named_tensors.items() if isinstance(named_tensors, Mapping) else named_tensors)
    keys = layer_keys([n for n, _ in pairs], depth)
    order: dict[str, list[Tensor]] = {}
    for name, t in pairs:
        order.setdefault(keys[name], []).append(t)
    return list(order), group_norms(list(order.values()))


def update_norms(before: Sequence[Sequence[Tensor]], after: Sequence[Sequence[Tensor]]) -> Tensor:
    """Per-group ``||after - before||``: the size of the step the optimizer took on each group.

    Allocates the differences; the recorder instead subtracts in place into a preallocated snapshot.
    """
    diffs = []
    for gb, ga in zip(before, after, strict=True):
        diffs.append(torch._foreach_sub(list(ga), list(gb)) if len(ga) else [])
    return group_norms(diffs)


def ratio(a: Tensor, b: Tensor, eps: float = 1e-12) -> Tensor:
    """``a / max(b, eps)`` elementwise: e.g. update norm over parameter norm, 0 where both are 0."""
    return a / torch.clamp(b, min=eps)

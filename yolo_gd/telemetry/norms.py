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

import torch
from torch import Tensor

__all__ = [
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


def tensor_norms(tensors: Sequence[Tensor], norm_type: float = 2.0) -> Tensor:
    """1-D float32 tensor of the norm of each tensor, in input order (one foreach call per device and dtype).

    All tensors must be on one device. Empty tensors have norm 0.
    """
    if not tensors:
        return torch.zeros(0)
    buckets = _by_device_and_dtype(tensors)
    if len(buckets) == 1:
        return torch.stack(torch._foreach_norm(list(tensors), norm_type)).float()
    out: list[Tensor | None] = [None] * len(tensors)
    for idx in buckets.values():
        for i, n in zip(idx, torch._foreach_norm([tensors[i] for i in idx], norm_type)):
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

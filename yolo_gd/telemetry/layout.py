"""The recorder's row layout, fixed at the first step: columns, device buffers, index tensors (no per-step work).

Built once from the first step's optimizer, model and loss dict (:meth:`Layout.build`); rebuilt only when the
optimizer is replaced. Everything that allocates device memory or copies from the host to the device happens
here, so the per-step code (:mod:`yolo_gd.telemetry.step_values`) only launches kernels into what is allocated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from yolo_gd.telemetry.norms import layer_keys, segment_index

HOST_FIXED = ("step", "epoch", "batch", "batch_in_epoch", "images_seen", "time", "attempt", "optimizer", "clip")
# full level: what the noise-scale estimate needs besides grad_norm (telemetry/noise_scale.py)
HOST_NOISE = ("batch_size", "accumulate")
DEVICE_HEAD = ("loss_backprop",)
# the SAM family (optimizer=sam|asam|gsam): what the first pass measured (inject/sam.py)
DEVICE_SAM = ("sam_grad_norm_first", "sam_perturbation_norm")
DEVICE_FIXED = ("loss_sum", "grad_norm", "clipped", "clip_coef", "amp_scale", "skipped", "nonfinite",
                "nonfinite_count")


def unwrap(model):
    """The bare model under DDP / torch.compile wrappers (Ultralytics' own helper, imported only when needed)."""
    from ultralytics.utils.torch_utils import unwrap_model

    return unwrap_model(model)


def group_names(groups: list[dict]) -> list[str]:
    """Column-safe, unique names: the group's ``name``, else its Ultralytics ``param_group`` tag, else group<i>."""
    names: list[str] = []
    for i, g in enumerate(groups):
        name = str(g.get("name") or g.get("param_group") or f"group{i}").replace("/", "_")
        names.append(name if name not in names else f"{name}_{i}")
    return names


def momentum(group: dict) -> Any:
    """Momentum (SGD, RMSprop) or beta1 (Adam family) of a param group, NaN when it has neither."""
    if "betas" in group:
        return group["betas"][0]
    return group.get("momentum", math.nan)


def keep(value: Any) -> Any:
    """A group hyperparameter as it is now. Tensor LRs/betas (rare: ``lr=torch.tensor(...)``, capturable
    optimizers) are cloned on their device, not read (that would sync); :func:`host_number` reads them at flush."""
    return value.detach().clone() if isinstance(value, Tensor) else value


def host_number(value: Any) -> float:
    return float(value) if isinstance(value, Tensor) else value


def loss_names(trainer) -> list[str]:
    """Names of the loss parts: the keys of a dict ``loss_items``, else ``loss_names``, else part<i>."""
    items = getattr(trainer, "loss_items", None)
    if isinstance(items, dict):
        return [str(k) for k in items]
    if isinstance(items, Tensor):
        names = list(getattr(trainer, "loss_names", ()) or [])
        return names if len(names) == items.numel() else [f"part{i}" for i in range(items.numel())]
    return []


@dataclass
class Layout:
    """Columns and device state of one optimizer's rows (see the module docstring)."""

    optimizer_id: int
    optimizer_name: str
    group_sizes: list[int]
    group_names: list[str]
    params: list[Tensor]
    device: torch.device
    homogeneous: bool
    group_index: Tensor
    loss_names: list[str]
    full: bool
    layer_names: list[str] = field(default_factory=list)
    layer_index: Tensor | None = None
    host_columns: list[str] = field(default_factory=list)
    device_columns: list[str] = field(default_factory=list)
    n_before: int = 0  # device columns written by before_step (the rest by after_step)
    flat: Tensor | None = None  # full: one persistent flat copy of the parameters
    snapshot: list[Tensor] = field(default_factory=list)
    group_numels: list[int] = field(default_factory=list)
    read_ids: tuple = ()  # the parameters of the last GradRead mapped (see read_index)
    read_index: Tensor | None = None
    read_padded: bool = False  # read_index points one past the read's norms (see index_of)
    sam: bool = False  # a SAM-family run: the DEVICE_SAM columns follow the group norms

    @property
    def columns(self) -> list[str]:
        return self.host_columns + self.device_columns

    @property
    def G(self) -> int:
        return len(self.group_names)

    @classmethod
    def build(cls, trainer, level: str, layer_depth: int) -> Layout:
        optimizer = trainer.optimizer
        groups = optimizer.param_groups
        params = [p for g in groups for p in g["params"]]
        if not params:
            raise ValueError("the optimizer has no parameters: nothing to record")
        device = params[0].device
        sizes = [len(g["params"]) for g in groups]
        lay = cls(id(optimizer), type(optimizer).__name__, sizes, group_names(groups), params, device,
                  len({(p.dtype, p.device) for p in params}) == 1,
                  segment_index(sizes, device),  # the only host->device copy: once
                  loss_names(trainer), level == "full")
        lay.sam = getattr(getattr(trainer, "run", None), "sam", None) is not None
        lay._columns()
        if lay.full:
            lay._layers(trainer, layer_depth)
            lay._snapshot(groups)
        return lay

    def _columns(self) -> None:
        gn = self.group_names
        dev = [*DEVICE_HEAD, *(f"loss/{n}" for n in self.loss_names), *DEVICE_FIXED, *(f"grad_norm/{g}" for g in gn)]
        if self.sam:
            dev += DEVICE_SAM
        if self.full:
            dev += [f"param_norm/{g}" for g in gn]
            dev += ["grad_sq_first"]
        self.device_columns = dev  # layer columns are appended by _layers
        self.host_columns = [*HOST_FIXED, *(HOST_NOISE if self.full else ()), *(f"lr/{g}" for g in gn),
                             *(f"momentum/{g}" for g in gn)]
        self.n_before = len(dev)

    def _layers(self, trainer, depth: int) -> None:
        names = {id(p): n for n, p in unwrap(trainer.model).named_parameters()}
        keys_of = layer_keys([names.get(id(p), f"unnamed.{i}.p") for i, p in enumerate(self.params)], depth)
        per_param = list(keys_of.values())
        self.layer_names = list(dict.fromkeys(per_param))
        pos = {k: i for i, k in enumerate(self.layer_names)}
        self.layer_index = torch.tensor([pos[k] for k in per_param], dtype=torch.long, device=self.device)
        self.device_columns += [f"layer_grad_norm/{k}" for k in self.layer_names]
        self.n_before = len(self.device_columns)
        self.device_columns += [f"update_norm/{g}" for g in self.group_names]
        self.device_columns += [f"update_ratio/{g}" for g in self.group_names]

    def _snapshot(self, groups: list[dict]) -> None:
        # One persistent copy of the parameters (full level only: it costs one model's worth of memory and, per
        # step, a copy + an in-place subtract + two reductions): before_step copies into it, after_step subtracts
        # in place, so the update norm allocates nothing per step. It is ONE flat buffer (groups are consecutive
        # slices), so per-group parameter and update norms are a few large contiguous reductions instead of
        # hundreds of small ones (measured ~2x cheaper on CPU).
        dtype = self.params[0].dtype
        for p in self.params[1:]:
            dtype = torch.promote_types(dtype, p.dtype)
        numels = [p.numel() for p in self.params]
        self.flat = torch.empty(sum(numels), dtype=dtype, device=self.device)
        self.snapshot = [v.view(p.shape) for v, p in zip(self.flat.split(numels), self.params)]
        self.group_numels = [sum(p.numel() for p in g["params"]) for g in groups]

    def index_of(self, read_params: list[Tensor]) -> tuple[Tensor, bool]:
        """Where each recorded parameter's norm sits in a :class:`GradRead`'s ``norms``, and whether the index
        points past them (a recorded parameter without a grad: the caller appends a 0 there).

        The read follows the clip's order (``model.parameters()``), the rows the optimizer's groups; the index is
        built on the host once and reused while the read's parameters stay the same objects (checked by id).
        """
        ids = tuple(map(id, read_params))
        if ids != self.read_ids or self.read_index is None:
            pos = {i: k for k, i in enumerate(ids)}
            at = [pos.get(id(p), len(ids)) for p in self.params]
            self.read_index = torch.tensor(at, dtype=torch.long, device=self.device)
            self.read_padded = len(ids) in at
            self.read_ids = ids
        return self.read_index, self.read_padded

"""Construct the optimizer an :class:`~yolo_gd.optim.optim_info.OptimInfo` describes over parameter groups.

Checks every hyperparameter against the constructor's signature (a :class:`UserError` names the ones it takes),
checks learning rates, and turns on ``fused=True`` on CUDA where the record says torch offers it. Faithfulness:
``sgd`` and ``adamw`` built here with Ultralytics' hyperparameters and groups step bit-identically to the
optimizers ``BaseTrainer.build_optimizer`` constructs (same class, same constructor arguments; on CPU nothing is
added, so torch picks the same for-loop/foreach implementation). Pure module ("floor 1").
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from yolo_gd.errors import UserError
from yolo_gd.optim.optim_info import OptimInfo, is_optimizer_class, signature_params

__all__ = ["accepted_hparams", "build_optimizer", "refuse_hparams"]


def accepted_hparams(info: OptimInfo) -> tuple[str, ...] | None:
    """The hyperparameter names the optimizer's constructor takes (``None``: it takes any, via ``**kwargs``)."""
    sig = signature_params(info.load())
    if sig is None or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values()):
        return None
    return tuple(sig)


def refuse_hparams(info: OptimInfo, keys: Iterable[str]) -> None:
    """A :class:`UserError` for the first key the record refuses (timm's ``layer_decay``), naming the alternative."""
    for key in keys:
        if key in info.refused_hparams:
            raise UserError(f"optimizer '{info.name}' does not take '{key}' from yolo_gd: {info.refused_hparams[key]}")


def build_optimizer(info: OptimInfo, param_groups: Iterable, *, device_type: Any = "cpu", **hparams: Any):
    """Construct the optimizer ``info`` describes over ``param_groups``.

    ``hparams`` win over ``info.defaults``; keys inside a group dict (``lr``, ``weight_decay``, ...) win over both, as
    in torch. Every hyperparameter must be one the constructor takes (a :class:`UserError` lists those it does), and
    ``lr`` must be > 0. On CUDA, ``fused=True`` is added where ``info.fused_on_cuda`` (unless ``fused``, ``foreach``
    or ``differentiable`` is given); elsewhere nothing is added, so torch's own foreach/for-loop choice stands and
    ``sgd``/``adamw`` step bit-identically to Ultralytics' own construction. Extra group keys (``param_group``,
    ``initial_lr``, ``name``, ``param_names``) are kept. The caller's group dicts are not modified.

    For a ``param_groups -> Optimizer`` callable, a hyperparameter is passed as a keyword only if the callable takes
    it; ``lr`` it does not take goes into every group that has none.
    """
    obj = info.load()
    is_class = is_optimizer_class(obj)
    if not is_class and not callable(obj):
        raise UserError(f"optimizer '{info.name}' loads {obj!r}, which is neither an Optimizer class nor callable")
    groups = _copy_groups(param_groups)
    refuse_hparams(info, hparams)
    kwargs = _merged_hparams(info, hparams, groups)

    sig = signature_params(obj)
    if sig is None:  # unreadable signature: trust a class with everything, a callable with the groups only
        takes_any, accepted = is_class, {}
    else:
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values())
        accepted = sig
    if not is_class and "lr" in kwargs and "lr" not in accepted and not takes_any:
        lr = kwargs.pop("lr")
        groups = [g if "lr" in g else dict(g, lr=lr) for g in groups]
    if not takes_any:
        for key in kwargs:
            if key not in accepted:
                raise UserError(_bad_hparam_message(info, key, sig))
    if _use_fused(info, device_type, accepted, kwargs):
        # fused=True must go to the constructor: that is where torch registers _step_supports_amp_scaling, which lets
        # GradScaler hand found_inf to the kernel instead of syncing with the host (as Ultralytics does for Adam(W))
        kwargs["fused"] = True
    if is_class:
        return _construct_class(info, obj, groups, kwargs, accepted)
    return _construct_callable(info, obj, groups, kwargs)


def _merged_hparams(info: OptimInfo, hparams: Mapping[str, Any], groups: list[dict]) -> dict[str, Any]:
    """``info.defaults`` overridden by ``hparams``, with YAML lists made tuples and every learning rate checked."""
    kwargs = {**info.defaults, **hparams}
    if isinstance(kwargs.get("betas"), list):  # YAML gives lists; keep the tuple torch documents
        kwargs["betas"] = tuple(kwargs["betas"])
    if "lr" in kwargs:
        _check_lr(kwargs["lr"], f"optimizer '{info.name}': lr")
    for i, g in enumerate(groups):
        if "lr" in g:
            _check_lr(g["lr"], f"optimizer '{info.name}': param group {i} ('{g.get('name', i)}') lr")
    return kwargs


def _use_fused(info: OptimInfo, device_type: Any, accepted: Mapping[str, Any], kwargs: Mapping[str, Any]) -> bool:
    return (
        _device_type(device_type) == "cuda"
        and info.fused_on_cuda
        and "fused" in accepted
        and not {"fused", "foreach"} & kwargs.keys()
        and not kwargs.get("differentiable")
    )


def _construct_class(info: OptimInfo, cls: type, groups: list[dict], kwargs: dict, accepted: Mapping) -> Any:
    lr_param = accepted.get("lr")
    if (
        lr_param is not None
        and lr_param.default is inspect.Parameter.empty
        and "lr" not in kwargs
        and not all("lr" in g for g in groups)
    ):
        raise UserError(f"optimizer '{info.name}' has no default learning rate: pass lr=...")
    return cls(groups, **kwargs)


def _construct_callable(info: OptimInfo, fn: Any, groups: list[dict], kwargs: dict) -> torch.optim.Optimizer:
    optimizer = fn(groups, **kwargs)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise UserError(
            f"optimizer callable '{info.name}' returned {type(optimizer).__name__}, not a torch.optim.Optimizer: "
            "it must build and return the optimizer over the param groups it is given"
        )
    return optimizer


def _check_lr(value: Any, where: str) -> None:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise UserError(f"{where} must be a number > 0, not a tensor of shape {tuple(value.shape)}")
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{where} must be a number > 0, not {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise UserError(f"{where} must be > 0 and finite, got {value!r}: set a positive learning rate")


def _copy_groups(param_groups: Iterable) -> list[dict]:
    """Shallow copies as a list of group dicts.

    Copies because torch fills defaults into the group dicts it is given, and the caller's must stay clean; a plain
    iterable of tensors becomes one group, which is what torch would make of it.
    """
    if isinstance(param_groups, torch.Tensor):
        param_groups = [param_groups]
    items = list(param_groups)
    if items and all(isinstance(g, Mapping) for g in items):
        groups = [dict(g, params=list(g["params"])) for g in items]
    elif any(isinstance(g, Mapping) for g in items):
        raise UserError("param_groups must be all dicts or all tensors, not a mix")
    else:
        groups = [{"params": items}]
    if not any(g["params"] for g in groups):
        raise UserError("the optimizer got no parameters: is every parameter frozen (requires_grad=False)?")
    return groups


def _device_type(device: Any) -> str:
    return str(getattr(device, "type", device)).split(":")[0].lower()


def _bad_hparam_message(info: OptimInfo, key: str, sig: Mapping[str, inspect.Parameter] | None) -> str:
    takes = ", ".join(sig) if sig else "only the param groups"
    hint = ""
    if key == "momentum" and "betas" in (sig or {}):
        hint = "; it is Adam-style: beta1 in betas=(beta1, beta2) plays momentum's role"
    elif key == "betas" and "momentum" in (sig or {}):
        hint = "; it is SGD-style: use momentum=... instead of betas"
    return f"optimizer '{info.name}' does not take '{key}' (it takes: {takes}){hint}: remove '{key}'"

"""Sharpness-aware minimization: SAM, ASAM and GSAM as tensor math on lists of parameters and gradients (pure).

SAM (Foret et al. 2021) steps with the gradient taken at the worst point within a radius ``rho`` of the weights:
``e = rho * g / ||g||``, then the base optimizer steps from ``w`` with the gradient at ``w + e``. ASAM (Kwon et al.
2021, ``adaptive``) measures the radius relative to each weight: ``e = rho * w^2 g / ||w g||``. GSAM (Zhuang et al.
2022) also removes part of the original gradient's component orthogonal to the perturbed one,
``g <- g_p - alpha * (g_0 - (g_0.g_p / |g_p|^2) g_p)``, and scales ``rho`` with the learning rate.

The formulas are those of ``pytorch_optimizer`` 4.x (``SAM``, ``GSAM``, epsilon 1e-12), so its optimizers serve as
the reference in the tests. All of it is scale-invariant in the gradients (a GradScaler's loss scale cancels), so
the two-pass step (``yolo_gd/inject/sam.py``) can apply it to scaled gradients and never read the scale.
Nothing here syncs with the host: norms stay on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from yolo_gd.errors import UserError

__all__ = ["SAM_FAMILY", "SamRule", "gsam_direction_", "perturbation", "sam_rule"]

SAM_FAMILY = ("sam", "asam", "gsam")
# ASAM's radius is relative to the weights, so its usual rho is 10x SAM's (Kwon et al. 2021 use 0.5 with SGD).
DEFAULT_RHO = {"sam": 0.05, "asam": 0.5, "gsam": 0.05}
DEFAULT_GSAM_ALPHA = 0.4  # pytorch_optimizer's GSAM default
EPS = 1e-12


@dataclass(frozen=True)
class SamRule:
    """One SAM-family optimizer: ``kind`` (sam, asam, gsam), radius ``rho`` and GSAM's ``alpha``."""

    kind: str
    rho: float
    alpha: float = 0.0

    @property
    def adaptive(self) -> bool:
        return self.kind == "asam"

    def rho_at(self, lr_multiplier: float) -> float:
        """GSAM ties the radius to the LR (rho_t = rho * lr_t / lr_max, rho_min 0); SAM and ASAM keep it fixed."""
        return self.rho * lr_multiplier if self.kind == "gsam" else self.rho

    def plain(self) -> dict:
        return {"kind": self.kind, "rho": self.rho, "alpha": self.alpha}


def sam_rule(kind: str | None, rho: float | None = None, alpha: float | None = None) -> SamRule | None:
    """The rule for ``optimizer=sam|asam|gsam`` (None for any other optimizer)."""
    if kind is None:
        return None
    kind = kind.lower()
    if kind not in SAM_FAMILY:
        raise UserError(f"unknown SAM variant '{kind}': use one of {', '.join(SAM_FAMILY)}")
    if alpha is not None and kind != "gsam":
        raise UserError(f"sam_alpha is GSAM's (optimizer=gsam), not {kind}'s: remove sam_alpha=, or use gsam")
    return SamRule(kind, DEFAULT_RHO[kind] if rho is None else float(rho),
                   (DEFAULT_GSAM_ALPHA if alpha is None else float(alpha)) if kind == "gsam" else 0.0)


@torch.no_grad()
def perturbation(params: list[Tensor], grads: list[Tensor], rule: SamRule, rho: float) -> tuple[list[Tensor], Tensor]:
    """``(e, ||g~||)``: the per-tensor perturbation and the norm it was scaled by (``g`` for SAM, ``|w| g`` for ASAM).

    Non-finite gradients give a non-finite norm and perturbation; the caller skips such a step.
    """
    weighted = torch._foreach_mul(grads, torch._foreach_abs(params)) if rule.adaptive else grads
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(weighted)).float())
    scale = rho / (norm + EPS)
    if rule.adaptive:
        e = torch._foreach_mul(torch._foreach_mul(params, params), grads)
    else:
        e = [g.clone() for g in grads]
    torch._foreach_mul_(e, scale.to(grads[0].dtype))
    return e, norm


@torch.no_grad()
def gsam_direction_(grads: list[Tensor], first: list[Tensor], alpha: float) -> None:
    """GSAM in place on the perturbed gradients ``grads``: subtract ``alpha`` x the part of the first pass's
    gradients ``first`` orthogonal to them (pytorch_optimizer's ``gradient_decompose``)."""
    inner = torch.stack([torch.sum(a * b) for a, b in zip(first, grads)]).sum()
    new_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    old_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(first)))
    cosine = inner / (new_norm * old_norm + EPS)
    scale = cosine * old_norm / (new_norm + EPS)
    vertical = torch._foreach_mul(grads, -scale)
    torch._foreach_add_(vertical, first)
    torch._foreach_add_(grads, vertical, alpha=-alpha)

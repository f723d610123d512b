"""The SAM family's second forward/backward inside Ultralytics' loop (``optimizer=sam|asam|gsam base=...``).

Ultralytics runs one forward/backward per batch, then calls ``optimizer_step`` (the owned step). For a SAM-family
optimizer the owned step first calls :func:`second_pass`, which

1. takes the first pass's gradients (the host's backward) and perturbs the trainable weights by
   ``e`` (``optim/sam.py``), after copying them and the BatchNorm running statistics;
2. runs the host's forward and loss again on the same preprocessed batch (captured from ``preprocess_batch``, so
   a multi-scale resize is the same), under the host's autocast, times the world size under DDP, and backward
   through the AMP scaler, into fresh gradients;
3. puts the weights and BatchNorm statistics back exactly (copies, not a subtraction), so the running statistics
   move once per step, as in a plain step;
4. GSAM: removes ``alpha`` x the first gradient's part orthogonal to the second;
5. when the first pass was not finite, makes the second pass's gradients infinite, so the AMP scaler skips the
   step (without AMP the step goes on as a plain one would with non-finite gradients).

The owned step then does what it does for every optimizer with the second pass's gradients: unscale (once),
norm and clip, ``scaler.step``, ``scaler.update``, ``zero_grad``, EMA update. Under DDP the first pass runs without
the gradient all-reduce (each rank perturbs by its own gradient, as Foret et al. and Composer do) and the second
pass all-reduces as usual. Cost: a second forward and backward per step (about 2x a plain step's compute), a copy
of the trainable weights, and for GSAM a copy of the first gradients. Nothing here syncs with the host.
"""

from __future__ import annotations

import functools

import torch

from yolo_gd.errors import UserError
from yolo_gd.inject.batchnorm import batchnorm_kept
from yolo_gd.inject.host import Host
from yolo_gd.inject.run import RunState
from yolo_gd.optim.progress import Progress
from yolo_gd.optim.sam import gsam_direction_, perturbation


class SharpnessAware:
    """Keeps the batch the host preprocessed (for the second pass) and the first pass free of DDP's all-reduce."""

    def on_pretrain_routine_end(self, trainer) -> None:
        host = Host(trainer)
        run = host.run
        if run.cadence.accumulate > 1:
            raise UserError(f"{run.sam.kind} needs one batch per optimizer step (it takes its second gradient on "
                            f"the step's batch): set nbs={host.batch_size} (= batch), got an accumulation of "
                            f"{run.cadence.accumulate} batches", key="nbs")
        host.wrap("preprocess_batch", functools.partial(_keep_batch, run))

    def on_train_batch_start(self, trainer) -> None:
        Host(trainer).set_grad_sync(False)  # the first pass: local gradients (a no-op without DDP)


def _keep_batch(run: RunState, batch) -> None:
    run.sam_batch = batch


def second_pass(host: Host, run: RunState, progress: Progress) -> None:
    """Steps 1-5 of the module docstring; leaves the gradients the owned step should use."""
    rule, batch = run.sam, run.sam_batch
    params = [p for p in host.model.parameters() if p.grad is not None]
    first = [p.grad for p in params]
    rho = rule.rho_at(run.plan.lr(progress, 1.0, "weight"))
    e, norm = perturbation(params, first, rule, rho)
    first_bad = ~torch.isfinite(norm)
    kept = [p.detach().clone() for p in params]
    with torch.no_grad():
        torch._foreach_add_(params, e)
    if rule.kind != "gsam":
        first = None  # not needed any more: let the memory go before the second backward
    for p in params:
        p.grad = None
    host.set_grad_sync(True)
    with batchnorm_kept(host.bare_model):
        host.scaler.scale(host.forward_loss(batch)).backward()
    with torch.no_grad():
        torch._foreach_copy_(params, kept)
    second = [p.grad for p in params]
    if first is not None:
        gsam_direction_(second, first, rule.alpha)
    second[0].add_(torch.where(first_bad, torch.inf, 0.0).to(second[0].dtype))
    run.sam_stats = (norm, torch.linalg.vector_norm(torch.stack(torch._foreach_norm(e))))
    run.sam_batch = None


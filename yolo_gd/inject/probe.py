"""A fixed probe set's loss, for the LR range test: the same images every time, no augmentation, BN left as it was.

The range test's loss on one augmented training batch jumps from batch to batch (measured on 64 generated images
at 64 px, batch 8: 0.8 to 15; bench/results/lrfind_signal_cpu.md), more than the LR moves it. The probe set is
the first ``images`` images of the train split as the validator loads them (letterboxed, no mosaic, no flips),
built once; its loss changes only when the weights do.

BatchNorm, deliberately: the loss is computed in train mode, with batch statistics, as the training loss is (from
scratch, the running statistics lag the weights by ~30 steps at Ultralytics' BN momentum 0.03, so eval mode
would score the weights with stale statistics), and the running statistics and counters are put back afterwards,
so measuring changes nothing the training sees. No gradients, no RNG draws (the host's ``preprocess_batch`` draws
for ``multi_scale``: the probe scales its images itself).
"""

from __future__ import annotations

import torch

from yolo_gd.inject.batchnorm import batchnorm_kept
from yolo_gd.inject.host import Host

__all__ = ["ProbeSet"]


class ProbeSet:
    """Built once from a host (``ProbeSet(host, images, batch)``), evaluated any number of times (:meth:`loss`)."""

    def __init__(self, host: Host, images: int, batch: int):
        self.batches = host.unaugmented_train_batches(images, batch)
        self.images = sum(int(b["img"].shape[0]) for b in self.batches)

    def loss(self, host: Host) -> float:
        """Mean over the probe images of the summed loss parts (the step table's ``loss_sum`` per image)."""
        per = self.batch_losses(host)
        return sum(n * v for n, v in per) / max(sum(n for n, _ in per), 1)

    @torch.no_grad()
    def batch_losses(self, host: Host) -> list[tuple[int, float]]:
        """``(images, mean summed loss)`` of each probe batch, in order (the first k batches are a smaller probe)."""
        model, out = host.bare_model, []
        with batchnorm_kept(model), host.autocast():
            for b in self.batches:
                _, items = model.loss(b)
                parts = items.values() if isinstance(items, dict) else [items]
                out.append((int(b["img"].shape[0]), float(sum(p.detach().float().sum() for p in parts))))
        return out

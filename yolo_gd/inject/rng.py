"""The random state that decides the next epoch's data order and augmentation, as plain data (for exact resume).

With ``workers=0`` (what Ultralytics uses on CPU) every random draw of a training epoch happens in the main process:
the shuffle order from the train loader's own ``torch.Generator`` (drawn when the epoch's first batch is asked
for), and the augmentation from Python's ``random``, NumPy's and torch's global generators. The mosaic also draws
its partner images from the dataset's ``buffer`` of recently loaded indices. So capturing these at an epoch end and
putting them back when a resumed run starts makes its next epoch's data the same as the uninterrupted run's, as
long as validation in between draws nothing from these generators (true with ``plots=False``, which the
exact-resume tests use; not checked with plots on). Uninterrupted runs are left exactly as Ultralytics runs them.

Not covered: with ``workers > 0`` the loader's worker processes keep their own generators across epochs and
prefetch the next epoch's order early; those are not restorable, and such a resume is not bit-identical. Under DDP
the sampler's order is already a function of (seed, epoch).
"""

from __future__ import annotations

import random

import numpy as np
import torch


def capture(loader_generator: torch.Generator | None, buffer: list | None) -> dict:
    """The RNG states now (tensors, lists and numbers only: weights_only-loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": _plain(random.getstate()),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": loader_generator.get_state() if loader_generator is not None else None,
        "buffer": list(buffer) if buffer is not None else None,
    }


def restore(state: dict, loader_generator: torch.Generator | None, dataset) -> None:
    """Put back what :func:`capture` took; reloads the mosaic buffer's images the way the dataset loads them.

    The loader's generator is set here and must be set again right after the loader creates its iterator (that
    draws a seed from it): see ``ResumeState`` and ``Host.after_loader_iterator``.
    """
    random.setstate(_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if loader_generator is not None and state["loader"] is not None:
        loader_generator.set_state(state["loader"])
    if dataset is not None and state["buffer"] is not None and hasattr(dataset, "buffer"):
        for i in state["buffer"]:
            if dataset.ims[i] is None:
                dataset.load_image(i)  # caches the image and appends i to the buffer, as a first load does
        dataset.buffer[:] = state["buffer"]


def draw_pending_tail(generator: torch.Generator, n: int, batch: int, drop_last: bool) -> None:
    """Advance ``generator`` as a kept loader iterator does at an epoch boundary.

    torch's ``RandomSampler`` (without replacement) draws one more ``randperm(n)`` after its last index, of which it
    yields nothing; when the epoch's last batch came out of the batch sampler before the sampler ran dry (every batch
    full, or ``drop_last``), that draw happens at the NEXT epoch's first batch, from the state captured at the epoch
    end. A fresh iterator of a resumed run would skip it; this makes the same draw.
    """
    if drop_last or n % batch == 0:
        torch.randperm(n, generator=generator)


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value

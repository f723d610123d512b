"""BatchNorm running statistics kept across an extra forward pass (SAM's second pass, the range test's probe).

A training-mode forward moves every BatchNorm's running mean, variance and batch counter. A forward that is not
a training step must not: :func:`batchnorm_kept` copies those buffers before and puts them back after, exactly
(copies, not an inverse update; also when the forward raises).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["batchnorm_kept"]


@contextmanager
def batchnorm_kept(model: torch.nn.Module) -> Iterator[None]:
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [(buffer, buffer.clone()) for m in norms for buffer in m.buffers(recurse=False)]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, copy in saved:
                buffer.copy_(copy)

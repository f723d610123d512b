"""pytorch_optimizer's optimizers by name: ``pytorch_optimizer:ranger``, ``pytorch_optimizer:adan`` (4.x).

Each name is ``pytorch_optimizer.load_optimizer(name)``'s class with its own constructor defaults, then yolo_gd's
family LR (see :mod:`~yolo_gd.optim.libraries.families`). The library's names are
``get_supported_optimizers()``. What the class needs beyond a plain step is found by construction
(:mod:`~yolo_gd.optim.libraries.capabilities`): the SAM family and AliG need a closure, AdaHessian and SophiaH
``create_graph=True``, LOMO/AdaLOMO/AdamMini take the model, Ranger21 runs its own schedule, Magma wraps another
optimizer; the schedule-free ones' ``train()``/``eval()`` are supported; the Muon family gets Muon-style groups.
"""

from __future__ import annotations

import functools

from yolo_gd.optim.libraries import library_record
from yolo_gd.optim.optim_info import OptimInfo


@functools.lru_cache(maxsize=1)
def names() -> tuple[str, ...]:
    """pytorch_optimizer's ``get_supported_optimizers()``."""
    from pytorch_optimizer import get_supported_optimizers

    return tuple(get_supported_optimizers())


def base_name(name: str) -> str:
    return name


def record(name: str) -> OptimInfo:
    from pytorch_optimizer import load_optimizer

    cls = load_optimizer(name)
    return library_record("pytorch_optimizer", name, cls, summary=f"pytorch_optimizer {cls.__name__}")

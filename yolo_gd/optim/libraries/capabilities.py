"""What a library optimizer needs from the training loop, found by construction; a refusal says why, in one line.

yolo_gd steps the optimizer the way Ultralytics does: once per optimizer step, ``step()`` without a closure, after a
plain ``loss.backward()``, over Ultralytics' three tagged groups (decay on weights only, BN and bias without) and any
group rule. An optimizer that needs more is refused with the reason and the alternative, never half-used. Two
looks, cheapest first:

1. **The class** (signature and methods): takes the model instead of param groups (LOMO, AdaLOMO, AdamMini), wraps
   another optimizer (Magma), is SAM-style (``first_step``/``second_step``), needs a closure, estimates a Hessian
   (``step(hessian=...)``, timm's ``second_order``: needs ``create_graph=True``), runs its own LR schedule
   (``num_iterations``: Ranger21), or needs a constructor argument yolo_gd cannot know.
2. **One probe step** on a tiny conv + BatchNorm model with yolo_gd's own groups (:func:`probe`): what the class does
   not declare (AliG raises for a missing closure only inside ``step``; pytorch_optimizer's Muon family wants
   ``use_muon`` on every group, which yolo_gd's Muon groups give; an optional import inside ``step``). The probe
   runs eagerly (no ``torch.compile``) with the global random state saved and restored, so it changes nothing a
   training run sees.

Train/eval modes (schedule-free) are supported: the record's ``has_train_eval_mode`` makes yolo_gd call them.
Pure module ("floor 1").
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Capabilities", "detect"]



@dataclass(frozen=True)
class Capabilities:
    """What :func:`detect` found: flags for the record and, if yolo_gd cannot use the optimizer, why."""

    refusal: str | None = None
    needs_closure: bool = False
    needs_create_graph: bool = False
    wants_model: bool = False
    own_schedule: bool = False
    has_train_eval_mode: bool = False
    muon_groups: bool = False


def detect(label: str, cls: type, make: Callable[[list[dict], bool], torch.optim.Optimizer], *,
           second_order: bool = False, lr: float = 1e-3) -> Capabilities:
    """Capabilities of optimizer ``label`` (class ``cls``); ``make(groups, muon)`` builds it as the record will.

    ``second_order``: the library says it needs a Hessian (timm's flag). ``lr`` is the probe's learning rate.
    """
    train_eval = callable(getattr(cls, "train", None)) and callable(getattr(cls, "eval", None))
    static = _from_class(label, cls, second_order)
    if static is not None:
        return Capabilities(has_train_eval_mode=train_eval, **static)
    for muon in (False, True):
        error = probe(lambda groups, m=muon: make(groups, m), lr=lr, muon=muon, train_eval=train_eval)
        if error is None:
            return Capabilities(has_train_eval_mode=train_eval, muon_groups=muon)
        if muon or "use_muon" not in str(error):
            break
    return Capabilities(has_train_eval_mode=train_eval, **_from_error(label, error))


def _from_class(label: str, cls: type, second_order: bool) -> dict | None:
    params = list(_signature(cls).values())
    first = params[0].name if params else "params"
    rest = {p.name: p for p in params[1:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    step = _signature(getattr(cls, "step", None))
    closure = step.get("closure")
    if first in {"model", "module"}:
        return {"wants_model": True, "refusal": (
            f"optimizer '{label}' takes the model ({first}=), not param groups, so Ultralytics' groups (no decay on "
            "BN and bias), groups=, lr_decay and unfreeze cannot apply: use one that takes param groups (e.g. adamw)")}
    if first == "optimizer":
        return {"refusal": (
            f"optimizer '{label}' wraps another optimizer instance (its first argument is optimizer=): build it "
            "yourself and pass a callable param_groups -> Optimizer as optimizer=")}
    if callable(getattr(cls, "first_step", None)) and callable(getattr(cls, "second_step", None)):
        return {"needs_closure": True, "refusal": (
            f"optimizer '{label}' is SAM-style (first_step/second_step: two forward-backward passes on each batch), "
            "which Ultralytics' loop does not run: use its base optimizer (e.g. sgd or adamw)")}
    if closure is not None and closure.default is inspect.Parameter.empty:
        return {"needs_closure": True, "refusal": _closure_refusal(label)}
    if second_order or "hessian" in step:
        return {"needs_create_graph": True, "refusal": (
            f"optimizer '{label}' estimates a Hessian, which needs loss.backward(create_graph=True); Ultralytics' "
            "loop calls a plain backward (and a second-order graph would double memory): use adamw or lion instead")}
    required = [n for n, p in rest.items() if p.default is inspect.Parameter.empty]
    if "num_iterations" in required:
        return {"own_schedule": True, "refusal": (
            f"optimizer '{label}' runs its own LR warmup and warm-down over num_iterations=, which would multiply "
            "the schedule yolo_gd writes into each group: use pytorch_optimizer:ranger (RAdam + Lookahead, no "
            "built-in schedule) with schedule=cosine warmup=...")}
    if required:
        return {"refusal": (
            f"optimizer '{label}' needs {', '.join(r + '=' for r in required)} at construction, which yolo_gd "
            "cannot know: pick another optimizer")}
    return None


def _closure_refusal(label: str) -> str:
    return (f"optimizer '{label}' needs a closure in step() (a function that re-evaluates the loss), but yolo_gd "
            "steps once per batch without one, as Ultralytics does: use an optimizer whose step() needs none")


def _from_error(label: str, error: BaseException) -> dict:
    text = " ".join(str(error).split()) or type(error).__name__
    if type(error).__name__ == "NoClosureError" or "closure" in text.lower():
        return {"needs_closure": True, "refusal": _closure_refusal(label)}
    if "create_graph" in text or "does not require grad and does not have a grad_fn" in text:
        return {"needs_create_graph": True, "refusal": (
            f"optimizer '{label}' differentiates the gradient again, which needs loss.backward(create_graph=True); "
            "Ultralytics' loop calls a plain backward: use adamw or lion instead")}
    if isinstance(error, ImportError):
        return {"refusal": f"optimizer '{label}' needs a package that is not installed ({text[:160]}): install it"}
    return {"refusal": (
        f"optimizer '{label}' fails one step on a tiny conv model with yolo_gd's groups ({type(error).__name__}: "
        f"{text[:160]}): pick another optimizer")}


def probe(make: Callable[[list[dict]], torch.optim.Optimizer], *, lr: float, muon: bool = False,
          train_eval: bool = False) -> BaseException | None:
    """One optimizer step on a tiny conv + BatchNorm model with yolo_gd's groups; the exception it raised, or None.

    A step that leaves a non-finite weight counts as a failure. The global random state (CPU) and the thread count
    are saved and restored, ``torch.compile`` is bypassed (eager), and warnings are silenced: the probe changes
    nothing a run sees. One thread: on tensors this small, a thread pool only adds overhead (10x on 2 busy cores).
    """
    from yolo_gd.optim.groups import build_param_groups

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings(), eager(), one_thread():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        model = probe_model()
        try:
            optimizer = make(build_param_groups(model, lr=lr, weight_decay=5e-4, muon=muon))
            if train_eval:
                optimizer.train()
            probe_loss(model).backward()
            optimizer.step()
        except Exception as e:  # any failure is the optimizer's answer: it becomes its refusal
            return e
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            return FloatingPointError("the step left non-finite weights")
    return None


def probe_model() -> nn.Module:
    """The probe's model: conv (weight + bias), BatchNorm, 1x1 conv, as small as Ultralytics' three groups allow."""
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))


def probe_loss(model: nn.Module) -> torch.Tensor:
    """A loss with a gradient on every parameter of :func:`probe_model` (inputs from the current random state)."""
    return model(torch.randn(2, 3, 6, 6)).square().mean()


@contextlib.contextmanager
def one_thread():
    """torch's intra-op threads set to 1 inside, the previous count restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def eager():
    """``torch.compile``'d functions run eagerly inside (timm's Kron compiles four on construction)."""
    set_stance = getattr(torch.compiler, "set_stance", None)
    if set_stance is None:
        yield
        return
    with set_stance("force_eager"):
        yield


def _signature(obj) -> Mapping[str, inspect.Parameter]:
    if obj is None:
        return {}
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return {}
    return dict(params)

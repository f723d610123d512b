"""The one place that touches the Ultralytics trainer: a read-only view of it, and the few writes yolo_gd makes.

Every other module of yolo_gd (the step, the recorder, resolution, the callbacks) reads the host through a
:class:`Host`; nothing else names a trainer attribute. That keeps the coupling to Ultralytics' internals (8.4.x,
``engine/trainer.py``) in one file a reviewer can check against the host's source.

Reads are properties with the host's own names (``optimizer``, ``scaler``, ``model``, ``ema``, ``loss``,
``loss_items``, ``batch_size``, ``epoch``...), so code written against the view reads like code written against
the trainer. Writes are explicit methods named for what they do (``take_over``, ``wrap``, ``hold_scheduler``...).

The args snapshot: Ultralytics' ``optimizer=auto`` rewrites ``args.lr0`` and ``args.warmup_bias_lr`` in place
when the host builds its own optimizer (trainer.py 1177-1186), which a DDP rank >= 1 does before any yolo_gd
callback runs there. So resolution never reads ``trainer.args`` directly: it reads :attr:`Host.args`, a plain
copy taken at ``on_pretrain_routine_start`` on rank 0 (before any build) and broadcast to the other ranks.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

_RUN = "_yolo_gd_run"  # the per-trainer run state (see inject/run.py): on the instance, never global
_ARGS = "_yolo_gd_args"  # the args snapshot


class Host:
    """A view of one Ultralytics trainer (cheap: make one wherever a trainer is in hand)."""

    __slots__ = ("_t",)

    def __init__(self, trainer):
        self._t = trainer

    # -- what the step and the recorder read ----------------------------------------------------------------------
    @property
    def optimizer(self):
        return self._t.optimizer

    @property
    def scaler(self):
        return self._t.scaler

    @property
    def model(self):
        """The training model as the host holds it (DDP-wrapped under DDP: clip and step see the wrapper's params)."""
        return self._t.model

    @property
    def bare_model(self):
        """The model without its DDP/compile wrapper (for names and state dicts)."""
        from ultralytics.utils.torch_utils import unwrap_model

        return unwrap_model(self._t.model)

    @property
    def ema(self):
        return self._t.ema

    @property
    def loss(self):
        return self._t.loss

    @property
    def loss_items(self):
        return self._t.loss_items

    @property
    def loss_names(self):
        return self._t.loss_names

    @property
    def batch_size(self) -> int:
        return int(self._t.batch_size)

    @property
    def epoch(self) -> int:
        return int(self._t.epoch)

    @property
    def epochs(self) -> int:
        return int(self._t.epochs)

    @property
    def start_epoch(self) -> int:
        return int(self._t.start_epoch)

    @property
    def batches_per_epoch(self) -> int:
        return len(self._t.train_loader)

    @property
    def device(self) -> str:
        """The torch device training runs on, as text (``cpu``, ``cuda:0``)."""
        return str(self._t.device)

    @property
    def device_type(self) -> str:
        return self._t.device.type

    @property
    def resume(self) -> bool:
        return bool(self._t.resume)

    @property
    def resume_path(self) -> Path | None:
        """The checkpoint being resumed (``args.resume`` after the host's ``check_resume``), else None."""
        r = self._t.args.resume
        return Path(r) if self.resume and isinstance(r, (str, Path)) else None

    @property
    def distributed(self) -> bool:
        """Training under DDP with more than one rank (Ultralytics' ``world_size``; 0 or 1 otherwise)."""
        return int(getattr(self._t, "world_size", 0) or 0) > 1

    @property
    def save_dir(self) -> Path:
        return Path(self._t.save_dir)

    @property
    def wdir(self) -> Path:
        return Path(self._t.wdir)

    @property
    def plots(self) -> bool:
        return bool(self._t.args.plots)

    @property
    def args(self) -> dict:
        """The args as they were before the host could rewrite them (see the module docstring)."""
        snap = getattr(self._t, _ARGS, None)
        return dict(snap) if snap is not None else dict(vars(self._t.args))

    @property
    def train_dataset(self):
        return self._t.train_loader.dataset

    @property
    def loader_generator(self):
        """The train loader's own generator (its shuffle order), or None."""
        return getattr(self._t.train_loader, "generator", None)

    @property
    def results_csv(self) -> Path:
        return Path(self._t.csv)

    @property
    def trainable_parameters(self) -> dict:
        """Name -> parameter of the bare model (for gradients of an accumulation window open at an epoch end)."""
        return dict(self.bare_model.named_parameters())

    def frozen_by_freeze(self) -> list[str]:
        """Names of the parameters Ultralytics' ``freeze=`` froze, in order: never its always-frozen ``.dfl`` (nor
        a teacher model's), also where a ``freeze=`` layer holds them (``freeze=[23]``: ``model.23.dfl.conv``)."""
        always = (".dfl", "teacher_model.")
        names = [n for n in getattr(self._t, "freeze_layer_names", []) if n not in always]
        return [k for k, v in self.bare_model.named_parameters()
                if not v.requires_grad and any(x in k for x in names) and not any(a in k for a in always)]

    def host_warmup_batches(self, batches_per_epoch: int) -> int:
        """The host's own warmup length rule (``nw``), even after yolo_gd replaced it on this instance."""
        return type(self._t)._get_warmup_iterations(self._t, batches_per_epoch)

    # -- the tracker runs Ultralytics' own integrations opened (utils/callbacks/mlflow.py, wb.py, comet, clearml) 
    @property
    def mlflow_run_id(self) -> str | None:
        """The MLflow run Ultralytics' integration logs this training to, or None: the integration is off
        (``yolo settings mlflow=False``), mlflow is not installed, or it failed to open a run (it then leaves
        ``_mlflow_active`` False). Valid from ``on_train_start`` on (the integration opens the run at
        ``on_pretrain_routine_end``, after yolo_gd's callbacks for that event)."""
        if not getattr(self._t, "_mlflow_active", False):
            return None
        import mlflow

        run = mlflow.active_run()
        return run.info.run_id if run is not None else None

    @property
    def wandb_run(self):
        """The W&B run Ultralytics' integration opened or joined for this training, or None: the integration is not
        registered on this trainer (``yolo settings wandb=False``, the default, or wandb missing)."""
        if not self.wandb_enabled:
            return None
        import wandb

        return wandb.run

    @property
    def wandb_enabled(self) -> bool:
        """Ultralytics' W&B integration is registered on this trainer (``yolo settings wandb=True``, wandb
        installed, not under pytest: its module refuses to load there)."""
        return self._has_integration("wb")

    @property
    def comet_experiment(self):
        """The Comet experiment Ultralytics' integration started for this training (``comet_ml.start`` at
        ``on_pretrain_routine_start``), or None: the integration is not registered (``yolo settings comet=False``,
        comet_ml missing, under pytest) or it failed to start one (no API key online)."""
        if not self._has_integration("comet"):
            return None
        import comet_ml

        return comet_ml.get_running_experiment()

    @property
    def clearml_task(self):
        """The ClearML task Ultralytics' integration opened or joined (``Task.init`` at
        ``on_pretrain_routine_start``), or None: the integration is not registered or opened none."""
        if not self._has_integration("clearml"):
            return None
        from clearml import Task

        return Task.current_task()

    @property
    def callbacks(self) -> dict[str, list]:
        """The trainer's own callback lists: a copy of the model's, then the integrations' (trainer.py 182-196)."""
        return self._t.callbacks

    def _has_integration(self, module: str) -> bool:
        name = f"ultralytics.utils.callbacks.{module}"
        return any(getattr(f, "__module__", None) == name for fs in self.callbacks.values() for f in fs)

    def unaugmented_train_batches(self, images: int, batch: int) -> list[dict]:
        """The first ``images`` images of the train split as the validator loads them (``mode='val'``: letterboxed,
        rectangular batches, no augmentation), collated in batches of ``batch``, on the device, images as floats in
        [0, 1] (the host's ``preprocess_batch`` without its ``multi_scale`` draw). The global RNGs are left as they
        were."""
        import random

        import numpy as np
        import torch

        t = self._t
        states = random.getstate(), np.random.get_state(), torch.get_rng_state()
        try:  # building a dataset draws from the global RNGs (Ultralytics' file-speed check samples files)
            dataset = t.build_dataset(t.data["train"], mode="val", batch=batch)
            n = min(int(images), len(dataset))
            out = []
            for lo in range(0, n, batch):
                b = dataset.collate_fn([dataset[i] for i in range(lo, min(lo + batch, n))])
                b = {k: v.to(t.device) if hasattr(v, "to") else v for k, v in b.items()}
                b["img"] = b["img"].float() / 255
                out.append(b)
        finally:  # ... which the training's mosaic draws from next: put them back, so the probe changes nothing
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])
        return out

    def autocast(self):
        """The host's forward autocast context (AMP on CUDA, bf16 when asked; a no-op on CPU)."""
        import torch
        from ultralytics.utils.torch_utils import autocast

        return autocast(torch.bfloat16 if self._t.args.amp == "bf16" else self._t.amp, device=self._t.device.type)

    def stop_training(self) -> None:
        """Ask the host to end training after this batch (it checks ``stop`` between batches)."""
        self._t.stop = True

    # -- per-run state ---------------------------------------------------------------------------------------------
    @property
    def run(self):
        return getattr(self._t, _RUN, None)

    @run.setter
    def run(self, value) -> None:
        setattr(self._t, _RUN, value)

    # -- the args snapshot -----------------------------------------------------------------------------------------
    def snapshot_args(self) -> None:
        """Keep a plain copy of the args now (call before the host builds an optimizer)."""
        setattr(self._t, _ARGS, dict(vars(self._t.args)))

    def share_args_snapshot(self) -> None:
        """Under DDP, every rank takes rank 0's snapshot (a collective: call it on every rank at the same point)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            if getattr(self._t, _ARGS, None) is None:
                self.snapshot_args()
            return
        box = [getattr(self._t, _ARGS, None) if dist.get_rank() == 0 else None]
        dist.broadcast_object_list(box, src=0)
        setattr(self._t, _ARGS, box[0])

    # -- the writes ------------------------------------------------------------------------------------------------
    def replace(self, method: str, fn: Callable) -> None:
        """Replace one of THIS trainer's methods (instance attribute; the class and other trainers are untouched)."""
        setattr(self._t, method, fn)

    def wrap(self, method: str, after: Callable[[Any], Any]) -> None:
        """Run ``after(result)`` after this trainer's ``method`` (e.g. NaN recovery); wrappers nest in call order."""
        setattr(self._t, method, functools.partial(_call_then, getattr(self._t, method), after))

    def after_loader_iterator(self, after: Callable[[Any], Any]) -> None:
        """Run ``after(iterator)`` whenever the train loader (re)creates its persistent iterator (once per loader).

        Creating a DataLoader iterator draws its workers' base seed from the loader's generator (torch
        ``_BaseDataLoaderIter``), which moves the state that the next shuffle is drawn from.
        """
        loader = self._t.train_loader
        if not getattr(loader, "_yolo_gd_hooked", False):
            loader._get_iterator = functools.partial(_call_then, loader._get_iterator, after)
            loader._yolo_gd_hooked = True

    @property
    def loader_has_iterator(self) -> bool:
        """Whether the train loader already holds its persistent iterator (the host makes it at first use)."""
        return getattr(self._t.train_loader, "iterator", None) is not None

    @property
    def loader_shape(self) -> tuple[int, int, bool]:
        """``(dataset length, batch size, drop_last)`` of the train loader."""
        loader = self._t.train_loader
        return len(loader.dataset), int(loader.batch_size or 1), bool(loader.drop_last)

    def use_checkpoint_paths(self, path_type: type) -> None:
        """THIS trainer's checkpoint paths (``last``, ``best``, ``wdir`` from which ``epochN.pt`` is joined, see
        trainer.py ``save_model``) become ``path_type`` (inject/checkpoints.py: atomic writes)."""
        t = self._t
        t.wdir, t.last, t.best = path_type(t.wdir), path_type(t.last), path_type(t.best)

    def set_optimizer(self, optimizer) -> None:
        self._t.optimizer = optimizer

    def set_accumulate(self, n: int) -> None:
        self._t.accumulate = n

    def hold_scheduler(self) -> None:
        """The host's per-epoch LambdaLR becomes a holder: yolo_gd writes the LR at every step, the host may not."""
        self._t.scheduler = HeldScheduler(self._t.start_epoch - 1)

    def set_grad_sync(self, enabled: bool) -> None:
        """Under DDP, whether the next forward/backward all-reduces gradients (what ``DDP.no_sync`` toggles; the
        flag is read at forward time). A no-op without DDP."""
        if hasattr(self._t.model, "require_backward_grad_sync"):
            self._t.model.require_backward_grad_sync = enabled

    def forward_loss(self, batch):
        """The host's forward and loss on a preprocessed ``batch`` (engine/trainer.py 542-552, 8.4.190): its
        autocast, its compile path, ``loss.sum()`` and, under DDP, times the world size. For a second pass."""
        t = self._t
        with self.autocast():
            if t.args.compile:
                loss, _ = self.bare_model.loss(batch, t.model(batch["img"]))
            else:
                loss, _ = t.model(batch)
            loss = loss.sum()
            return loss * t.world_size if rank() != -1 else loss

    def disable_host_warmup(self) -> None:
        """The host's warmup would overwrite LR, momentum and accumulate per batch: yolo_gd applies its own."""
        self._t._get_warmup_iterations = _no_warmup


class HeldScheduler:
    """Stands in for the host's LambdaLR: ``step()`` and a settable ``last_epoch`` (trainer.py 465, 595, 683)."""

    def __init__(self, last_epoch: int = -1):
        self.last_epoch = last_epoch

    def step(self) -> None:
        self.last_epoch += 1


def _no_warmup(num_batches: int) -> int:
    return 0


def _call_then(original: Callable, after: Callable, *args, **kwargs):
    result = original(*args, **kwargs)
    after(result)
    return result


def rank() -> int:
    """This process's DDP rank (-1 without DDP), as Ultralytics reads it."""
    from ultralytics.utils import RANK

    return RANK

"""Per-step training telemetry with no host sync on the step path.

Why this shape: reading a device value on the host (``.item()``, ``float(t)``, ``.cpu()``) makes the host wait for
the device to finish everything queued before it; one such read per step serializes a CUDA training loop. So the
recorder splits every row in two:

* values the host already knows (step counters, epoch, LR and momentum as the step plan wrote them, wall time)
  go into a host-side list, as plain Python numbers;
* values the device computes (losses, gradient/parameter/update norms, AMP scale, skip and non-finite flags)
  are written with tensor ops into a preallocated float32 device buffer, one row per optimizer step.

The only device->host copy is :meth:`StepRecorder.flush` (``buffer[:n].cpu()``: ONE sync per flush), which runs
every ``flush_every`` steps, at each epoch end and at close. Flushed rows become an append-only Parquet part
(see :mod:`yolo_gd.telemetry.sinks`), so a SIGKILL loses at most the rows since the last flush. The columns are
documented in :mod:`yolo_gd.telemetry.schema`.

The caller's protocol (``yolo_gd/inject/step.py``)::

    scaler.unscale_(optimizer); norm = clip_grad_norm_(...) or None
    recorder.before_step(trainer, progress, norm, clip)   # unscaled (possibly clipped) grads, params not stepped
    scaler.step(optimizer); scaler.update()
    recorder.after_step(trainer)                          # params stepped
    optimizer.zero_grad()

``progress`` only needs ``step``, ``batch``, ``batches_per_epoch`` and ``epoch`` (a
:class:`yolo_gd.optim.progress.Progress`), so an observe-only wiring can build it from the host's counters.
"""

from __future__ import annotations

import atexit
import functools
import math
import time
import weakref
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from yolo_gd.telemetry.norms import layer_keys, ratio, segment_index, segment_norms, slice_norms, tensor_norms
from yolo_gd.telemetry.schema import cast_steps
from yolo_gd.telemetry.sinks import (
    EPOCHS_CSV,
    STEPS_DIR,
    ParquetParts,
    TensorBoardSink,
    append_epoch,
    read_steps,
    truncate_epochs,
)

__all__ = ["StepRecorder", "LEVELS", "read_steps"]

LEVELS = ("basic", "full")
_HOST_FIXED = ("step", "epoch", "batch", "batch_in_epoch", "images_seen", "time", "attempt", "optimizer", "clip")


def _unwrap(model):
    """The bare model under DDP / torch.compile wrappers (Ultralytics' own helper, imported only when needed)."""
    from ultralytics.utils.torch_utils import unwrap_model

    return unwrap_model(model)


def _group_names(groups: list[dict]) -> list[str]:
    """Column-safe, unique names: the group's ``name``, else its Ultralytics ``param_group`` tag, else group<i>."""
    names: list[str] = []
    for i, g in enumerate(groups):
        name = str(g.get("name") or g.get("param_group") or f"group{i}").replace("/", "_")
        names.append(name if name not in names else f"{name}_{i}")
    return names


def _momentum(group: dict) -> Any:
    """Momentum (SGD, RMSprop) or beta1 (Adam family) of a param group, NaN when it has neither."""
    if "betas" in group:
        return group["betas"][0]
    return group.get("momentum", math.nan)


def _keep(value: Any) -> Any:
    """A group hyperparameter as it is now. Tensor LRs/betas (rare: ``lr=torch.tensor(...)``, capturable
    optimizers) are cloned on their device, not read (that would sync); :func:`_host_number` reads them at flush."""
    return value.detach().clone() if isinstance(value, Tensor) else value


def _host_number(value: Any) -> float:
    return float(value) if isinstance(value, Tensor) else value


class StepRecorder:
    """Records one row per optimizer step; see the module docstring for what is synced when.

    Args:
        out_dir: the run's telemetry folder (``save_dir / 'telemetry'``): ``steps/part-*.parquet``,
            ``epochs.csv`` and ``tensorboard/`` go there.
        level: ``'basic'`` (losses, global and per-group gradient norms, clipping, AMP scale, skip and non-finite
            flags: one read of the gradients per step) or ``'full'`` (adds per-group parameter norms, update norms
            and update/parameter ratios, which need a persistent parameter snapshot, and per-layer gradient
            norms). Update norms are full-only because they cost more than the 2 % budget of basic allows on
            CPU (see ``bench/recorder_micro.py``).
        flush_every: also flush every N recorded steps (0: only at epoch ends and close).
        tensorboard: write the flushed rows to TensorBoard too, when ``torch.utils.tensorboard`` imports.
        rank: the DDP rank; only rank 0 (or -1, no DDP) records, every method is a no-op elsewhere.
        layer_depth: module depth of the per-layer keys (``full``): 1 -> ``model.23``, 2 -> ``model.23.cv3``.
        capacity: initial rows of the device buffer; it doubles when full (no sync).
    """

    def __init__(
        self,
        out_dir: str | Path,
        *,
        level: str = "basic",
        flush_every: int = 0,
        tensorboard: bool = True,
        rank: int = 0,
        layer_depth: int = 1,
        capacity: int = 256,
    ):
        if level not in LEVELS:
            raise ValueError(f"telemetry level must be one of {LEVELS}, got {level!r}")
        if flush_every < 0:
            raise ValueError(f"flush_every must be >= 0, got {flush_every}")
        self.out_dir = Path(out_dir)
        self.level = level
        self.flush_every = int(flush_every)
        self.active = rank in (-1, 0)
        self.layer_depth = layer_depth
        self.capacity = max(int(capacity), 1)
        self.attempt = 0
        self.columns: list[str] = []  # host columns then device columns, fixed at the first step
        self._parts = ParquetParts(self.out_dir / STEPS_DIR)
        self._tensorboard = tensorboard and self.active and TensorBoardSink.available()
        self._tb: TensorBoardSink | None = None
        self._purge_step: int | None = None
        self._t0 = time.perf_counter()
        self._ready = False
        self._closed = False
        self._host: list[tuple] = []
        self._n = 0  # rows filled in the device buffer (== len(self._host))
        self._pending = False  # before_step recorded a row whose after_step has not run yet
        self._last_step: int | None = None
        self._attempt_marked = False  # new_attempt() was called since the last row
        self._epoch_frames: list[pd.DataFrame] = []
        # atexit holds only a weak reference: a recorder that is garbage collected is not kept alive by it
        self._atexit = functools.partial(_close_at_exit, weakref.ref(self))
        if self.active:
            atexit.register(self._atexit)

    # ------------------------------------------------------------------------------------------------- setup

    def _setup(self, trainer) -> None:
        """Fix the row layout from the first step's optimizer, model and loss dict; allocate device memory once."""
        optimizer = trainer.optimizer
        groups = optimizer.param_groups
        self._optimizer_id = id(optimizer)
        self._optimizer_name = type(optimizer).__name__  # what optimizer='auto' picked, in observe-only runs
        self._group_sizes = [len(g["params"]) for g in groups]
        self.group_names = _group_names(groups)
        self._params: list[Tensor] = [p for g in groups for p in g["params"]]
        if not self._params:
            raise ValueError("the optimizer has no parameters: nothing to record")
        device = self._params[0].device
        self._homogeneous = len({(p.dtype, p.device) for p in self._params}) == 1
        self.device = device
        G = len(groups)
        self._group_index = segment_index(self._group_sizes, device)  # the only host->device copy: once

        loss_items = getattr(trainer, "loss_items", None)
        if isinstance(loss_items, dict):
            self.loss_names = [str(k) for k in loss_items]
        elif isinstance(loss_items, Tensor):
            names = list(getattr(trainer, "loss_names", ()) or [])
            n = loss_items.numel()
            self.loss_names = names if len(names) == n else [f"part{i}" for i in range(n)]
        else:
            self.loss_names = []

        dev_cols = ["loss_backprop", *(f"loss/{n}" for n in self.loss_names), "loss_sum", "grad_norm", "clipped",
                    "clip_coef", "amp_scale", "skipped", "nonfinite", "nonfinite_count"]
        dev_cols += [f"grad_norm/{g}" for g in self.group_names]
        full = self.level == "full"
        if full:
            dev_cols += [f"param_norm/{g}" for g in self.group_names]
            names = {id(p): n for n, p in _unwrap(trainer.model).named_parameters()}
            keys_of = layer_keys([names.get(id(p), f"unnamed.{i}.p") for i, p in enumerate(self._params)],
                                 self.layer_depth)
            per_param = list(keys_of.values())
            self.layer_names = list(dict.fromkeys(per_param))
            pos = {k: i for i, k in enumerate(self.layer_names)}
            self._layer_index = torch.tensor([pos[k] for k in per_param], dtype=torch.long, device=device)
            dev_cols += [f"layer_grad_norm/{k}" for k in self.layer_names]
        else:
            self.layer_names = []
        self._n_before = len(dev_cols)
        if full:
            dev_cols += [f"update_norm/{g}" for g in self.group_names]
            dev_cols += [f"update_ratio/{g}" for g in self.group_names]
        self.device_columns = dev_cols
        self._col = {c: i for i, c in enumerate(dev_cols)}
        self.host_columns = [*_HOST_FIXED, *(f"lr/{g}" for g in self.group_names),
                             *(f"momentum/{g}" for g in self.group_names)]
        self.columns = self.host_columns + self.device_columns

        self._buf = torch.full((self.capacity, len(dev_cols)), math.nan, dtype=torch.float32, device=device)
        if full:
            # One persistent copy of the parameters (full level only: it costs one model's worth of memory and,
            # per step, a copy + an in-place subtract + two reductions): before_step copies into it, after_step
            # subtracts in place, so the update norm allocates nothing per step. It is ONE flat buffer (groups
            # are consecutive slices), so per-group parameter and update norms are a few large contiguous
            # reductions instead of hundreds of small ones (measured ~2x cheaper on CPU).
            dtype = self._params[0].dtype
            for p in self._params[1:]:
                dtype = torch.promote_types(dtype, p.dtype)
            numels = [p.numel() for p in self._params]
            self._flat = torch.empty(sum(numels), dtype=dtype, device=device)
            self._snapshot = [v.view(p.shape) for v, p in zip(self._flat.split(numels), self._params)]
            self._group_numels = [sum(p.numel() for p in g["params"]) for g in groups]
        self._no_grad = {(p.dtype, p.device): torch.zeros(0, dtype=p.dtype, device=p.device) for p in self._params}
        self._one = torch.ones((), device=device)
        self._zero = torch.zeros((), device=device)
        self._nonfinite_total = torch.zeros((), device=device)
        self._G = G
        self._ready = True

    def _grow(self) -> None:
        """Double the device buffer (rare; a device-side copy, no sync)."""
        grown = torch.full((2 * self.capacity, self._buf.shape[1]), math.nan, dtype=torch.float32, device=self.device)
        grown[: self.capacity].copy_(self._buf)
        self._buf, self.capacity = grown, 2 * self.capacity

    # ---------------------------------------------------------------------------------------------- per step

    @torch.no_grad()
    def before_step(self, trainer, progress, norm: Tensor | None, clip: float | None) -> None:
        """Record the host values and the pre-step device values of the step about to be taken. No host sync.

        ``norm``: the pre-clip global norm returned by ``clip_grad_norm_`` when the caller clipped (the grads are
        then already multiplied by ``min(clip / (norm + 1e-6), 1)``; per-group and per-layer norms are divided by
        that factor to report pre-clip values), or None when it did not clip (computed here).
        """
        if not self.active:
            return
        optimizer = trainer.optimizer
        if self._ready and (id(optimizer) != self._optimizer_id
                            or [len(g["params"]) for g in optimizer.param_groups] != self._group_sizes):
            self.flush()  # the optimizer was replaced: new layout from here on (a new part with its own columns)
            self._ready = False
        if not self._ready:
            self._setup(trainer)
        if self._pending:  # the previous row never got its after_step: leave its after-columns NaN
            self._pending = False
        if self._last_step is not None and progress.step <= self._last_step and not self._attempt_marked:
            self.attempt += 1  # training went back (NaN recovery / OOM retry): later rows supersede earlier ones
        self._attempt_marked = False
        self._last_step = progress.step
        if self._n == self.capacity:
            self._grow()
        row = self._n

        # host part: plain numbers the wrapper knows
        groups = optimizer.param_groups
        batch = progress.batch
        self._host.append((
            progress.step,
            progress.epoch,
            batch,
            batch - progress.epoch * progress.batches_per_epoch,
            (batch + 1) * int(getattr(trainer, "batch_size", 0) or 0),
            time.perf_counter() - self._t0,
            self.attempt,
            self._optimizer_name,
            math.nan if clip is None else clip,
            *(_keep(g["lr"]) for g in groups),
            *(_keep(_momentum(g)) for g in groups),
        ))

        # device part
        params = self._params
        grads = [p.grad if p.grad is not None else self._no_grad[(p.dtype, p.device)] for p in params]
        if self._homogeneous:  # the usual case: skip tensor_norms' per-tensor dtype/device bucketing
            per_tensor = torch.stack(torch._foreach_norm(grads)).float()  # one foreach pass over the gradients
        else:
            per_tensor = tensor_norms(grads)
        if norm is None:
            total = torch.linalg.vector_norm(per_tensor)  # = clip_grad_norm_'s value (no clip happened)
            coef = self._one
        else:
            total = norm.detach().to(self.device, torch.float32)
            if clip is not None:
                coef = torch.clamp(clip / (total + 1e-6), max=1.0)
                per_tensor = per_tensor / coef  # undo the clip: report pre-clip norms
            else:
                coef = self._one
        clipped = (total > clip) if clip is not None else self._zero
        nonfinite = ~torch.isfinite(total)
        self._nonfinite_total += nonfinite

        scaler = getattr(trainer, "scaler", None)
        self._skip_from_scale = False
        if scaler is not None and scaler.is_enabled() and getattr(scaler, "_scale", None) is not None:
            amp_scale = scaler._scale  # the tensor: get_scale() would sync
            found = scaler._found_inf_per_device(optimizer)  # set by unscale_: device tensors, one per device
            if found:
                skipped = torch.stack([f.to(self.device) for f in found.values()]).sum() > 0
            else:  # unscale_ not called before us: the step was skipped iff update() backs the scale off
                skipped = self._zero
                self._skip_from_scale = True
        else:
            amp_scale, skipped = self._one, self._zero

        loss = getattr(trainer, "loss", None)
        loss = loss.detach().float().sum() if isinstance(loss, Tensor) else torch.full((), math.nan, device=self.device)
        items = getattr(trainer, "loss_items", None)
        if isinstance(items, dict):
            nan = self._zero * math.nan  # a part missing from this step's dict (names are fixed at the first step)
            parts = [items[n].detach().float().reshape(()) if n in items else nan for n in self.loss_names]
            parts = torch.stack(parts) if parts else self._zero.reshape(0)
        elif isinstance(items, Tensor):
            parts = items.detach().float().reshape(-1)
        else:
            parts = self._zero.reshape(0)

        G = self._G
        group_grad = segment_norms(per_tensor, self._group_index, G)
        values = [loss.reshape(1), parts.reshape(-1), parts.sum().reshape(1), total.reshape(1),
                  clipped.reshape(1), coef.reshape(1), amp_scale.reshape(1), skipped.reshape(1),
                  nonfinite.reshape(1), self._nonfinite_total.reshape(1), group_grad]
        if self.level == "full":
            torch._foreach_copy_(self._snapshot, params)
            self._param_norms = slice_norms(self._flat, self._group_numels)  # the params before the step
            values.append(self._param_norms)
            values.append(segment_norms(per_tensor, self._layer_index, len(self.layer_names)))
        torch.cat([v.float() for v in values], out=self._buf[row, : self._n_before])
        self._n += 1
        self._pending = True

    @torch.no_grad()
    def after_step(self, trainer) -> None:
        """Record what the step changed (update norms); flush if ``flush_every`` rows are waiting. No host sync."""
        if not self.active or not self._pending:
            return
        row = self._n - 1
        if self.level == "full":
            torch._foreach_sub_(self._snapshot, self._params)  # snapshot := before - after (in place)
            update = slice_norms(self._flat, self._group_numels)
            torch.cat([update, ratio(update, self._param_norms)], out=self._buf[row, self._n_before:])
        if self._skip_from_scale:
            scaler = trainer.scaler
            col = self._col["amp_scale"]
            self._buf[row, self._col["skipped"]].copy_(scaler._scale.float() < self._buf[row, col])
        self._pending = False
        if self.flush_every and self._n >= self.flush_every:
            self.flush()

    def new_attempt(self) -> None:
        """Mark the following rows as a new attempt (for callers that know training went back).

        Training going back is also detected by itself (a step number not above the previous one); calling this
        first makes that one increment, not two.
        """
        self.attempt += 1
        self._attempt_marked = True

    # ------------------------------------------------------------------------------------------ host side

    def frame(self) -> pd.DataFrame:
        """The rows recorded since the last flush, as a typed DataFrame (ONE device->host copy: a sync)."""
        n = self._n - (1 if self._pending else 0)
        if not self.active or not self._ready or n <= 0:
            return pd.DataFrame(columns=self.columns)
        dev = self._buf[:n].cpu().numpy()  # the one sync per flush
        host = pd.DataFrame([[_host_number(v) for v in r] for r in self._host[:n]], columns=self.host_columns)
        df = pd.concat([host, pd.DataFrame(dev, columns=self.device_columns)], axis=1)
        return cast_steps(df)

    def flush(self) -> Path | None:
        """Write the complete rows since the last flush as one Parquet part (and to TensorBoard); sync once.

        A row whose ``after_step`` has not run yet stays in the buffer for the next flush.
        """
        if not self.active or not self._ready:
            return None
        df = self.frame()
        if df.empty:
            return None
        n = len(df)
        path = self._parts.append(df)
        if self._tensorboard:
            if self._tb is None:
                self._tb = TensorBoardSink(self.out_dir / "tensorboard", purge_step=self._purge_step)
            self._tb.write(df)
        # keep what the next epoch_end can summarize: frames of epochs before this one are no longer needed
        first_epoch = df["epoch"].min()
        self._epoch_frames = [f for f in self._epoch_frames if f["epoch"].max() >= first_epoch] + [df]
        if self._pending:  # keep the half-recorded row: move it to the top of the buffer
            self._buf[0].copy_(self._buf[n])
        self._host = self._host[n:]
        self._n -= n
        return path

    def epoch_end(self, trainer) -> dict | None:
        """Flush, then append this epoch's summary row to ``epochs.csv`` (Ultralytics' results.csv is untouched).

        Summarizes the rows of ``trainer.epoch`` recorded since the previous epoch end; returns the row (None when
        the epoch recorded no step).
        """
        if not self.active:
            return None
        self.flush()
        frames, self._epoch_frames = self._epoch_frames, []
        if not frames:
            return None
        df = pd.concat(frames, ignore_index=True)
        df = df[df["epoch"] == trainer.epoch]
        if df.empty:
            return None
        df = df[df["attempt"] == df["attempt"].iloc[-1]]  # the epoch as training kept it
        finite = df["grad_norm"][~df["nonfinite"]].astype("float64")
        last = df.iloc[-1]
        row = {
            "epoch": int(trainer.epoch),
            "attempt": int(last["attempt"]),
            "steps": len(df),
            "first_step": int(df["step"].iloc[0]),
            "last_step": int(last["step"]),
            "time": float(last["time"]),
            "grad_norm_mean": float(finite.mean()) if len(finite) else math.nan,
            "grad_norm_max": float(finite.max()) if len(finite) else math.nan,
            "clip_rate": float(df["clipped"].mean()),
            "skipped_steps": int(df["skipped"].sum()),
            "nonfinite_steps": int(df["nonfinite"].sum()),
            **{c: float(last[c]) for c in df.columns if c.startswith("lr/")},
            "loss_backprop_mean": float(df["loss_backprop"].astype("float64").mean()),
            **{f"{c}_mean": float(df[c].astype("float64").mean()) for c in df.columns if c.startswith("loss/")},
        }
        append_epoch(self.out_dir / EPOCHS_CSV, row)
        return row

    def truncate_after(self, step: int) -> int:
        """Resume support: drop recorded rows and epoch summaries at or after ``step`` (the checkpoint's step).

        Only the latest attempt's rows are dropped (see :meth:`ParquetParts.truncate_after`); recording continues
        with that attempt number, and TensorBoard events from ``step`` on are purged when the writer opens.
        Call before the first recorded step. Returns the attempt recording continues with.
        """
        if not self.active:
            return 0
        self.attempt = self._parts.truncate_after(step)
        truncate_epochs(self.out_dir / EPOCHS_CSV, step)
        self._purge_step = step
        return self.attempt

    def read(self, latest_only: bool = False) -> pd.DataFrame:
        """Every flushed row of this run (all parts)."""
        return read_steps(self.out_dir, latest_only=latest_only)

    def close(self) -> None:
        """Flush and release the TensorBoard writer. Idempotent; also runs at interpreter exit (atexit)."""
        if not self.active or self._closed:
            return
        self._closed = True
        try:
            self.flush()
        finally:
            if self._tb is not None:
                self._tb.close()
                self._tb = None
            atexit.unregister(self._atexit)


def _close_at_exit(ref: weakref.ref) -> None:
    """Flush a still-open recorder at interpreter exit (not on SIGKILL: rows since the last flush are lost)."""
    recorder = ref()
    if recorder is not None:
        try:
            recorder.close()
        except Exception:  # interpreter shutdown: best effort, never mask the real exit status
            pass


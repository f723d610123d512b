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

    scaler.unscale_(optimizer); read = read_grads(model.parameters()); clip_read_(read, clip)   # one read
    recorder.before_step(trainer, progress, read, clip)   # unscaled (possibly clipped) grads, params not stepped
    scaler.step(optimizer); scaler.update()
    recorder.after_step(trainer)                          # params stepped
    optimizer.zero_grad()

``read`` may also be a ``clip_grad_norm_`` return value or None (see
:func:`yolo_gd.telemetry.step_values.per_tensor_norms`). At ``full`` level the owned step also calls
:meth:`StepRecorder.first_microbatch` after a window's first micro-batch (noise scale, telemetry/noise_scale.py).

The module is split by concern: the row layout (telemetry/layout.py), the per-step device math
(telemetry/step_values.py), the epoch summary (telemetry/summary.py); this file keeps the row lifecycle.

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

import pandas as pd
import torch

from yolo_gd.telemetry.layout import Layout, host_number, keep, momentum
from yolo_gd.telemetry.norms import ratio, segment_norms, slice_norms
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
from yolo_gd.telemetry.step_values import Consts, amp_values, grad_sq, loss_values, per_tensor_norms
from yolo_gd.telemetry.summary import epoch_row

__all__ = ["StepRecorder", "LEVELS", "read_steps"]

LEVELS = ("basic", "full")


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
        self._parts = ParquetParts(self.out_dir / STEPS_DIR)
        self._tensorboard = tensorboard and self.active and TensorBoardSink.available()
        self._tb: TensorBoardSink | None = None
        self._purge_step: int | None = None
        self._t0 = time.perf_counter()
        self.wall_origin = time.time()  # wall clock at time == 0 (tracker timestamps)
        self._sinks: list = []  # extra sinks (experiment trackers), fed the same frames at each flush
        self._ready = False
        self._closed = False
        self._host: list[tuple] = []
        self._n = 0  # rows filled in the device buffer (== len(self._host))
        self._pending = False  # before_step recorded a row whose after_step has not run yet
        self._last_step: int | None = None
        self._attempt_marked = False  # new_attempt() was called since the last row
        self._epoch_frames: list[pd.DataFrame] = []
        self._lay: Layout | None = None
        self._first_sq: torch.Tensor | None = None  # full: the current window's first micro-batch read
        self._first_batch = -1  # and the global batch index it was read at
        # atexit holds only a weak reference: a recorder that is garbage collected is not kept alive by it
        self._atexit = functools.partial(_close_at_exit, weakref.ref(self))
        if self.active:
            atexit.register(self._atexit)

    # ------------------------------------------------------------------------------------------------- setup

    @property
    def columns(self) -> list[str]:
        """Host columns then device columns, fixed at the first step (empty before it)."""
        return self._lay.columns if self._lay is not None else []

    @property
    def host_columns(self) -> list[str]:
        return self._lay.host_columns

    @property
    def device_columns(self) -> list[str]:
        return self._lay.device_columns

    @property
    def group_names(self) -> list[str]:
        return self._lay.group_names

    @property
    def layer_names(self) -> list[str]:
        return self._lay.layer_names

    @property
    def loss_names(self) -> list[str]:
        return self._lay.loss_names

    @property
    def device(self) -> torch.device:
        return self._lay.device

    def _setup(self, trainer) -> None:
        """Fix the row layout from the first step's optimizer, model and loss dict; allocate device memory once."""
        lay = self._lay = Layout.build(trainer, self.level, self.layer_depth)
        self._buf = torch.full((self.capacity, len(lay.device_columns)), math.nan, dtype=torch.float32,
                               device=lay.device)
        self._c = Consts(lay.device)
        self._col = {c: i for i, c in enumerate(lay.device_columns)}
        self._nonfinite_total = torch.zeros((), device=lay.device)
        self._ready = True

    def add_sink(self, sink) -> None:
        """Also hand every flushed frame to ``sink.write(df)`` (host side, after the Parquet part is written);
        ``sink.close()`` runs at :meth:`close`. A sink must not raise (see telemetry/tracker_sinks.py)."""
        if self.active:
            self._sinks.append(sink)

    def _grow(self) -> None:
        """Double the device buffer (rare; a device-side copy, no sync)."""
        grown = torch.full((2 * self.capacity, self._buf.shape[1]), math.nan, dtype=torch.float32, device=self.device)
        grown[: self.capacity].copy_(self._buf)
        self._buf, self.capacity = grown, 2 * self.capacity

    # ---------------------------------------------------------------------------------------------- per step

    @torch.no_grad()
    def first_microbatch(self, trainer, batch: int) -> None:
        """Full level: read the gradients after an accumulation window's first micro-batch (noise scale).

        The one extra read of the gradients per window (only at ``full``); kept on the device for the window's
        step row. No host sync.
        """
        if self.active and self.level == "full":
            self._first_batch = batch
            self._first_sq = grad_sq([p for g in trainer.optimizer.param_groups for p in g["params"]],
                                     getattr(trainer, "scaler", None))

    def _begin_row(self, trainer, progress) -> int:
        """Layout check, attempt bookkeeping and buffer room for a new row; returns the row index."""
        optimizer = trainer.optimizer
        lay = self._lay
        if self._ready and (id(optimizer) != lay.optimizer_id
                            or [len(g["params"]) for g in optimizer.param_groups] != lay.group_sizes):
            self.flush()  # the optimizer was replaced: new layout from here on (a new part with its own columns)
            self._ready = False
        if not self._ready:
            self._setup(trainer)
        self._pending = False  # a previous row that never got its after_step keeps its after-columns NaN
        if self._last_step is not None and progress.step <= self._last_step and not self._attempt_marked:
            self.attempt += 1  # training went back (NaN recovery / OOM retry): later rows supersede earlier ones
        self._attempt_marked = False
        self._last_step = progress.step
        if self._n == self.capacity:
            self._grow()
        return self._n

    def _host_row(self, trainer, progress, clip: float | None) -> tuple:
        """The plain numbers the wrapper knows about this step."""
        groups = trainer.optimizer.param_groups
        batch = progress.batch
        batch_size = int(getattr(trainer, "batch_size", 0) or 0)
        noise = ()
        if self._lay.full:  # micro-batches in this window (1 when no first micro-batch was read for it)
            noise = (batch_size, batch - self._first_batch + 1 if self._first_sq is not None else 1)
        return (progress.step, progress.epoch, batch, batch - progress.epoch * progress.batches_per_epoch,
                (batch + 1) * batch_size, time.perf_counter() - self._t0, self.attempt, self._lay.optimizer_name,
                math.nan if clip is None else clip, *noise, *(keep(g["lr"]) for g in groups),
                *(keep(momentum(g)) for g in groups))

    @torch.no_grad()
    def before_step(self, trainer, progress, read, clip: float | None) -> None:
        """Record the host values and the pre-step device values of the step about to be taken. No host sync.

        ``read``: the step's :class:`~yolo_gd.telemetry.norms.GradRead` (pre-clip norms, read once with the clip),
        or the pre-clip global norm returned by ``clip_grad_norm_`` when the caller clipped itself, or None when
        nothing was read (computed here).
        """
        if not self.active:
            return
        row = self._begin_row(trainer, progress)
        lay, c = self._lay, self._c
        self._host.append(self._host_row(trainer, progress, clip))
        per_tensor, total, coef = per_tensor_norms(lay, c, read, clip)
        clipped = (total > clip) if clip is not None else c.zero
        nonfinite = torch.isnan(total - total)  # = ~isfinite (inf - inf is NaN) in 2 ops where isfinite takes 5
        self._nonfinite_total += nonfinite
        amp_scale, skipped, self._skip_from_scale = amp_values(trainer, trainer.optimizer, c, lay.device)
        loss, parts = loss_values(trainer, lay, c)
        values = [loss.reshape(1), parts, parts.sum().reshape(1), total.reshape(1), clipped.reshape(1),
                  coef.reshape(1), amp_scale.reshape(1), skipped.reshape(1), nonfinite.reshape(1),
                  self._nonfinite_total.reshape(1), segment_norms(per_tensor, lay.group_index, lay.G)]
        if lay.sam:  # the first pass's norm (unscaled here: AMP's scale cancels in the perturbation) and ||e||
            first, e = trainer.run.sam_stats
            values += [(first / amp_scale).reshape(1), e.reshape(1)]
        if lay.full:
            torch._foreach_copy_(lay.snapshot, lay.params)
            self._param_norms = slice_norms(lay.flat, lay.group_numels)  # the params before the step
            first = self._first_sq if self._first_sq is not None else c.nan
            self._first_sq = None
            values += [self._param_norms, first.to(lay.device).reshape(1),
                       segment_norms(per_tensor, lay.layer_index, len(lay.layer_names))]
        torch.cat(values, out=self._buf[row, : lay.n_before])  # cat writes the bool flags as 0/1 floats
        self._n += 1
        self._pending = True

    @torch.no_grad()
    def after_step(self, trainer) -> None:
        """Record what the step changed (update norms); flush if ``flush_every`` rows are waiting. No host sync."""
        if not self.active or not self._pending:
            return
        row, lay = self._n - 1, self._lay
        if lay.full:
            torch._foreach_sub_(lay.snapshot, lay.params)  # snapshot := before - after (in place)
            update = slice_norms(lay.flat, lay.group_numels)
            torch.cat([update, ratio(update, self._param_norms)], out=self._buf[row, lay.n_before:])
        if self._skip_from_scale:
            col = self._col["amp_scale"]
            self._buf[row, self._col["skipped"]].copy_(trainer.scaler._scale.float() < self._buf[row, col])
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
        host = pd.DataFrame([[host_number(v) for v in r] for r in self._host[:n]], columns=self.host_columns)
        df = pd.concat([host, pd.DataFrame(dev, columns=self.device_columns)], axis=1)
        return cast_steps(df)

    def flush(self) -> Path | None:
        """Write the complete rows since the last flush as one Parquet part (and to TensorBoard and the added
        sinks); sync once.

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
        for sink in self._sinks:
            sink.write(df)
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
        row = epoch_row(df, trainer.epoch)
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
            for sink in self._sinks:
                sink.close()
            atexit.unregister(self._atexit)


def _close_at_exit(ref: weakref.ref) -> None:
    """Flush a still-open recorder at interpreter exit (not on SIGKILL: rows since the last flush are lost)."""
    recorder = ref()
    if recorder is not None:
        try:
            recorder.close()
        except Exception:  # interpreter shutdown: best effort, never mask the real exit status
            pass


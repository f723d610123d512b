"""Per-step series into an experiment tracker's run (MLflow, W&B, Comet, ClearML), fed at the recorder's flushes.

Ultralytics' own integrations log once per epoch into a run they open (or join); these sinks add yolo_gd's step
table to THAT run, one batched write per flush (never per step, never a device sync: the rows are already host
numbers when a flush hands them over). Which run, and whether the user enabled the integration at all, is the
caller's business (``inject/trackers.py`` reads it through ``Host``); nothing here imports Ultralytics.

Names: every series is ``yolo_gd/<column>`` (``yolo_gd/grad_norm``, ``yolo_gd/lr/<group>``,
``yolo_gd/loss/<part>``...), so it never collides with Ultralytics' per-epoch keys (``lr/pg0``, ``train/box_loss``)
or W&B's ``lr/*`` epoch axis. The x-axis is the optimizer step (the table's ``step``); ``yolo_gd/epoch`` and
``yolo_gd/images_seen`` are logged at every step too, so a user can switch axes.

Failing soft: a tracker error (server down, run deleted, package broken) stops that sink for the rest of the run
and is reported ONCE, in one line, through ``report``; training never sees the exception.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import pandas as pd

__all__ = ["PREFIX", "STEP_AXIS", "tracker_columns", "series", "clearml_names", "MlflowSink", "WandbSink", "CometSink",
           "ClearmlSink"]

PREFIX = "yolo_gd/"
#: W&B's x-axis for the per-step series (a key of its own: W&B's internal ``_step`` counts log calls)
STEP_AXIS = "yolo_gd/step"
# Bookkeeping columns that are no series of their own (epoch and images_seen ARE logged: alternative x-axes).
_SKIP = {"step", "batch", "batch_in_epoch", "time", "attempt", "clip", "optimizer"}


def tracker_columns(df: pd.DataFrame, layers: bool = False) -> list[str]:
    """The step-table columns a tracker gets: numeric and flag columns but bookkeeping; per-layer norms only with
    ``layers`` (they are many, and live in the Parquet table)."""
    return [c for c in df.columns
            if c not in _SKIP and (layers or not c.startswith("layer_grad_norm/"))
            and (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))]


def series(df: pd.DataFrame, layers: bool = False) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(keys, steps, values)``: the tracker keys (``yolo_gd/<column>``), the optimizer step of each row and a
    float64 ``rows x keys`` array (flags as 0/1)."""
    cols = tracker_columns(df, layers)
    return [PREFIX + c for c in cols], df["step"].to_numpy(dtype="int64"), df[cols].to_numpy(dtype="float64")


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


class _SoftSink:
    """A sink that turns its first failure into one reported line and writes nothing after it.

    ``run_name``: the tracker's id of the run (shown to the user); ``layers``: also the per-layer series."""

    tracker = "tracker"

    def __init__(self, report: Callable[[str], None], run_name: str, layers: bool = False):
        self.report = report
        self.run_name = run_name
        self.layers = layers
        self.failed = False

    def write(self, df: pd.DataFrame) -> None:
        if self.failed or df.empty:
            return
        try:
            self._write(df)
        except Exception as e:  # the tracker's failure is never training's
            self._fail(e)

    def _fail(self, e: Exception) -> None:
        self.failed = True
        self.report(f"yolo_gd: {self.tracker} per-step logging stopped ({_one_line(e)}); training continues, "
                    f"the step table on disk is complete")

    def label(self, params: dict[str, str], tags: dict[str, str]) -> None:
        """Add yolo_gd's ``params`` (its options, as ``yolo_gd.<key>``) and ``tags`` (sweep labels) to the run."""
        if self.failed:
            return
        try:
            self._label({f"yolo_gd.{k}": v for k, v in params.items()}, tags)
        except Exception as e:
            self._fail(e)

    def _write(self, df: pd.DataFrame) -> None:
        raise NotImplementedError

    def _label(self, params: dict[str, str], tags: dict[str, str]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to release: the run belongs to Ultralytics' integration, which ends it."""


class MlflowSink(_SoftSink):
    """Per-step metrics into an open MLflow run (``run_id``) via ``MlflowClient.log_batch``, one call per flush
    (the client splits it into MLflow's 1000-metric requests).

    ``wall_origin``: the wall-clock time (``time.time()``) of the step table's ``time == 0``, so each point carries
    the wall time its step was recorded at (MLflow's "relative time" axis is then the training's).
    ``parent_run_id``: a sweep's parent run; :meth:`label` tags the run ``mlflow.parentRunId`` with it.
    """

    tracker = "MLflow"

    def __init__(self, run_id: str, tracking_uri: str, report: Callable[[str], None], wall_origin: float | None = None,
                 layers: bool = False, parent_run_id: str | None = None):
        super().__init__(report, run_id, layers)
        self.parent_run_id = parent_run_id
        from mlflow.tracking import MlflowClient

        self.run_id = run_id
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.wall_origin = time.time() if wall_origin is None else wall_origin

    def _write(self, df: pd.DataFrame) -> None:
        from mlflow.entities import Metric

        keys, steps, values = series(df, self.layers)
        stamps = ((self.wall_origin + df["time"].to_numpy(dtype="float64")) * 1000).astype("int64")
        metrics = [Metric(key, float(values[r, c]), int(stamps[r]), int(steps[r]))
                   for r in range(len(steps)) for c, key in enumerate(keys)]
        self.client.log_batch(self.run_id, metrics=metrics)

    def _label(self, params: dict[str, str], tags: dict[str, str]) -> None:
        from mlflow.entities import Param, RunTag

        if self.parent_run_id and self.parent_run_id != self.run_id:
            tags = {**tags, "mlflow.parentRunId": self.parent_run_id}  # MLflow's nesting: a sweep's trial
        self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in params.items()],
                              tags=[RunTag(k, v) for k, v in tags.items()])


class WandbSink(_SoftSink):
    """Per-step rows into an open W&B run (``run``), on the ``yolo_gd/step`` axis.

    W&B's own ``_step`` counts ``log`` calls and Ultralytics commits one per epoch, so the rows are logged without
    ``step=`` (which would have to stay monotonic with Ultralytics' commits) and ``yolo_gd/*`` is declared to plot
    against ``yolo_gd/step`` instead (``define_metric``), the optimizer step.
    """

    tracker = "W&B"

    def __init__(self, run, report: Callable[[str], None], layers: bool = False):
        super().__init__(report, run.id, layers)
        self.run = run
        self._defined = False

    def _label(self, params: dict[str, str], tags: dict[str, str]) -> None:
        self.run.config.update({**params, **tags}, allow_val_change=True)
        if tags:
            self.run.tags = tuple(dict.fromkeys([*(self.run.tags or ()), *(f"{k}={v}" for k, v in tags.items())]))

    def _write(self, df: pd.DataFrame) -> None:
        if not self._defined:
            self.run.define_metric(STEP_AXIS)
            self.run.define_metric(PREFIX + "*", step_metric=STEP_AXIS)
            self._defined = True
        keys, steps, values = series(df, self.layers)
        for r, step in enumerate(steps):
            self.run.log({STEP_AXIS: int(step), **dict(zip(keys, values[r].tolist()))}, commit=True)


class CometSink(_SoftSink):
    """Per-step metrics into a running Comet experiment (``experiment``), ``step`` = the optimizer step and
    ``epoch`` = the step's epoch; Comet queues the messages and sends (or, offline, archives) them in the
    background, so a flush costs no round trip per step."""

    tracker = "Comet"

    def __init__(self, experiment, report: Callable[[str], None], layers: bool = False):
        super().__init__(report, experiment.id, layers)
        self.experiment = experiment

    def _label(self, params: dict[str, str], tags: dict[str, str]) -> None:
        self.experiment.log_parameters(params)
        if tags:
            self.experiment.log_others(tags)
            self.experiment.add_tags([f"{k}={v}" for k, v in tags.items()])

    def _write(self, df: pd.DataFrame) -> None:
        keys, steps, values = series(df, self.layers)
        epochs = df["epoch"].to_numpy(dtype="int64")
        for r, step in enumerate(steps):
            self.experiment.log_metrics(dict(zip(keys, values[r].tolist())), step=int(step), epoch=int(epochs[r]))


def clearml_names(key: str) -> tuple[str, str]:
    """A series key as ClearML's (title, series): the last ``/`` part is the series, the rest the plot
    (``yolo_gd/lr/weight`` -> ``('yolo_gd/lr', 'weight')``); a key with no part of its own is both
    (``yolo_gd/grad_norm`` -> ``('yolo_gd/grad_norm', 'grad_norm')``, in one plot with ``grad_norm/<group>``)."""
    column = key[len(PREFIX):]
    if "/" not in column:
        return key, column
    title, _, name = column.rpartition("/")
    return PREFIX + title, name


class ClearmlSink(_SoftSink):
    """Per-step scalars into an open ClearML task (``task``), ``iteration`` = the optimizer step; ClearML's
    reporter batches them and sends (or, offline, stores) them in the background."""

    tracker = "ClearML"

    def __init__(self, task, report: Callable[[str], None], layers: bool = False):
        super().__init__(report, task.id, layers)
        self.task = task

    def _label(self, params: dict[str, str], tags: dict[str, str]) -> None:
        if params:
            self.task.connect(dict(params), name="yolo_gd")
        if tags:
            self.task.add_tags([f"{k}={v}" for k, v in tags.items()])

    def _write(self, df: pd.DataFrame) -> None:
        logger = self.task.get_logger()
        keys, steps, values = series(df, self.layers)
        names = [clearml_names(k) for k in keys]
        for r, step in enumerate(steps):
            for (title, name), value in zip(names, values[r].tolist()):
                logger.report_scalar(title, name, value, iteration=int(step))

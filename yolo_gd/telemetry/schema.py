"""The step table's columns, as data: name pattern, dtype, where it is computed, what it means.

One source for the sink (which casts each column to its dtype before writing Parquet), for readers and for the
docs/telemetry.md (:data:`SCHEMA_DOC`). A pattern's ``<group>`` / ``<part>`` / ``<layer>`` stands for one name component:
parameter group names (the optimizer's ``name`` key, else its ``param_group`` tag, else ``group<i>``; made
unique), loss part names (the keys of ``trainer.loss_items``) and module keys (``model.23`` or ``model.23.cv3``).

``source`` says who knows the value: ``host`` values are Python numbers the wrapper already has (no sync);
``device`` values are computed on the accelerator into a preallocated buffer and copied to the host only at a
flush.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Column", "STEP_COLUMNS", "EPOCH_COLUMNS", "SCHEMA_DOC", "column_spec", "cast_steps"]


@dataclass(frozen=True)
class Column:
    pattern: str
    dtype: str  # numpy dtype name, or 'str' (a text column)
    source: str  # 'host' or 'device' (or 'derived' for epochs.csv)
    level: str  # 'basic' or 'full': the lowest recorder level that records it
    meaning: str

    @property
    def regex(self) -> re.Pattern:
        """``<...>`` placeholders match one name component (anything but ``/``)."""
        return re.compile("^" + "[^/]+".join(re.escape(p) for p in re.split(r"<[a-z]+>", self.pattern)) + "$")


STEP_COLUMNS: tuple[Column, ...] = (
    Column("step", "int64", "host", "basic", "optimizer steps taken before this one (0 at the first step)"),
    Column("epoch", "int64", "host", "basic", "0-based epoch of the step"),
    Column("batch", "int64", "host", "basic", "global batch index of the step (Ultralytics' ni)"),
    Column("batch_in_epoch", "int64", "host", "basic", "batch index within the epoch"),
    Column("images_seen", "int64", "host", "basic",
           "(batch + 1) x batch size: images trained on so far (nominal batch size: a short last batch counts full)"),
    Column("time", "float64", "host", "basic",
           "seconds since the recorder started (host perf_counter when the step was recorded; no device sync, so "
           "it runs ahead of an asynchronous device)"),
    Column("attempt", "int64", "host", "basic",
           "0, +1 each time training goes back to an earlier step (NaN recovery, OOM retry): for each step the "
           "row with the highest attempt is the one training kept"),
    Column("optimizer", "str", "host", "basic",
           "optimizer class name (in observe-only runs: what Ultralytics' optimizer='auto' picked)"),
    Column("clip", "float64", "host", "basic", "gradient clip threshold in force (NaN: no clipping)"),
    Column("batch_size", "int64", "host", "full", "images per micro-batch (the trainer's batch size)"),
    Column("accumulate", "int64", "host", "full",
           "micro-batches in this step's accumulation window (1: no first-micro-batch read, no noise-scale sample)"),
    Column("lr/<group>", "float64", "host", "basic", "learning rate of the group used by this step"),
    Column("momentum/<group>", "float64", "host", "basic",
           "momentum (SGD-like) or beta1 (Adam-like) of the group used by this step; NaN if the optimizer has none"),
    Column("loss_backprop", "float32", "device", "basic",
           "trainer.loss: the loss that was backpropagated (sum of the parts x batch size, x world size under DDP) "
           "of the batch that ended the accumulation window"),
    Column("loss/<part>", "float32", "device", "basic",
           "one part of trainer.loss_items of that batch (per-image mean; YOLO26: the one-to-one branch only)"),
    Column("loss_sum", "float32", "device", "basic", "sum of the loss/<part> columns"),
    Column("grad_norm", "float32", "device", "basic",
           "global L2 norm of the unscaled gradients BEFORE clipping (what the clip threshold is compared to)"),
    Column("clipped", "bool", "device", "basic", "grad_norm > clip"),
    Column("clip_coef", "float32", "device", "basic",
           "factor the gradients were multiplied by: min(clip / (grad_norm + 1e-6), 1); 1 without clipping"),
    Column("grad_norm/<group>", "float32", "device", "basic", "pre-clip L2 norm of the group's unscaled gradients"),
    Column("sam_grad_norm_first", "float32", "device", "basic",
           "SAM family only: unscaled L2 norm of the first pass's gradients that the radius divides (ASAM: of abs(w) x "
           "gradient)"),
    Column("sam_perturbation_norm", "float32", "device", "basic",
           "SAM family only: L2 norm of the weight perturbation e of the second pass (SAM: rho; GSAM: rho_t)"),
    Column("param_norm/<group>", "float32", "device", "full", "L2 norm of the group's parameters before the step"),
    Column("update_norm/<group>", "float32", "device", "full",
           "L2 norm of the parameter change the step made (p_after - p_before; 0 for a skipped step)"),
    Column("update_ratio/<group>", "float32", "device", "full", "update_norm / param_norm"),
    Column("amp_scale", "float32", "device", "basic", "AMP loss scale the gradients were computed with (1: AMP off)"),
    Column("skipped", "bool", "device", "basic", "the AMP scaler skipped this step (inf/NaN gradients)"),
    Column("nonfinite", "bool", "device", "basic", "grad_norm is inf or NaN"),
    Column("nonfinite_count", "int64", "device", "basic", "non-finite steps so far in this recorder's process"),
    Column("grad_sq_first", "float32", "device", "full",
           "squared global norm of the unscaled gradient after the window's first micro-batch (noise scale; "
           "NaN when accumulate is 1)"),
    Column("layer_grad_norm/<layer>", "float32", "device", "full", "pre-clip L2 norm of one module's gradients"),
)

EPOCH_COLUMNS: tuple[Column, ...] = (
    Column("epoch", "int64", "derived", "basic", "0-based epoch"),
    Column("attempt", "int64", "derived", "basic", "attempt of the epoch's last step"),
    Column("steps", "int64", "derived", "basic", "optimizer steps recorded in the epoch"),
    Column("first_step", "int64", "derived", "basic", "step of the epoch's first row"),
    Column("last_step", "int64", "derived", "basic", "step of the epoch's last row"),
    Column("time", "float64", "derived", "basic", "recorder time at the epoch's last step"),
    Column("grad_norm_mean", "float64", "derived", "basic", "mean pre-clip grad_norm over the finite steps"),
    Column("grad_norm_max", "float64", "derived", "basic", "max pre-clip grad_norm over the finite steps"),
    Column("clip_rate", "float64", "derived", "basic", "fraction of steps clipped"),
    Column("skipped_steps", "int64", "derived", "basic", "steps the AMP scaler skipped"),
    Column("nonfinite_steps", "int64", "derived", "basic", "steps with a non-finite grad_norm"),
    Column("lr/<group>", "float64", "derived", "basic", "LR of the group at the epoch's last step"),
    Column("loss_backprop_mean", "float64", "derived", "basic", "mean of loss_backprop"),
    Column("loss/<part>_mean", "float64", "derived", "basic", "mean of each loss part"),
    Column("noise_scale", "float64", "derived", "full",
           "McCandlish et al. 2018 simple noise scale B_simple = tr(Sigma)/|G|^2 in images, from the windows' "
           "first micro-batch (B) and whole window (k B); NaN when k = 1, observe-only or DDP"),
    Column("noise_scale_lo", "float64", "derived", "full", "2.5 % bootstrap percentile over the epoch's windows"),
    Column("noise_scale_hi", "float64", "derived", "full", "97.5 % bootstrap percentile over the epoch's windows"),
    Column("noise_windows", "int64", "derived", "full", "accumulation windows the noise scale used"),
    Column("batch_size", "float64", "derived", "full", "images per micro-batch at the epoch's last step"),
)


def column_spec(name: str, columns: tuple[Column, ...] = STEP_COLUMNS) -> Column | None:
    """The schema entry a concrete column name falls under (exact names win over patterns), or None."""
    for col in columns:
        if col.pattern == name:
            return col
    for col in columns:
        if "<" in col.pattern and col.regex.match(name):
            return col
    return None


def cast_steps(df: pd.DataFrame) -> pd.DataFrame:
    """Cast every column of a step table to its schema dtype (unknown columns: float64).

    Device values arrive as float32; text stays text; flags become bool (a NaN flag, from a step whose
    after_step was never recorded, becomes False), counts become int64.
    """
    out = {}
    for name in df.columns:
        spec = column_spec(name)
        dtype = spec.dtype if spec else "float64"
        values = df[name].to_numpy()
        if dtype == "str":
            out[name] = values.astype(object)
        elif dtype == "bool":
            out[name] = np.nan_to_num(values.astype("float64"), nan=0.0) > 0.5
        elif dtype == "int64":
            out[name] = np.nan_to_num(values.astype("float64"), nan=-1).astype("int64")
        else:
            out[name] = values.astype(dtype)
    return pd.DataFrame(out, index=df.index)


def _table(columns: tuple[Column, ...]) -> str:
    rows = ["| column | dtype | source | level | meaning |", "|---|---|---|---|---|"]
    rows += [f"| `{c.pattern}` | {c.dtype} | {c.source} | {c.level} | {c.meaning} |" for c in columns]
    return "\n".join(rows)


SCHEMA_DOC = (
    "### Step table (`telemetry/steps/part-*.parquet`, one row per optimizer step)\n\n"
    + _table(STEP_COLUMNS)
    + "\n\n### Epoch summary (`telemetry/epochs.csv`, one row per epoch)\n\n"
    + _table(EPOCH_COLUMNS)
    + "\n"
)

"""Where flushed telemetry goes: append-only Parquet parts, the epoch CSV, TensorBoard.

Parquet cannot append, so each flush writes one new part (``steps/part-00000.parquet``, ``part-00001`` ...) to a
temporary name and renames it: a part is either complete or absent, and a process killed at any moment (SIGKILL
included) leaves readable parts that hold a prefix of the run's rows. :func:`read_steps` concatenates the parts
in order. Nothing here runs per step; these are host-side and called at flushes only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from yolo_gd.telemetry.schema import cast_steps

__all__ = [
    "STEPS_DIR",
    "EPOCHS_CSV",
    "ParquetParts",
    "telemetry_dir",
    "read_steps",
    "read_epochs",
    "append_epoch",
    "truncate_epochs",
    "TensorBoardSink",
]

STEPS_DIR = "steps"
EPOCHS_CSV = "epochs.csv"
_PART = re.compile(r"^part-(\d+)\.parquet$")


def _replace_atomically(path: Path, write) -> None:
    """``write(tmp)`` then rename over ``path``: readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class ParquetParts:
    """The append-only step table in ``directory``: ``part-<n>.parquet`` files, read back in ``n`` order."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def paths(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir() if (m := _PART.match(p.name))]
        return [p for _, p in sorted(found)]

    def append(self, df: pd.DataFrame) -> Path | None:
        """Write ``df`` as the next part (after every existing one); None for an empty frame."""
        if df.empty:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        paths = self.paths()
        index = int(_PART.match(paths[-1].name).group(1)) + 1 if paths else 0
        path = self.directory / f"part-{index:05d}.parquet"
        _replace_atomically(path, lambda tmp: df.to_parquet(tmp, index=False, engine="pyarrow"))
        return path

    def read(self) -> pd.DataFrame:
        frames = [pd.read_parquet(p, engine="pyarrow") for p in self.paths()]
        if not frames:
            return pd.DataFrame()
        # parts written by one recorder share columns; a resumed run with other groups or level adds columns (NaN)
        return cast_steps(pd.concat(frames, ignore_index=True))

    def truncate_after(self, step: int) -> int:
        """Drop the latest attempt's rows with ``step >= step`` (for a resume from the checkpoint at ``step``).

        Rows of earlier attempts (thrown away by a NaN recovery or an OOM retry) stay: they are history, and the
        resumed rows supersede them by carrying the latest attempt. Affected parts are rewritten atomically, parts
        left empty are deleted. Returns the latest attempt number (0 for an empty table), which the resumed
        recorder continues with.
        """
        paths = self.paths()
        attempts = [pd.read_parquet(p, columns=["step", "attempt"], engine="pyarrow") for p in paths]
        latest = max((int(a["attempt"].max()) for a in attempts if len(a)), default=0)
        for path, small in zip(paths, attempts):
            drop = (small["step"] >= step) & (small["attempt"] == latest)
            if not drop.any():
                continue
            if drop.all():
                path.unlink()
                continue
            full = pd.read_parquet(path, engine="pyarrow")
            kept = full[~drop.to_numpy()].reset_index(drop=True)
            _replace_atomically(path, lambda tmp, kept=kept: kept.to_parquet(tmp, index=False, engine="pyarrow"))
        return latest


def telemetry_dir(run_dir: str | os.PathLike) -> Path:
    """The telemetry folder of a run: ``run_dir/telemetry`` if it exists, else ``run_dir`` itself."""
    run_dir = Path(run_dir)
    return run_dir / "telemetry" if (run_dir / "telemetry").is_dir() else run_dir


def read_steps(run_dir: str | os.PathLike, latest_only: bool = False) -> pd.DataFrame:
    """The step table of a run (its save dir or its ``telemetry`` folder), all parts in order, typed by the schema.

    ``latest_only``: keep for each step only the row training kept (the last one written, i.e. of the latest
    attempt), dropping rows a NaN recovery or an OOM retry threw away.
    """
    df = ParquetParts(telemetry_dir(run_dir) / STEPS_DIR).read()
    if latest_only and not df.empty:
        df = df.drop_duplicates("step", keep="last").sort_values("step", kind="stable").reset_index(drop=True)
    return df


def read_epochs(run_dir: str | os.PathLike) -> pd.DataFrame:
    path = telemetry_dir(run_dir) / EPOCHS_CSV
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


def append_epoch(path: str | os.PathLike, row: Mapping) -> None:
    """Append one summary row to the epoch CSV, rewriting the (small) file atomically."""
    path = Path(path)
    old = pd.read_csv(path) if path.exists() else pd.DataFrame()
    new = pd.concat([old, pd.DataFrame([dict(row)])], ignore_index=True) if len(old) else pd.DataFrame([dict(row)])
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace_atomically(path, lambda tmp: new.to_csv(tmp, index=False))


def truncate_epochs(path: str | os.PathLike, step: int) -> None:
    """Drop summaries of epochs that contain a step ``>= step`` (they are recomputed after the resume)."""
    path = Path(path)
    if not path.exists():
        return
    old = pd.read_csv(path)
    if "last_step" not in old or not (old["last_step"] >= step).any():
        return
    kept = old[old["last_step"] < step]
    _replace_atomically(path, lambda tmp: kept.to_csv(tmp, index=False))


# Host bookkeeping columns: not worth a TensorBoard chart of their own.
_TB_SKIP = {"step", "epoch", "batch", "batch_in_epoch", "images_seen", "time", "attempt", "clip", "optimizer"}


class TensorBoardSink:
    """Per-step scalars into one ``SummaryWriter`` owned by one recorder (closed by :meth:`close`).

    Writes every numeric column except host bookkeeping (and, unless ``layers=True``, the per-layer norms, which
    are many and live in the Parquet table). ``purge_step`` drops events at or after that step left by an earlier
    process (resume). Use :meth:`available` first: ``torch.utils.tensorboard`` needs the ``tensorboard`` package.
    """

    def __init__(self, log_dir: str | os.PathLike, purge_step: int | None = None, layers: bool = False):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)
        self.layers = layers

    @staticmethod
    def available() -> bool:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            return False
        return True

    def write(self, df: pd.DataFrame) -> None:
        cols = [
            c for c in df.columns
            if c not in _TB_SKIP and (self.layers or not c.startswith("layer_grad_norm/"))
            and (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))
        ]
        steps = df["step"].to_numpy()
        values = df[cols].to_numpy(dtype="float64")
        for r, step in enumerate(steps):
            for c, tag in enumerate(cols):
                self.writer.add_scalar(tag, values[r, c], int(step))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

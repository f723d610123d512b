"""Trial states of one sweep on disk: ``runs/ablate/<sweep>/manifest.json``.

Only the runner process writes it (a second runner on the same sweep is refused by a lock file, see
:mod:`yolo_gd.ablate.runner`); every write goes to a temporary file in the same folder, is flushed to disk and
then renamed over the old one (``os.replace``), so a reader, or a runner killed mid-write, sees either the old or
the new manifest, never a torn one.

Read contract (what the report reads; plain JSON, no yolo_gd needed)::

    sweep     str                       the sweep's name
    spec      str                       path of the spec file the sweep was started from
    spec_copy str                       the spec's text
    created   float                     unix time the sweep was first started
    protocol  "fixed" | "tuned" | "lrfind"
    target    null | {"metric": str, "value": float}
    baseline  str                       config name of the first optimizer entry (on the first dataset)
    baselines null | {config: str}      the config each config is tested against: the first optimizer entry on
                                        its own dataset (absent in older manifests: derived from the names)
    cpus      int | null                CPU cores of the machine that last ran the sweep
    tuned     null | {config: {"tried": {"<lr>": metric or null, ...}, "picked": float, "metric": str,
                               "split": "val", "seeds": [int]}}
    lrfind    null | {config: {"lr": float, "rule": str, "suggested": float | null, "reason": str | null,
                               "advice": str | null, "others": {rule: float | null},
                               "steps": int, "seconds": float, "stopped_at_divergence": bool, "split": "train",
                               "plot": str, "csv": str, "conditions": dict}}
              (lr: the suggestion, else the entry's LR: see rule; reason: why there is no reliable suggestion
              (flat, rising, too noisy, diverged early, failed); conditions: ramp, steps, batch, nbs, mosaic,
              device, signal the test ran with)
    trials    {trial name: {
                 "config": str, "seed": int, "stage": "tune" | "main",
                 "state": "pending" | "running" | "done" | "failed",
                 "reason": str | null,          failure (or interruption) message, with the log's last lines
                 "dir": str,                    absolute trial folder (an Ultralytics save dir + trial.log)
                 "shared_device": bool,         another trial ran on the same device at the same time
                 "threads": int | null,         torch CPU threads given to the trial when CPU trials ran side by
                                                side (each an equal share of ``cpus``); null: Ultralytics' own
                 "device": str | null,          'cpu' or a GPU id
                 "started": float | null,       unix time the latest attempt started
                 "finished": float | null,      unix time the trial finished (done or failed)
                 "elapsed": float,              seconds summed over attempts (excludes time spent interrupted)
                 "attempts": int, "pid": int | null, "pid_started": float | null,
                 "lr": float | null,            the LR the trial trains with when the spec or tuning fixed it
                 "tunes": str | null,           tuning trials: the config they tune
                 "kwargs": dict | null,         what yolo_gd.train got (null until it first runs)
                 "key": str | null}}            fingerprint of the spec's kwargs (a changed spec is detected)

``tuned`` keys of ``tried`` are the LRs as text (JSON keys are strings), formatted like the trial names.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from yolo_gd.errors import UserError

__all__ = ["MANIFEST_NAME", "STATES", "Manifest", "TrialRecord", "manifest_path", "read_manifest"]

MANIFEST_NAME = "manifest.json"
STATES = ("pending", "running", "done", "failed")
STAGES = ("tune", "main")


def manifest_path(sweep_dir: str | os.PathLike) -> Path:
    return Path(sweep_dir) / MANIFEST_NAME


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest as plain JSON (``path``: the manifest file or its sweep folder)."""
    p = Path(path)
    if p.is_dir():
        p = manifest_path(p)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"no sweep manifest at {p}: run 'yolo-gd ablate SPEC' first, or pass the sweep folder "
                        f"(runs/ablate/<sweep>)") from None
    except json.JSONDecodeError as e:
        raise UserError(f"sweep manifest {p} is not valid JSON ({e}): it was edited by hand?") from None


@dataclass
class TrialRecord:
    config: str
    seed: int
    dir: str
    stage: str = "main"
    state: str = "pending"
    reason: str | None = None
    pid: int | None = None
    pid_started: float | None = None
    started: float | None = None
    finished: float | None = None
    elapsed: float = 0.0
    shared_device: bool = False
    threads: int | None = None
    device: str | None = None
    attempts: int = 0
    lr: float | None = None
    tunes: str | None = None
    kwargs: dict | None = None
    key: str | None = None

    def __post_init__(self):
        if self.state not in STATES:
            raise ValueError(f"trial state must be one of {', '.join(STATES)}, got {self.state!r}")
        if self.stage not in STAGES:
            raise ValueError(f"trial stage must be one of {', '.join(STAGES)}, got {self.stage!r}")

    @classmethod
    def from_dict(cls, d: dict) -> TrialRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Manifest:
    path: Path
    sweep: str
    spec: str = ""
    spec_copy: str = ""
    created: float = field(default_factory=time.time)
    protocol: str = "fixed"
    target: dict | None = None
    baseline: str | None = None
    baselines: dict | None = None
    cpus: int | None = None
    tuned: dict | None = None
    lrfind: dict | None = None
    trials: dict[str, TrialRecord] = field(default_factory=dict)
    updated: float | None = None

    # ---------------------------------------------------------------------------------------------- io

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("path", "trials")}
        d["trials"] = {name: asdict(rec) for name, rec in self.trials.items()}
        return d

    @classmethod
    def from_dict(cls, path: str | os.PathLike, d: dict) -> Manifest:
        known = {f.name for f in fields(cls)} - {"path", "trials"}
        m = cls(path=Path(path), **{k: v for k, v in d.items() if k in known})
        m.trials = {name: TrialRecord.from_dict(rec) for name, rec in (d.get("trials") or {}).items()}
        return m

    @classmethod
    def load(cls, path: str | os.PathLike) -> Manifest:
        p = Path(path)
        if p.is_dir():
            p = manifest_path(p)
        return cls.from_dict(p, read_manifest(p))

    def save(self) -> Path:
        """Write atomically: a temp file in the same folder, fsync, ``os.replace``."""
        self.updated = time.time()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=1, sort_keys=False, default=_jsonable)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return self.path

    # ---------------------------------------------------------------------------------------------- queries

    def count(self, state: str) -> int:
        return sum(r.state == state for r in self.trials.values())

    def counts(self) -> dict[str, int]:
        return {s: self.count(s) for s in STATES}


def _jsonable(obj: Any):
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    return repr(obj)

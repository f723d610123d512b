"""Validate a YOLO detection dataset before training, and resolve dataset names to their ``data.yaml``.

Why: Ultralytics discovers most dataset problems late (after the model is built, sometimes only as a warning
in a cache scan, or as a silently skipped image or label line) and one at a time. :func:`check_dataset` reads
everything up front, collects *all* problems and raises one :class:`UserError` that lists each with its file,
line and fix, so a broken dataset costs one round trip instead of several. It mirrors Ultralytics' rules for
where things are: split paths resolve against the ``path`` key (or the yaml's folder), images are found
recursively by suffix, and an image's label file is its path with the last ``/images/`` replaced by
``/labels/`` and the suffix by ``.txt``.

Layout: the dataset as a whole (yaml, names, root) and resolving names here; one split's images and label files
are checked by :mod:`yolo_gd.datasets.splits`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from yolo_gd.datasets.shapes import DEFAULT_SHAPES, default_shapes_dir, generate_shapes
from yolo_gd.datasets.splits import IMG_FORMATS, SplitSummary, check_split, label_path
from yolo_gd.errors import UserError, unknown_name
from yolo_gd.shipped import shipped_file

__all__ = ["IMG_FORMATS", "KNOWN_DATASETS", "MAX_PROBLEMS", "DatasetSummary", "SplitSummary", "check_dataset",
           "label_path", "resolve_data"]

#: Dataset names :func:`resolve_data` knows besides paths.
KNOWN_DATASETS = ("bccd", "shapes")

#: At most this many problems are listed; the rest are counted.
MAX_PROBLEMS = 20

_SPLITS = ("train", "val", "test")  # test is optional


@dataclass(frozen=True)
class DatasetSummary:
    """A dataset that passed :func:`check_dataset`: its yaml, classes and per-split counts."""

    yaml_path: Path
    nc: int
    names: dict[int, str]
    splits: dict[str, SplitSummary]

    def describe(self) -> str:
        """One line for logs, e.g. ``bccd/data.yaml: 3 classes; train 292 images (292 labelled, 2,974 boxes)``."""
        parts = [
            f"{name} {s.images} images ({s.labels} labelled, {s.boxes:,} boxes)" for name, s in self.splits.items()
        ]
        return f"{self.yaml_path}: {self.nc} classes; " + "; ".join(parts)


def check_dataset(data: str | Path) -> DatasetSummary:
    """Check the dataset described by ``data`` (a data.yaml, or a folder holding one) and summarise it.

    Reads every label file and decodes every image (at 1/8 resolution, so it stays cheap). Raises one
    :class:`UserError` listing every problem found (at most :data:`MAX_PROBLEMS`, then a count).
    """
    problems: list[str] = []
    yaml_path = Path(data).expanduser()
    if yaml_path.is_dir():
        yaml_path = yaml_path / "data.yaml"
    yaml_path = Path(os.path.abspath(yaml_path))  # not resolve(): like Ultralytics, a symlinked yaml keeps its folder
    cfg = _read_yaml(yaml_path, problems)
    if cfg is None:
        _raise(yaml_path, problems)

    names = _read_names(yaml_path, cfg, problems)
    nc = len(names) if names is not None else None
    if "nc" in cfg:
        raw_nc = cfg["nc"]
        if isinstance(raw_nc, bool) or not isinstance(raw_nc, int) or raw_nc < 1:
            problems.append(f"{yaml_path}: nc must be a positive integer, got {raw_nc!r}: set it to the number of "
                            f"classes in names, or remove it")
        elif names is not None and raw_nc != len(names):
            problems.append(f"{yaml_path}: nc is {raw_nc} but names lists {len(names)} classes: set nc to "
                            f"{len(names)}, or fix names")
        elif names is None:
            nc = raw_nc

    root = _root(yaml_path, cfg, problems)
    splits: dict[str, SplitSummary] = {}
    for split in _SPLITS:
        if split not in cfg or (split == "test" and cfg[split] in (None, "")):
            if split != "test":
                problems.append(f"{yaml_path} has no '{split}' key: add e.g. '{split}: images/{split}'")
            continue
        if root is None:
            continue
        summary = check_split(split, cfg[split], root, yaml_path, nc, problems)
        if summary is not None:
            splits[split] = summary

    if problems:
        _raise(yaml_path, problems)
    return DatasetSummary(yaml_path=yaml_path, nc=len(names), names=names, splits=splits)


def resolve_data(name_or_path: str | Path) -> Path:
    """The ``data.yaml`` for a dataset name (``bccd``, ``shapes``) or a path to a data.yaml or its folder.

    ``bccd`` is the BCCD set shipped with the package (the repository's ``datasets/bccd`` in a checkout, the
    ``yolo_gd._shipped`` package data in a wheel). ``shapes`` is the default synthetic set in
    :func:`~yolo_gd.datasets.shapes.default_shapes_dir`, generated on first use (about a second).
    """
    if isinstance(name_or_path, str) and name_or_path.strip().lower() in KNOWN_DATASETS:
        name = name_or_path.strip().lower()
        if name == "bccd":
            return _shipped_bccd()
        try:
            return generate_shapes(default_shapes_dir(), **DEFAULT_SHAPES)
        except UserError as e:
            raise UserError(f"{e} ('shapes' means the default set {DEFAULT_SHAPES} in {default_shapes_dir()}: pass "
                            f"the path of your own shapes data.yaml instead, or delete that folder.)") from None
    return _data_path(name_or_path)


def check_data_exists(name_or_path: str | Path) -> None:
    """What :func:`resolve_data` checks, without generating or reading anything: a known name, or an existing
    data.yaml (or a folder holding one); else the same one-line :class:`UserError`."""
    if isinstance(name_or_path, str) and name_or_path.strip().lower() in KNOWN_DATASETS:
        return
    _data_path(name_or_path)


def _data_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path.resolve()
    if path.is_dir():
        if (path / "data.yaml").is_file():
            return (path / "data.yaml").resolve()
        raise UserError(f"dataset folder {path.resolve()} has no data.yaml: pass the path of its yaml file, or add "
                        f"a data.yaml (train, val, names) to the folder.")
    text = str(name_or_path)
    if os.sep in text or "/" in text or path.suffix.lower() in (".yaml", ".yml"):
        raise UserError(f"dataset '{text}' does not exist: pass the path of a data.yaml (or of a folder that "
                        f"holds one), or one of the known names: {', '.join(KNOWN_DATASETS)}.")
    raise UserError(f"{unknown_name('dataset', text, KNOWN_DATASETS)} Or pass the path of a data.yaml (or of a "
                    f"folder that holds one).")


# --- helpers ------------------------------------------------------------------------------------------------------


def _shipped_bccd() -> Path:
    """The BCCD yaml: the checkout's ``datasets/bccd`` first, else the copy installed in ``yolo_gd/_shipped``."""
    in_repo, installed = shipped_file("datasets", "bccd", "data.yaml")
    for path in (in_repo, installed):
        if path.is_file():
            return path
    raise UserError(f"the shipped BCCD dataset is missing (looked in {in_repo} and {installed}): reinstall "
                    f"yolo_gd, or pass the path of a data.yaml.")


def _raise(yaml_path: Path, problems: list[str]):
    n = len(problems)
    lines = [f"dataset check failed for {yaml_path}: {n} problem{'s' if n != 1 else ''}"]
    lines += [f"  - {p}" for p in problems[:MAX_PROBLEMS]]
    if n > MAX_PROBLEMS:
        lines.append(f"  ... and {n - MAX_PROBLEMS} more")
    raise UserError("\n".join(lines))


def _read_yaml(yaml_path: Path, problems: list[str]) -> dict | None:
    if not yaml_path.is_file():
        if yaml_path.name == "data.yaml" and yaml_path.parent.is_dir():
            problems.append(f"{yaml_path} does not exist: the folder {yaml_path.parent} has no data.yaml; pass the "
                            f"path of the dataset's yaml file")
        else:
            problems.append(f"{yaml_path} does not exist: pass the path of a data.yaml, or of a folder that holds "
                            f"one")
        return None
    try:
        cfg = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        problems.append(f"{yaml_path} cannot be read ({e}): check its permissions and encoding (UTF-8)")
        return None
    except yaml.YAMLError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        problems.append(f"{yaml_path} is not valid YAML ({first}): fix its syntax")
        return None
    if not isinstance(cfg, dict):
        problems.append(f"{yaml_path} must be a YAML mapping with keys train, val and names, got "
                        f"{type(cfg).__name__}: see datasets/bccd/data.yaml for an example")
        return None
    return cfg


def _read_names(yaml_path: Path, cfg: dict, problems: list[str]) -> dict[int, str] | None:
    """``names`` as ``{id: name}`` with ids 0..n-1 (a list is numbered in order), or None with a problem noted."""
    if "names" not in cfg:
        problems.append(f"{yaml_path} has no 'names' key: add the class names, e.g. 'names: {{0: cat, 1: dog}}'")
        return None
    raw = cfg["names"]
    if isinstance(raw, (list, tuple)):
        raw = dict(enumerate(raw))
    if not isinstance(raw, dict) or not raw:
        problems.append(f"{yaml_path}: names must be a non-empty mapping of class id to name (or a list), got "
                        f"{cfg['names']!r}: e.g. 'names: {{0: cat, 1: dog}}'")
        return None
    try:
        names = {int(k): str(v) for k, v in raw.items() if not isinstance(k, bool)}
    except (TypeError, ValueError):
        names = {}
    if len(names) != len(raw) or sorted(names) != list(range(len(names))):
        problems.append(f"{yaml_path}: names keys must be the class ids 0..{len(raw) - 1} without gaps, got "
                        f"{list(raw)}: renumber them")
        return None
    return dict(sorted(names.items()))


def _root(yaml_path: Path, cfg: dict, problems: list[str]) -> Path | None:
    """The folder split paths are relative to: ``path`` (absolute, or relative to the yaml's folder) else the
    yaml's folder."""
    raw = cfg.get("path")
    if raw in (None, ""):
        return yaml_path.parent
    if not isinstance(raw, str):
        problems.append(f"{yaml_path}: path must be a folder name, got {raw!r}: fix it, or remove it to use the "
                        f"yaml's folder")
        return None
    root = Path(raw).expanduser()
    if not root.is_absolute():
        root = yaml_path.parent / root
    root = root.resolve()
    if not root.is_dir():
        problems.append(f"dataset root {root} (from 'path: {raw}' in {yaml_path.name}) does not exist: fix 'path', "
                        f"or remove it to use the yaml's folder")
        return None
    return root

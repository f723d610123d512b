"""Validate a YOLO detection dataset before training, and resolve dataset names to their ``data.yaml``.

Why: Ultralytics discovers most dataset problems late (after the model is built, sometimes only as a warning
in a cache scan, or as a silently skipped image or label line) and one at a time. :func:`check_dataset` reads
everything up front, collects *all* problems and raises one :class:`UserError` that lists each with its file,
line and fix, so a broken dataset costs one round trip instead of several. It mirrors Ultralytics' rules for
where things are: split paths resolve against the ``path`` key (or the yaml's folder), images are found
recursively by suffix, and an image's label file is its path with the last ``/images/`` replaced by
``/labels/`` and the suffix by ``.txt``.
"""

from __future__ import annotations

import glob
import importlib.resources
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from yolo_gd.datasets.shapes import DEFAULT_SHAPES, default_shapes_dir, generate_shapes
from yolo_gd.errors import UserError, unknown_name

#: Image suffixes Ultralytics loads (``ultralytics.data.utils.IMG_FORMATS`` minus formats it needs extra packages
#: for), compared case-insensitively.
IMG_FORMATS = ("bmp", "jpeg", "jpg", "png", "tif", "tiff", "webp")

#: Dataset names :func:`resolve_data` knows besides paths.
KNOWN_DATASETS = ("bccd", "shapes")

#: At most this many problems are listed; the rest are counted.
MAX_PROBLEMS = 20

_SPLITS = ("train", "val", "test")  # test is optional
_FIELDS = ("class", "cx", "cy", "w", "h")


@dataclass(frozen=True)
class SplitSummary:
    """What one split holds: image files, label files found for them, and boxes in those label files."""

    images: int
    labels: int
    boxes: int

    @property
    def backgrounds(self) -> int:
        """Images without a label file (Ultralytics trains on them as pure background)."""
        return self.images - self.labels


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
        summary = _check_split(split, cfg[split], root, yaml_path, nc, problems)
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
    """The BCCD yaml: the checkout's ``datasets/bccd`` first, else the copy installed as ``yolo_gd._shipped``."""
    import yolo_gd

    in_repo = Path(yolo_gd.__file__).resolve().parents[1] / "datasets" / "bccd" / "data.yaml"
    if in_repo.is_file():
        return in_repo
    try:
        shipped = Path(str(importlib.resources.files("yolo_gd._shipped") / "bccd" / "data.yaml"))
    except ModuleNotFoundError:
        shipped = None
    if shipped is not None and shipped.is_file():
        return shipped
    raise UserError(f"the shipped BCCD dataset is missing (looked in {in_repo} and in package yolo_gd._shipped): "
                    f"reinstall yolo_gd, or pass the path of a data.yaml.")


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


def _split_images(split: str, value, root: Path, yaml_path: Path, problems: list[str]) -> tuple[list[str], bool]:
    """The image files of one split (a folder, a .txt list of images, or a list of those), and whether any of
    its sources exists (if none does, that is already reported and an "empty split" problem would repeat it)."""
    values = value if isinstance(value, (list, tuple)) else [value]
    images: list[str] = []
    found = False
    for v in values:
        if not isinstance(v, str) or not v:
            problems.append(f"{yaml_path}: '{split}' must be a folder or a .txt list of images, got {v!r}: e.g. "
                            f"'{split}: images/{split}'")
            continue
        p = Path(v).expanduser()
        p = (p if p.is_absolute() else root / p).resolve()
        found = found or p.exists()
        if p.is_dir():
            pattern = os.path.join(glob.escape(str(p)), "**", "*.*")
            images += sorted(f for f in glob.glob(pattern, recursive=True) if _is_image(f) and os.path.isfile(f))
        elif p.is_file() and p.suffix.lower() == ".txt":
            images += _list_file_images(p, problems)
        elif p.is_file():
            problems.append(f"'{split}: {v}' in {yaml_path.name} names the file {p}, which is neither an image "
                            f"folder nor a .txt list of images: point it at the image folder")
        else:
            problems.append(f"image folder for split '{split}' does not exist: {p} (from '{split}: {v}' in "
                            f"{yaml_path.name}): create it, or fix '{split}'")
    return images, found


def _list_file_images(txt: Path, problems: list[str]) -> list[str]:
    """Images listed one per line in ``txt``; relative entries are relative to the list file's folder."""
    try:
        lines = txt.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        problems.append(f"{txt} cannot be read ({e}): check the image list file")
        return []
    images = []
    for i, line in enumerate(lines, 1):
        entry = line.strip()
        if not entry:
            continue
        p = Path(entry).expanduser()
        p = (p if p.is_absolute() else txt.parent / p).resolve()
        if not _is_image(str(p)):
            problems.append(f"{txt}:{i}: '{entry}' is not an image file (suffixes: {', '.join(IMG_FORMATS)}): "
                            f"remove the line")
        elif not p.is_file():
            problems.append(f"{txt}:{i}: listed image {p} does not exist: remove the line, or restore the image")
        else:
            images.append(str(p))
    return images


def _is_image(path: str) -> bool:
    return path.rsplit(".", 1)[-1].lower() in IMG_FORMATS and not os.path.basename(path).startswith(".")


def label_path(image: str) -> str:
    """The label file Ultralytics reads for ``image``: last ``/images/`` -> ``/labels/``, suffix -> ``.txt``."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return sb.join(image.rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt"


def _check_split(split, value, root, yaml_path, nc, problems) -> SplitSummary | None:
    images, found = _split_images(split, value, root, yaml_path, problems)
    if not images:
        if found:
            problems.append(f"split '{split}' has no images in '{split}: {value}' (looked for "
                            f"{', '.join(IMG_FORMATS)} files, recursively): add images, or fix '{split}' in "
                            f"{yaml_path.name}")
        return None

    labels = boxes = 0
    label_dirs: set[str] = set()
    # Decoding dominates on large datasets; OpenCV releases the GIL, so threads scale (order stays as listed).
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        decodes = list(pool.map(_decodes, images))
    for image, ok in zip(images, decodes):
        lbl = label_path(image)
        label_dirs.add(os.path.dirname(lbl))
        if os.path.isfile(lbl):
            labels += 1
            boxes += _check_label_file(lbl, nc, problems)
        if not ok:
            problems.append(f"{image} cannot be decoded as an image (corrupt or not really a "
                            f"{image.rsplit('.', 1)[-1]}): replace it, or delete it and its label file")

    if labels == 0:
        missing = sorted(d for d in label_dirs if not os.path.isdir(d))
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            problems.append(f"labels folder for split '{split}' does not exist: {shown} (Ultralytics finds each "
                            f"image's labels by replacing the last '/images/' in its path with '/labels/'): create "
                            f"it with one .txt per image")
        else:
            problems.append(f"split '{split}' has no label files: none of its {len(images)} images has a .txt in "
                            f"{', '.join(sorted(label_dirs)[:3])}: add one 'class cx cy w h' file per image")
    elif boxes == 0:
        problems.append(f"split '{split}' has no boxes: all {labels} label files are empty: add 'class cx cy w h' "
                        f"lines")
    return SplitSummary(images=len(images), labels=labels, boxes=boxes)


def _check_label_file(path: str, nc: int | None, problems: list[str]) -> int:
    """Check every line of one label file; return its number of well-formed boxes."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        problems.append(f"{path} cannot be read ({e}): rewrite it as UTF-8 text, one 'class cx cy w h' per line")
        return 0
    boxes = 0
    for i, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{i}"
        if len(fields) != 5:
            extra = " (segmentation polygons are not supported)" if len(fields) > 5 else ""
            problems.append(f"{where}: expected 5 fields 'class cx cy w h', got {len(fields)}{extra}: fix the line")
            continue
        values = []
        for name, tok in zip(_FIELDS, fields):
            try:
                v = float(tok)
            except ValueError:
                v = math.nan
            if not math.isfinite(v):
                problems.append(f"{where}: {name} '{tok}' is not a number: fix the line")
            values.append(v)
        if not all(math.isfinite(v) for v in values):
            continue
        ok = True
        c = values[0]
        if c != int(c):
            problems.append(f"{where}: class id '{fields[0]}' is not an integer: use a class id from names")
            ok = False
        elif nc is not None and not 0 <= c < nc:
            problems.append(f"{where}: class id {int(c)} is out of range [0, {nc}): use an id from names "
                            f"(0..{nc - 1}), or add the class to names")
            ok = False
        for name, tok, v in zip(_FIELDS[1:], fields[1:], values[1:]):
            if not 0 <= v <= 1:
                problems.append(f"{where}: {name} {tok} is outside [0, 1]: coordinates must be normalised by the "
                                f"image width and height")
                ok = False
            elif name in ("w", "h") and v <= 0:
                problems.append(f"{where}: {name} {tok} must be > 0: remove the empty box")
                ok = False
        boxes += ok
    return boxes


def _decodes(image: str) -> bool:
    """Whether OpenCV can decode the file (at 1/8 size in grayscale: a full parse at a fraction of the cost)."""
    try:
        buf = np.fromfile(image, dtype=np.uint8)
    except OSError:
        return False
    return buf.size > 0 and cv2.imdecode(buf, cv2.IMREAD_REDUCED_GRAYSCALE_8) is not None

"""Checking one split of a detection dataset: its images, their label files, every label line, every image decodes.

Mirrors Ultralytics' rules for where things are: images are found recursively by suffix (a folder, a .txt list of
images, or a list of those), and an image's label file is its path with the last ``/images/`` replaced by
``/labels/`` and the suffix by ``.txt``. Every problem is appended to a list with its file, line and fix;
:func:`yolo_gd.datasets.check.check_dataset` reports them all at once.
"""

from __future__ import annotations

import glob
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = ["IMG_FORMATS", "SplitSummary", "check_split", "label_path"]

#: Image suffixes Ultralytics loads (``ultralytics.data.utils.IMG_FORMATS`` minus formats it needs extra packages
#: for), compared case-insensitively.
IMG_FORMATS = ("bmp", "jpeg", "jpg", "png", "tif", "tiff", "webp")

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


def _split_images(split: str, value, root: Path, yaml_path: Path, problems: list[str]) -> tuple[list[str], bool]:
    """The image files of one split (a folder, a .txt list of images, or a list of those), and whether any of
    its sources is a folder or a .txt list (if none is, that is already reported and an "empty split" problem would
    repeat it)."""
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
        found = found or p.is_dir() or (p.is_file() and p.suffix.lower() == ".txt")
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


def check_split(split, value, root, yaml_path, nc, problems) -> SplitSummary | None:
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

"""A synthetic detection dataset: coloured shapes on cluttered backgrounds, generated on the fly.

Why: optimizer comparisons and end-to-end tests need a dataset that needs no download, has no licence question,
trains to a meaningful mAP in seconds on a CPU, and is bit-for-bit reproducible, so two runs that differ only in
the optimizer see exactly the same pixels. Real photos (BCCD) are shipped too; this set is the fast, controlled one.

What makes it more than a toy: backgrounds are textured (smooth gradient, low-frequency blotches, faint lines,
pixel noise) so the model cannot detect "anything not flat"; shapes vary in scale, aspect, rotation and count;
later shapes may occlude earlier ones. Labels are computed from the pixels actually painted (each shape's
visible mask), so a box never includes an occluded or off-image part of its shape.

Determinism: every image draws from its own ``numpy.random.Generator(PCG64(SeedSequence([seed, split, k])))``,
so image ``k`` of a split is the same whatever ``n_train``/``n_val`` are, and the same arguments write
byte-identical files (PNG via OpenCV with a fixed compression level). The generator parameters are recorded in
``data.yaml`` under ``generator:``; a second call with the same parameters returns at once.

Atomicity: the dataset is written into a temporary sibling folder and renamed into place when complete, so an
interrupted generation never leaves a folder that looks like a finished dataset.

Layout: generation, the cache and the files here; drawing one image is :mod:`yolo_gd.datasets.shapes_draw`.
"""

from __future__ import annotations

import math
import numbers
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import yaml

from yolo_gd.datasets.shapes_draw import MIN_VISIBLE_FRACTION, render_image
from yolo_gd.errors import UserError, unknown_name

#: Shape classes the generator can draw, in no particular order (ids come from the ``classes`` argument).
SHAPE_CLASSES = ("rectangle", "circle", "triangle", "ellipse", "diamond")

#: Arguments of the default dataset (``data=shapes``): small enough to generate in about a second.
DEFAULT_SHAPES = dict(n_train=256, n_val=64, imgsz=128, seed=0)

#: Bumped whenever the drawing changes, so a dataset cached by an older version is not mistaken for a current one.
GENERATOR_VERSION = 1

_SPLITS = ("train", "val")

__all__ = ["DEFAULT_SHAPES", "GENERATOR_VERSION", "MIN_VISIBLE_FRACTION", "SHAPE_CLASSES", "default_shapes_dir",
           "generate_shapes", "label_text", "render_image"]


def default_shapes_dir() -> Path:
    """Where ``data=shapes`` keeps the default dataset: ``./datasets/shapes`` under the current directory."""
    return Path.cwd() / "datasets" / "shapes"


def generate_shapes(
    out_dir: str | Path,
    *,
    n_train: int = 256,
    n_val: int = 64,
    imgsz: int = 128,
    seed: int = 0,
    classes: tuple[str, ...] | list[str] = ("rectangle", "circle", "triangle"),
    max_objects: int = 4,
    min_size: float = 0.15,
    max_size: float = 0.5,
    occlusion: bool = True,
    noise: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write a YOLO-format shapes dataset into ``out_dir`` and return the path of its ``data.yaml``.

    Layout: ``images/{train,val}/NNNNNN.png``, ``labels/{train,val}/NNNNNN.txt`` (``cls cx cy w h``, normalised,
    6 decimals; an image may have an empty label file if every placement failed), ``data.yaml``.

    ``classes`` picks the shapes and their ids (in order) from :data:`SHAPE_CLASSES`; a comma-separated string
    works too (for command lines). ``min_size``/``max_size`` bound a shape's extent as a fraction of the image
    side; each image holds 1 to ``max_objects`` shapes. With ``occlusion`` later shapes may cover earlier ones (a placement that would leave
    an earlier shape less than 40 % visible is rejected, and any shape below that is unlabelled); without it shapes
    never overlap. ``noise=False`` draws on a flat background without texture or pixel noise, so labels can be
    checked pixel-exactly (tests, debugging).

    If ``out_dir`` already holds a dataset generated with the same parameters it is returned as is. Different
    parameters raise :class:`UserError` unless ``overwrite=True``. A non-empty ``out_dir`` that is not a generated
    dataset is never deleted.
    """
    params = _validate(
        n_train=n_train, n_val=n_val, imgsz=imgsz, seed=seed, classes=classes, max_objects=max_objects,
        min_size=min_size, max_size=max_size, occlusion=occlusion, noise=noise,
    )
    out = Path(out_dir).expanduser().resolve()
    yaml_path = out / "data.yaml"
    if not _reuse(out, yaml_path, params, overwrite):
        _write_atomically(out, yaml_path, params)
    return yaml_path


# --- arguments ---------------------------------------------------------------------------------------------------


def _validate(**kw) -> dict:
    """Check the arguments and return them normalised (plain ints, floats, bools, a list of class names)."""

    def integer(name: str, lo: int) -> int:
        v = kw[name]
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise UserError(f"{name} must be an integer, got {v!r}.")
        if v < lo:
            raise UserError(f"{name} must be >= {lo}, got {v}.")
        return int(v)

    def number(name: str) -> float:
        v = kw[name]
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise UserError(f"{name} must be a finite number, got {v!r}.")
        return float(v)

    p = dict(name="yolo_gd.datasets.shapes", version=GENERATOR_VERSION)
    p["n_train"] = integer("n_train", 1)
    p["n_val"] = integer("n_val", 1)
    p["imgsz"] = integer("imgsz", 32)
    if p["imgsz"] % 32:
        raise UserError(f"imgsz must be a multiple of 32 (the YOLO stride), got {p['imgsz']}: use e.g. "
                        f"{max(32, p['imgsz'] // 32 * 32)}.")
    p["seed"] = integer("seed", 0)
    classes = kw["classes"]
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    classes = list(classes)
    if not classes:
        raise UserError(f"classes must name at least one shape; valid shapes: {', '.join(SHAPE_CLASSES)}.")
    for c in classes:
        if c not in SHAPE_CLASSES:
            raise unknown_name("shape", c, SHAPE_CLASSES)
    if len(set(classes)) != len(classes):
        raise UserError(f"classes must not repeat a shape, got {classes}.")
    p["classes"] = classes
    p["max_objects"] = integer("max_objects", 1)
    p["min_size"] = number("min_size")
    p["max_size"] = number("max_size")
    if not 0 < p["min_size"] <= p["max_size"] <= 1:
        raise UserError(
            f"shape sizes must satisfy 0 < min_size <= max_size <= 1 (fractions of the image side), got "
            f"min_size={p['min_size']}, max_size={p['max_size']}."
        )
    for name in ("occlusion", "noise"):
        if not isinstance(kw[name], (bool, np.bool_)):
            raise UserError(f"{name} must be True or False, got {kw[name]!r}.")
        p[name] = bool(kw[name])
    return p


def _describe_diff(old: dict, new: dict) -> str:
    keys = [k for k in dict.fromkeys([*new, *old]) if old.get(k) != new.get(k)]
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys)


# --- the cache ----------------------------------------------------------------------------------------------------


def _reuse(out: Path, yaml_path: Path, params: dict, overwrite: bool) -> bool:
    """True if ``out`` already holds this dataset (complete); a :class:`UserError` if it holds something we must
    not replace; False if it may be (re)generated: no folder, an empty one, an incomplete copy with our
    parameters, or another generated dataset with ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise UserError(f"shapes out dir {out} is a file, not a folder: choose another out dir.")
    if not out.is_dir():
        return False
    recorded = _recorded_generator(yaml_path)
    if recorded == params and _is_complete(out, params):
        _refresh_yaml_path(yaml_path, out, params)
        return True
    if recorded is None and any(out.iterdir()):
        raise UserError(
            f"shapes out dir {out} exists and is not a generated shapes dataset (no data.yaml with a "
            f"'generator' key): choose another out dir, or empty it first."
        )
    if recorded is not None and recorded != params and not overwrite:
        raise UserError(
            f"shapes out dir {out} holds a dataset generated with different parameters "
            f"({_describe_diff(recorded, params)}): pass overwrite=True to regenerate it, or choose another "
            f"out dir."
        )
    return False


def _recorded_generator(yaml_path: Path) -> dict | None:
    """The ``generator:`` block of an existing ``data.yaml``, or None when there is none (or it is unreadable)."""
    try:
        data = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    gen = data.get("generator") if isinstance(data, dict) else None
    return gen if isinstance(gen, dict) else None


def _is_complete(out: Path, params: dict) -> bool:
    """Whether every image and label file is there (cheap: counts names, reads nothing)."""
    for split in _SPLITS:
        n = params[f"n_{split}"]
        if len(list((out / "images" / split).glob("*.png"))) != n:
            return False
        if len(list((out / "labels" / split).glob("*.txt"))) != n:
            return False
    return True


def _refresh_yaml_path(yaml_path: Path, out: Path, params: dict) -> None:
    """Rewrite ``path:`` if the dataset folder was moved since it was generated (images are left alone)."""
    try:
        recorded = yaml.safe_load(yaml_path.read_text(encoding="utf-8")).get("path")
    except (OSError, yaml.YAMLError, AttributeError):
        recorded = None
    if recorded != str(out):
        tmp = yaml_path.with_name(f".{yaml_path.name}.tmp-{os.getpid()}")
        tmp.write_text(_yaml_text(out, params), encoding="utf-8")
        os.replace(tmp, yaml_path)


def _yaml_text(out: Path, params: dict) -> str:
    body = {
        "path": str(out),
        "train": "images/train",
        "val": "images/val",
        "nc": len(params["classes"]),
        "names": dict(enumerate(params["classes"])),
        "generator": dict(params),
    }
    header = (
        "# Synthetic shapes dataset written by yolo_gd.datasets.shapes.generate_shapes.\n"
        "# The 'generator' block records its arguments: the same arguments reproduce these files byte for byte.\n"
    )
    return header + yaml.safe_dump(body, sort_keys=False, default_flow_style=False)


# --- writing ------------------------------------------------------------------------------------------------------


def _write_atomically(out: Path, yaml_path: Path, params: dict) -> None:
    """Generate into a temporary sibling folder, then rename it to ``out`` (replacing what is there)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        _write_dataset(tmp, out, params)
        if out.exists():
            shutil.rmtree(out)
        try:
            os.rename(tmp, out)
        except OSError:
            # Another process finished the same dataset first: use it if it is what we were asked for.
            if not (_recorded_generator(yaml_path) == params and _is_complete(out, params)):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _write_dataset(tmp: Path, out: Path, params: dict) -> None:
    """Write every image and label into ``tmp``, then ``data.yaml`` last (``path`` already names ``out``)."""
    png = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    for s, split in enumerate(_SPLITS):
        img_dir, lbl_dir = tmp / "images" / split, tmp / "labels" / split
        img_dir.mkdir(parents=True)
        lbl_dir.mkdir(parents=True)
        for k in range(params[f"n_{split}"]):
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([params["seed"], s, k])))
            image, boxes = render_image(
                rng, params["imgsz"], kinds=params["classes"],
                max_objects=params["max_objects"], min_size=params["min_size"], max_size=params["max_size"],
                occlusion=params["occlusion"], noise=params["noise"],
            )
            ok, buf = cv2.imencode(".png", image, png)
            if not ok:  # pragma: no cover - OpenCV always encodes uint8 BGR
                raise RuntimeError("OpenCV failed to encode a PNG")
            (img_dir / f"{k:06d}.png").write_bytes(buf.tobytes())
            (lbl_dir / f"{k:06d}.txt").write_text(label_text(boxes, params["imgsz"]), encoding="utf-8")
    (tmp / "data.yaml").write_text(_yaml_text(out, params), encoding="utf-8")


def label_text(boxes: list[tuple[int, int, int, int, int]], imgsz: int) -> str:
    """YOLO label lines for pixel boxes ``(cls, x0, y0, x1, y1)`` (x1, y1 exclusive), 6 decimals."""
    lines = []
    for cls, x0, y0, x1, y1 in boxes:
        cx, cy = (x0 + x1) / 2 / imgsz, (y0 + y1) / 2 / imgsz
        w, h = (x1 - x0) / imgsz, (y1 - y0) / imgsz
        lines.append(f"{cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
    return "".join(lines)

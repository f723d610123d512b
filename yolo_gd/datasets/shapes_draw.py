"""Drawing one synthetic shapes image: a textured background, shapes rasterised into masks, boxes from the masks.

Shapes are rasterised into masks first and painted from the masks, so the labels (taken from the visible part of
each mask) describe exactly the painted pixels. Every random draw comes from the generator passed in, so an image
is a pure function of it (see :mod:`yolo_gd.datasets.shapes` for how each image gets its own).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["MIN_VISIBLE_FRACTION", "render_image"]

#: A shape whose visible area falls below this fraction of its full area is not labelled.
MIN_VISIBLE_FRACTION = 0.4

_MIN_PIXELS = 6  # a labelled shape shows at least this many pixels ...
_MIN_SIDE = 2  # ... and a visible box at least this many pixels wide and high
_PLACEMENT_TRIES = 20
_SHAPE_CONTRAST = 90.0  # min RGB distance between a shape's colour and the background under it
_SHAPE_SEPARATION = 60.0  # min RGB distance between the colours of two shapes in one image
_COLOUR_TRIES = 30
_SUBPIXEL_SHIFT = 4  # fillPoly fixed-point bits: vertices at 1/16 px


def render_image(
    rng: np.random.Generator,
    imgsz: int,
    *,
    kinds: list[str] | tuple[str, ...],
    max_objects: int,
    min_size: float,
    max_size: float,
    occlusion: bool,
    noise: bool,
) -> tuple[np.ndarray, list[tuple[int, int, int, int, int]]]:
    """Draw one image; return it (uint8 BGR) and its boxes ``(cls, x0, y0, x1, y1)`` in pixels, x1/y1 exclusive.

    ``kinds[i]`` is the shape drawn for class id ``i``.

    Shapes are rasterised into masks first and painted from the masks, so the labels (taken from the visible
    part of each mask) describe exactly the painted pixels.
    """
    background = _background(rng, imgsz, noise)
    n_wanted = int(rng.integers(1, max_objects + 1))
    shapes: list[dict] = []  # each: cls, full mask, visible mask, colour
    for _ in range(n_wanted):
        for _ in range(_PLACEMENT_TRIES):
            cls = int(rng.integers(len(kinds)))
            size = rng.uniform(min_size, max_size) * imgsz
            mask = _rasterise(_place(_outline(kinds[cls], size, rng), imgsz, rng), imgsz)
            area = int(np.count_nonzero(mask))
            if area < _MIN_PIXELS:
                continue
            if not occlusion and any(np.any(mask & s["full"]) for s in shapes):
                continue
            covered = [s["visible"] & ~mask for s in shapes]
            if any(np.count_nonzero(v) < MIN_VISIBLE_FRACTION * s["area"] for v, s in zip(covered, shapes)):
                continue  # would hide too much of an earlier shape
            for s, v in zip(shapes, covered):
                s["visible"] = v
            colour = _pick_colour(rng, background[mask.astype(bool)].mean(axis=0), [s["colour"] for s in shapes])
            shapes.append(dict(cls=cls, full=mask, visible=mask.copy(), area=area, colour=colour))
            break

    image = background
    for s in shapes:
        image[s["full"].astype(bool)] = s["colour"]
    if noise:
        image = image + rng.normal(0.0, rng.uniform(2.0, 8.0), image.shape).astype(np.float32)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)

    boxes = []
    for s in shapes:
        visible = s["visible"]
        n_visible = int(np.count_nonzero(visible))
        if n_visible < _MIN_PIXELS or n_visible < MIN_VISIBLE_FRACTION * s["area"]:
            continue
        ys, xs = np.nonzero(visible)
        x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
        if x1 - x0 >= _MIN_SIDE and y1 - y0 >= _MIN_SIDE:
            boxes.append((s["cls"], x0, y0, x1, y1))
    return image, boxes


def _outline(kind: str, size: float, rng: np.random.Generator) -> np.ndarray:
    """Vertices (N, 2) of a shape about ``size`` px across, centred on the origin, randomly shaped and turned."""
    r = size / 2
    if kind == "rectangle":
        w, h = r, r * rng.uniform(0.45, 1.0)
        if rng.random() < 0.5:
            w, h = h, w
        pts, angle = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]), rng.uniform(-20, 20)
    elif kind == "circle":
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        pts, angle = np.stack([r * np.cos(t), r * np.sin(t)], axis=1), 0.0
    elif kind == "ellipse":
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        b = r * rng.uniform(0.4, 0.65)
        pts, angle = np.stack([r * np.cos(t), b * np.sin(t)], axis=1), rng.uniform(0, 180)
    elif kind == "triangle":
        t = np.deg2rad(np.array([90.0, 210.0, 330.0]) + rng.uniform(-15, 15, 3))
        pts, angle = np.stack([r * np.cos(t), r * np.sin(t)], axis=1), rng.uniform(0, 360)
    elif kind == "diamond":
        w = r * rng.uniform(0.5, 0.75)
        pts, angle = np.array([[0, -r], [w, 0], [0, r], [-w, 0]]), rng.uniform(-15, 15)
    else:  # pragma: no cover - _validate rejects unknown kinds
        raise ValueError(kind)
    a = np.deg2rad(angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return pts @ rot.T


def _place(pts: np.ndarray, imgsz: int, rng: np.random.Generator) -> np.ndarray:
    """Shrink the outline if it is wider than the image, then move it to a random spot fully inside the image."""
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    extent = float((hi - lo).max())
    if extent > imgsz - 1:
        pts, lo, hi = pts * ((imgsz - 1) / extent), lo * ((imgsz - 1) / extent), hi * ((imgsz - 1) / extent)
    offset = np.array([rng.uniform(-lo[0], imgsz - 1 - hi[0]), rng.uniform(-lo[1], imgsz - 1 - hi[1])])
    return pts + offset


def _rasterise(pts: np.ndarray, imgsz: int) -> np.ndarray:
    """A uint8 0/1 mask of the filled polygon (8-connected, no anti-aliasing, sub-pixel vertices)."""
    mask = np.zeros((imgsz, imgsz), np.uint8)
    fixed = np.rint(pts * (1 << _SUBPIXEL_SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [fixed], 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_SHIFT)
    return mask


def _background(rng: np.random.Generator, imgsz: int, noise: bool) -> np.ndarray:
    """A float32 BGR background: flat without ``noise``, else gradient + smooth blotches + faint lines."""
    base = rng.uniform(0, 255, 3).astype(np.float32)
    if not noise:
        return np.broadcast_to(base, (imgsz, imgsz, 3)).copy()
    other = np.clip(base + rng.normal(0, 50, 3), 0, 255).astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:imgsz, 0:imgsz].astype(np.float32) / (imgsz - 1)
    t = xx * np.cos(a) + yy * np.sin(a)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    image = base + (other - base) * t[..., None]
    blotches = rng.normal(0, 18, (4, 4, 3)).astype(np.float32)
    image += cv2.resize(blotches, (imgsz, imgsz), interpolation=cv2.INTER_CUBIC)
    lines = image.copy()
    for _ in range(int(rng.integers(2, 6))):
        p0 = tuple(int(v) for v in rng.integers(0, imgsz, 2))
        p1 = tuple(int(v) for v in rng.integers(0, imgsz, 2))
        colour = tuple(float(v) for v in np.clip(base + rng.normal(0, 60, 3), 0, 255))
        cv2.line(lines, p0, p1, colour, 1, cv2.LINE_8)
    return np.clip(0.6 * image + 0.4 * lines, 0, 255)


def _pick_colour(rng: np.random.Generator, under: np.ndarray, others: list[np.ndarray]) -> np.ndarray:
    """A random colour that contrasts with the background under the shape and with the other shapes' colours.

    Draws up to ``_COLOUR_TRIES`` candidates and keeps the first that clears both margins, else the one with the
    largest margin (deterministic either way).
    """
    best, best_margin = None, -np.inf
    for _ in range(_COLOUR_TRIES):
        c = rng.integers(0, 256, 3).astype(np.float32)
        margin = float(np.linalg.norm(c - under)) - _SHAPE_CONTRAST
        for o in others:
            margin = min(margin, float(np.linalg.norm(c - o)) - _SHAPE_SEPARATION)
        if margin >= 0:
            return c
        if margin > best_margin:
            best, best_margin = c, margin
    return best

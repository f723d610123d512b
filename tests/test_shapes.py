"""The synthetic shapes dataset: reproducible to the byte, labels that match the painted pixels, a safe cache."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from yolo_gd.datasets import shapes
from yolo_gd.datasets.check import check_dataset
from yolo_gd.datasets.shapes import DEFAULT_SHAPES, default_shapes_dir, generate_shapes
from yolo_gd.errors import UserError

TINY = dict(n_train=8, n_val=4, imgsz=64)


def files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` except data.yaml (which records the absolute path), by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and p.name != "data.yaml"}


def read_labels(path: Path) -> list[list[float]]:
    return [[float(v) for v in line.split()] for line in path.read_text().splitlines()]


def pixel_box(label: list[float], imgsz: int) -> tuple[float, float, float, float]:
    _, cx, cy, w, h = label
    return ((cx - w / 2) * imgsz, (cy - h / 2) * imgsz, (cx + w / 2) * imgsz, (cy + h / 2) * imgsz)


# --- determinism ------------------------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = generate_shapes(tmp_path / "a", seed=3, **TINY)
    b = generate_shapes(tmp_path / "b", seed=3, **TINY)
    fa, fb = files(a.parent), files(b.parent)
    assert len(fa) == 2 * (8 + 4)
    assert fa == fb
    # data.yaml differs only in the recorded absolute path
    assert a.read_text().replace(str(a.parent), "X") == b.read_text().replace(str(b.parent), "X")


def test_image_k_does_not_depend_on_split_size(tmp_path):
    big = generate_shapes(tmp_path / "big", seed=3, **TINY).parent
    small = generate_shapes(tmp_path / "small", seed=3, n_train=3, n_val=1, imgsz=64).parent
    small_files = files(small)
    assert len(small_files) == 2 * (3 + 1)
    assert all(files(big)[name] == content for name, content in small_files.items())


def test_different_seed_gives_different_images(tmp_path):
    a = files(generate_shapes(tmp_path / "a", seed=0, **TINY).parent)
    b = files(generate_shapes(tmp_path / "b", seed=1, **TINY).parent)
    pngs = [name for name in a if name.endswith(".png")]
    assert len(pngs) == 12
    assert all(a[name] != b[name] for name in pngs)


# --- layout and labels ------------------------------------------------------------------------------------------


def test_layout_and_yaml(tmp_path):
    y = generate_shapes(tmp_path / "s", seed=0, classes=["circle", "diamond"], **TINY)
    assert y == (tmp_path / "s" / "data.yaml").resolve()
    data = yaml.safe_load(y.read_text())
    assert data["path"] == str((tmp_path / "s").resolve())
    assert (data["train"], data["val"], data["nc"]) == ("images/train", "images/val", 2)
    assert data["names"] == {0: "circle", 1: "diamond"}
    assert data["generator"] == dict(
        name="yolo_gd.datasets.shapes", version=shapes.GENERATOR_VERSION, n_train=8, n_val=4, imgsz=64, seed=0,
        classes=["circle", "diamond"], max_objects=4, min_size=0.15, max_size=0.5, occlusion=True, noise=True,
    )
    for split, n in (("train", 8), ("val", 4)):
        names = [f"{k:06d}" for k in range(n)]
        assert sorted(p.stem for p in (tmp_path / "s" / "images" / split).iterdir()) == names
        assert sorted(p.stem for p in (tmp_path / "s" / "labels" / split).iterdir()) == names
    # nothing left next to it from the temporary folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_labels_are_valid_yolo_boxes(tmp_path):
    root = generate_shapes(tmp_path / "s", n_train=48, n_val=1, imgsz=96, seed=5, max_objects=6).parent
    counts = []
    for img in sorted((root / "images" / "train").glob("*.png")):
        image = cv2.imread(str(img), cv2.IMREAD_UNCHANGED)
        assert image.shape == (96, 96, 3) and image.dtype == np.uint8
        text = (root / "labels" / "train" / f"{img.stem}.txt").read_text()
        lines = text.splitlines()
        counts.append(len(lines))
        for line in lines:
            fields = line.split(" ")
            assert len(fields) == 5
            assert fields[0] in ("0", "1", "2")
            assert all(len(f.split(".")[1]) == 6 for f in fields[1:])  # 6 decimals
            _, cx, cy, w, h = map(float, fields)
            assert all(0 < v <= 1 for v in (cx, cy, w, h))
            x0, y0, x1, y1 = pixel_box([0, cx, cy, w, h], 96)
            assert x0 > -1e-3 and y0 > -1e-3 and x1 < 96 + 1e-3 and y1 < 96 + 1e-3
            assert min(x1 - x0, y1 - y0) >= 0.15 * 96 * 0.3  # no slivers: at least 30 % of the smallest size
    assert 1 <= min(counts) and max(counts) <= 6
    assert len(set(counts)) >= 4  # the count varies


@pytest.mark.parametrize("occlusion", [True, False])
def test_boxes_are_the_tight_boxes_of_the_painted_shapes(tmp_path, occlusion):
    """With noise off every shape is one flat colour on a flat background: each colour's tight box is a label."""
    kinds = list(shapes.SHAPE_CLASSES)
    root = generate_shapes(tmp_path / "s", n_train=40, n_val=1, imgsz=128, seed=11, classes=kinds, noise=False,
                           occlusion=occlusion, max_objects=5).parent
    n_boxes = n_occluded = 0
    for img in sorted((root / "images" / "train").glob("*.png")):
        image = cv2.imread(str(img))
        flat = image.reshape(-1, 3)
        colours, inverse, counts = np.unique(flat, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(image.shape[:2])
        background = int(np.argmax(counts))
        painted = []
        for c in range(len(colours)):
            if c == background:
                continue
            ys, xs = np.nonzero(inverse == c)
            painted.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
        labels = read_labels(root / "labels" / "train" / f"{img.stem}.txt")
        boxes = [tuple(round(v, 3) for v in pixel_box(lb, 128)) for lb in labels]
        assert sorted(boxes) == sorted(painted), img.name
        n_boxes += len(boxes)
        if occlusion:
            continue
        for lb in labels:  # unoccluded: the class matches the shape's fill of its box
            cls = kinds[int(lb[0])]
            x0, y0, x1, y1 = (int(round(v)) for v in pixel_box(lb, 128))
            patch = inverse[y0:y1, x0:x1]
            ids, n = np.unique(patch[patch != background], return_counts=True)
            fill = n.max() / patch.size
            if cls == "triangle":
                assert fill < 0.6, (img.name, lb)
            elif cls == "circle":
                assert abs((x1 - x0) - (y1 - y0)) <= 2 and 0.7 < fill < 0.87, (img.name, lb)
            elif cls == "rectangle":
                assert fill > 0.5, (img.name, lb)
    assert n_boxes >= 60


def test_occlusion_makes_shapes_overlap(tmp_path):
    """With occlusion on, shapes overlap often enough to matter (their boxes intersect)."""
    root = generate_shapes(tmp_path / "s", n_train=40, n_val=1, imgsz=128, seed=2, noise=False, max_objects=6,
                           max_size=0.6).parent
    overlaps = 0
    for lbl in sorted((root / "labels" / "train").glob("*.txt")):
        boxes = [pixel_box(lb, 128) for lb in read_labels(lbl)]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                overlaps += min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])
    assert overlaps >= 10


def test_generated_set_passes_check_dataset(tmp_path):
    y = generate_shapes(tmp_path / "s", seed=4, **TINY)
    summary = check_dataset(y)
    assert summary.nc == 3 and summary.names == {0: "rectangle", 1: "circle", 2: "triangle"}
    assert summary.splits["train"].images == 8 and summary.splits["train"].labels == 8
    assert summary.splits["val"].images == 4 and summary.splits["val"].labels == 4
    assert summary.splits["train"].boxes >= 8


def test_default_size_is_valid(tmp_path):
    # (How long it takes is a benchmark's question, not a test's: a timing here failed under load, not on the code.)
    y = generate_shapes(tmp_path / "s", **DEFAULT_SHAPES)
    summary = check_dataset(y)
    assert (summary.splits["train"].images, summary.splits["val"].images) == (256, 64)


def test_default_shapes_dir_is_under_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_shapes_dir() == tmp_path / "datasets" / "shapes"


# --- arguments --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_train=0), "n_train must be >= 1, got 0."),
        (dict(n_val=0), "n_val must be >= 1, got 0."),
        (dict(n_val=2.0), "n_val must be an integer, got 2.0."),
        (dict(imgsz=16), "imgsz must be >= 32, got 16."),
        (dict(imgsz=100), "imgsz must be a multiple of 32 (the YOLO stride), got 100: use e.g. 96."),
        (dict(max_objects=0), "max_objects must be >= 1, got 0."),
        (dict(min_size=0.0), "shape sizes must satisfy 0 < min_size <= max_size <= 1 (fractions of the image side), "
                             "got min_size=0.0, max_size=0.5."),
        (dict(min_size=0.6, max_size=0.5), "shape sizes must satisfy 0 < min_size <= max_size <= 1 (fractions of the "
                                           "image side), got min_size=0.6, max_size=0.5."),
        (dict(max_size=1.5), "shape sizes must satisfy 0 < min_size <= max_size <= 1 (fractions of the image side), "
                             "got min_size=0.15, max_size=1.5."),
        (dict(classes=("circl",)), "unknown shape 'circl'. Did you mean 'circle'? Valid shapes: circle, diamond, "
                                   "ellipse, rectangle, triangle."),
        (dict(classes=("hexagon",)), "unknown shape 'hexagon'. Valid shapes: circle, diamond, ellipse, rectangle, "
                                     "triangle."),
        (dict(classes=()), "classes must name at least one shape; valid shapes: rectangle, circle, triangle, ellipse, "
                           "diamond."),
        (dict(classes=("circle", "circle")), "classes must not repeat a shape, got ['circle', 'circle']."),
        (dict(occlusion="yes"), "occlusion must be True or False, got 'yes'."),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(UserError) as e:
        generate_shapes(tmp_path / "s", **kwargs)
    assert str(e.value) == message
    assert not (tmp_path / "s").exists()


# --- the cache --------------------------------------------------------------------------------------------------


def test_second_call_with_same_arguments_rewrites_nothing(tmp_path):
    y = generate_shapes(tmp_path / "s", seed=1, **TINY)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "s").rglob("*")}
    time.sleep(0.01)
    assert generate_shapes(tmp_path / "s", seed=1, **TINY) == y
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "s").rglob("*")} == before


def test_different_arguments_need_overwrite(tmp_path):
    out = tmp_path / "s"
    generate_shapes(out, seed=1, **TINY)
    with pytest.raises(UserError) as e:
        generate_shapes(out, seed=2, **TINY)
    assert str(e.value) == (
        f"shapes out dir {out.resolve()} holds a dataset generated with different parameters (seed: 1 -> 2): "
        f"pass overwrite=True to regenerate it, or choose another out dir."
    )
    assert yaml.safe_load((out / "data.yaml").read_text())["generator"]["seed"] == 1  # untouched

    generate_shapes(out, seed=2, overwrite=True, n_train=3, n_val=1, imgsz=64)
    assert yaml.safe_load((out / "data.yaml").read_text())["generator"]["seed"] == 2
    assert len(list((out / "images" / "train").iterdir())) == 3  # old files are gone, not mixed in


def test_a_folder_that_is_not_a_shapes_dataset_is_never_deleted(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(UserError) as e:
        generate_shapes(out, overwrite=True, **TINY)
    assert str(e.value) == (
        f"shapes out dir {out.resolve()} exists and is not a generated shapes dataset (no data.yaml with a "
        f"'generator' key): choose another out dir, or empty it first."
    )
    assert (out / "notes.txt").read_text() == "keep me"


def test_an_empty_existing_folder_is_used(tmp_path):
    (tmp_path / "s").mkdir()
    y = generate_shapes(tmp_path / "s", **TINY)
    assert y.is_file() and len(list((tmp_path / "s" / "images" / "train").iterdir())) == 8


def test_an_interrupted_generation_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    real_label_text = shapes.label_text
    calls = []

    def failing_label_text(boxes, imgsz):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_label_text(boxes, imgsz)

    monkeypatch.setattr(shapes, "label_text", failing_label_text)
    with pytest.raises(KeyboardInterrupt):
        generate_shapes(tmp_path / "s", **TINY)
    assert list(tmp_path.iterdir()) == []  # no out dir, no temporary folder

    monkeypatch.setattr(shapes, "label_text", real_label_text)
    y = generate_shapes(tmp_path / "s", **TINY)
    assert check_dataset(y).splits["train"].images == 8


def test_an_incomplete_copy_with_the_same_arguments_is_regenerated(tmp_path):
    y = generate_shapes(tmp_path / "s", seed=1, **TINY)
    reference = files(tmp_path / "s")
    (tmp_path / "s" / "images" / "train" / "000003.png").unlink()
    assert generate_shapes(tmp_path / "s", seed=1, **TINY) == y
    assert files(tmp_path / "s") == reference


def test_a_moved_dataset_gets_its_path_updated(tmp_path):
    generate_shapes(tmp_path / "a", seed=1, **TINY)
    (tmp_path / "a").rename(tmp_path / "b")
    image = tmp_path / "b" / "images" / "train" / "000000.png"
    mtime = image.stat().st_mtime_ns
    y = generate_shapes(tmp_path / "b", seed=1, **TINY)
    assert yaml.safe_load(y.read_text())["path"] == str((tmp_path / "b").resolve())
    assert image.stat().st_mtime_ns == mtime
    check_dataset(y)

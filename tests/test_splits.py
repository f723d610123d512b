"""yolo_gd.datasets.splits: one split's images, label files and label lines, checked directly on tiny folders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from yolo_gd.datasets.splits import SplitSummary, _check_label_file, check_split

YAML = Path("data.yaml")


@pytest.fixture
def root(tmp_path) -> Path:
    """images/train/{a,b,.hidden}.png, with a label file (two boxes) for a only."""
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    for name in ("a", "b", ".hidden"):
        cv2.imwrite(str(tmp_path / "images" / "train" / f"{name}.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n\n1 0.1 0.1 0.1 0.1\n")
    return tmp_path


def test_summary_counts_images_labels_boxes_and_skips_hidden_files(root):
    problems: list[str] = []
    s = check_split("train", "images/train", root, YAML, 2, problems)
    assert (s, s.backgrounds, problems) == (SplitSummary(images=2, labels=1, boxes=2), 1, [])


def test_a_list_of_folders_adds_up(root):
    problems: list[str] = []
    assert check_split("train", ["images/train", "images/train"], root, YAML, 2, problems).images == 4
    assert problems == []


def test_value_that_is_not_a_string(root):
    problems: list[str] = []
    assert check_split("val", 3, root, YAML, 2, problems) is None
    assert problems == ["data.yaml: 'val' must be a folder or a .txt list of images, got 3: e.g. 'val: images/val'"]


def test_value_naming_a_file_that_is_not_a_txt_list(root):
    problems: list[str] = []
    assert check_split("train", "images/train/a.png", root, YAML, 2, problems) is None
    assert problems == [(f"'train: images/train/a.png' in data.yaml names the file {root / 'images/train/a.png'}, "
                           f"which is neither an image folder nor a .txt list of images: point it at the image folder")]  # once: no "has no images" after it


def test_txt_list_line_that_is_not_an_image(root):
    (root / "train.txt").write_text("images/train/a.png\nlabels/train/a.txt\n")
    problems: list[str] = []
    assert check_split("train", "train.txt", root, YAML, 2, problems).images == 1
    assert problems == [f"{root / 'train.txt'}:2: 'labels/train/a.txt' is not an image file (suffixes: bmp, jpeg, "
                        f"jpg, png, tif, tiff, webp): remove the line"]


def test_label_file_that_is_not_utf8(tmp_path):
    bad = tmp_path / "x.txt"
    bad.write_bytes(b"\xff\xfe0 0.5")
    problems: list[str] = []
    assert _check_label_file(str(bad), 2, problems) == 0
    [p] = problems
    assert p.startswith(f"{bad} cannot be read (") and p.endswith("): rewrite it as UTF-8 text, one 'class cx cy w h' "
                                                                  "per line")


def test_label_lines_at_the_range_boundaries(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("1 0 1 1 1\n2 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1 0\n")
    problems: list[str] = []
    assert _check_label_file(str(f), 2, problems) == 1  # 0 and 1 are inside [0, 1]; class 2 is not < nc
    assert problems == [f"{f}:2: class id 2 is out of range [0, 2): use an id from names (0..1), or add the class "
                        f"to names", f"{f}:3: h 0 must be > 0: remove the empty box"]
    assert _check_label_file(str(f), None, []) == 2  # no nc: any integer class id counts


def test_missing_label_folders_are_listed_three_then_counted(tmp_path):
    for d in "abcde":
        (tmp_path / d / "images").mkdir(parents=True)
        cv2.imwrite(str(tmp_path / d / "images" / "i.png"), np.zeros((8, 8, 3), np.uint8))
    problems: list[str] = []
    assert check_split("train", list("abcde"), tmp_path, YAML, 1, problems) == SplitSummary(5, 0, 0)
    [p] = problems
    assert p.startswith(f"labels folder for split 'train' does not exist: {tmp_path / 'a' / 'labels'}, "
                        f"{tmp_path / 'b' / 'labels'}, {tmp_path / 'c' / 'labels'} and 2 more (")

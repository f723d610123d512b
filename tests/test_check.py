"""Dataset validation: every problem named with its file, line and fix, all of them in one error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from yolo_gd.datasets import check
from yolo_gd.datasets.check import DatasetSummary, SplitSummary, check_dataset, label_path, resolve_data
from yolo_gd.datasets.shapes import DEFAULT_SHAPES, generate_shapes
from yolo_gd.errors import UserError

REPO = Path(__file__).resolve().parents[1]
BCCD = REPO / "datasets" / "bccd" / "data.yaml"


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory) -> Path:
    return generate_shapes(tmp_path_factory.mktemp("src") / "tiny", n_train=4, n_val=2, imgsz=64, seed=0).parent


@pytest.fixture
def ds(tiny_source, tmp_path) -> Path:
    """A fresh copy of a tiny valid dataset (4 train, 2 val images) whose data.yaml has no ``path`` key."""
    root = tmp_path / "ds"
    shutil.copytree(tiny_source, root)
    write_yaml(root, train="images/train", val="images/val", nc=3, names={0: "rectangle", 1: "circle", 2: "triangle"})
    return root


def write_yaml(root: Path, **cfg) -> Path:
    (root / "data.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return root / "data.yaml"


def problems(root: Path) -> list[str]:
    """The problem lines of the error check_dataset raises for ``root`` (the summary line checked here)."""
    with pytest.raises(UserError) as e:
        check_dataset(root)
    first, *rest = str(e.value).split("\n")
    n = len(rest)
    assert first == f"dataset check failed for {root / 'data.yaml'}: {n} problem{'s' if n != 1 else ''}"
    assert all(line.startswith("  - ") for line in rest)
    return [line[4:] for line in rest]


def add_line(label: Path, line: str) -> int:
    """Append ``line`` to a label file; return its 1-based line number."""
    text = label.read_text()
    label.write_text(text + line + "\n")
    return len(text.splitlines()) + 1


# --- passing datasets -------------------------------------------------------------------------------------------


def test_valid_dataset_passes_with_counts(ds):
    s = check_dataset(ds / "data.yaml")
    assert s == check_dataset(ds)  # a folder holding data.yaml works too
    boxes = {split: sum(len(f.read_text().splitlines()) for f in (ds / "labels" / split).iterdir())
             for split in ("train", "val")}
    assert s == DatasetSummary(
        yaml_path=ds / "data.yaml", nc=3, names={0: "rectangle", 1: "circle", 2: "triangle"},
        splits={"train": SplitSummary(4, 4, boxes["train"]), "val": SplitSummary(2, 2, boxes["val"])},
    )


def test_shipped_bccd_passes():
    s = check_dataset(BCCD)
    assert s.yaml_path == BCCD
    assert (s.nc, s.names) == (3, {0: "RBC", 1: "WBC", 2: "Platelets"})
    assert (s.splits["train"].images, s.splits["train"].labels) == (292, 292)
    assert (s.splits["val"].images, s.splits["val"].labels) == (72, 72)
    assert s.splits["train"].boxes > 292 and s.splits["val"].boxes > 72
    assert set(s.splits) == {"train", "val"}


def test_images_without_labels_are_background(ds):
    (ds / "labels" / "train" / "000002.txt").unlink()
    s = check_dataset(ds)
    assert (s.splits["train"].images, s.splits["train"].labels, s.splits["train"].backgrounds) == (4, 3, 1)


def test_split_as_a_txt_list_of_images(ds):
    (ds / "train.txt").write_text("./images/train/000000.png\nimages/train/000001.png\n\n"
                                  f"{ds / 'images' / 'train' / '000002.png'}\n")
    write_yaml(ds, train="train.txt", val="images/val", names=["rectangle", "circle", "triangle"])
    s = check_dataset(ds)
    assert (s.splits["train"].images, s.splits["train"].labels) == (3, 3)


def test_missing_image_in_a_txt_list(ds):
    (ds / "train.txt").write_text("images/train/000000.png\nimages/train/nope.png\n")
    write_yaml(ds, train="train.txt", val="images/val", names=["rectangle", "circle", "triangle"])
    assert problems(ds) == [
        f"{ds / 'train.txt'}:2: listed image {ds / 'images' / 'train' / 'nope.png'} does not exist: remove the line, "
        f"or restore the image"
    ]


def test_path_key_relative_to_the_yaml(ds, tmp_path):
    shutil.move(ds, tmp_path / "elsewhere")
    (tmp_path / "cfg").mkdir()
    write_yaml(tmp_path / "cfg", path="../elsewhere", train="images/train", val="images/val", names=["a", "b", "c"])
    assert check_dataset(tmp_path / "cfg").splits["val"].images == 2


def test_uppercase_suffixes_and_subfolders_count(ds):
    sub = ds / "images" / "train" / "more"
    sub.mkdir()
    shutil.copy(ds / "images" / "train" / "000000.png", sub / "x.PNG")
    (ds / "labels" / "train" / "more").mkdir()
    shutil.copy(ds / "labels" / "train" / "000000.txt", ds / "labels" / "train" / "more" / "x.txt")
    (ds / "images" / "train" / "readme.md").write_text("not an image")
    s = check_dataset(ds)
    assert (s.splits["train"].images, s.splits["train"].labels) == (5, 5)


# --- the yaml ---------------------------------------------------------------------------------------------------


def test_missing_yaml(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(UserError) as e:
        check_dataset(missing)
    assert str(e.value) == (
        f"dataset check failed for {missing}: 1 problem\n"
        f"  - {missing} does not exist: pass the path of a data.yaml, or of a folder that holds one"
    )


def test_folder_without_yaml(tmp_path):
    assert problems(tmp_path) == [
        f"{tmp_path / 'data.yaml'} does not exist: the folder {tmp_path} has no data.yaml; pass the path of the "
        f"dataset's yaml file"
    ]


def test_yaml_that_does_not_parse(ds):
    (ds / "data.yaml").write_text("train: [images/train\nval: images/val\n")
    (p,) = problems(ds)
    assert p.startswith(f"{ds / 'data.yaml'} is not valid YAML (") and p.endswith("): fix its syntax")


def test_yaml_that_is_not_a_mapping(ds):
    (ds / "data.yaml").write_text("- images/train\n")
    assert problems(ds) == [
        f"{ds / 'data.yaml'} must be a YAML mapping with keys train, val and names, got list: see "
        f"datasets/bccd/data.yaml for an example"
    ]


def test_missing_keys(ds):
    write_yaml(ds, nc=3)
    y = ds / "data.yaml"
    assert problems(ds) == [
        f"{y} has no 'names' key: add the class names, e.g. 'names: {{0: cat, 1: dog}}'",
        f"{y} has no 'train' key: add e.g. 'train: images/train'",
        f"{y} has no 'val' key: add e.g. 'val: images/val'",
    ]


def test_nc_inconsistent_with_names(ds):
    write_yaml(ds, train="images/train", val="images/val", nc=4, names=["rectangle", "circle", "triangle"])
    assert problems(ds) == [
        f"{ds / 'data.yaml'}: nc is 4 but names lists 3 classes: set nc to 3, or fix names"
    ]


def test_names_with_gaps(ds):
    write_yaml(ds, train="images/train", val="images/val", names={0: "a", 2: "c"})
    assert problems(ds) == [
        f"{ds / 'data.yaml'}: names keys must be the class ids 0..1 without gaps, got [0, 2]: renumber them"
    ]


def test_missing_root_from_path_key(ds):
    write_yaml(ds, path="gone", train="images/train", val="images/val", names=["a", "b", "c"])
    assert problems(ds) == [
        f"dataset root {ds / 'gone'} (from 'path: gone' in data.yaml) does not exist: fix 'path', or remove it to "
        f"use the yaml's folder"
    ]


# --- folders ----------------------------------------------------------------------------------------------------


def test_missing_image_folder(ds):
    shutil.rmtree(ds / "images" / "val")
    assert problems(ds) == [
        f"image folder for split 'val' does not exist: {ds / 'images' / 'val'} (from 'val: images/val' in "
        f"data.yaml): create it, or fix 'val'"
    ]


def test_missing_labels_folder(ds):
    shutil.rmtree(ds / "labels" / "val")
    assert problems(ds) == [
        f"labels folder for split 'val' does not exist: {ds / 'labels' / 'val'} (Ultralytics finds each image's "
        f"labels by replacing the last '/images/' in its path with '/labels/'): create it with one .txt per image"
    ]


def test_empty_labels_folder(ds):
    for f in (ds / "labels" / "val").iterdir():
        f.unlink()
    assert problems(ds) == [
        f"split 'val' has no label files: none of its 2 images has a .txt in {ds / 'labels' / 'val'}: add one "
        f"'class cx cy w h' file per image"
    ]


def test_only_empty_label_files(ds):
    for f in (ds / "labels" / "val").iterdir():
        f.write_text("")
    assert problems(ds) == ["split 'val' has no boxes: all 2 label files are empty: add 'class cx cy w h' lines"]


def test_empty_split(ds):
    for f in (ds / "images" / "train").iterdir():
        f.unlink()
    assert problems(ds) == [
        "split 'train' has no images in 'train: images/train' (looked for bmp, jpeg, jpg, png, tif, tiff, webp "
        "files, recursively): add images, or fix 'train' in data.yaml"
    ]


def test_label_path_maps_the_last_images_folder():
    assert label_path("/d/images/x/images/train/a.b.jpg") == "/d/images/x/labels/train/a.b.txt"
    assert label_path("/d/pics/a.png") == "/d/pics/a.txt"


# --- label lines ------------------------------------------------------------------------------------------------


def test_wrong_field_count(ds):
    label = ds / "labels" / "train" / "000001.txt"
    n = add_line(label, "0 0.5 0.5 0.1")
    m = add_line(label, "0 0.1 0.1 0.2 0.1 0.2 0.2")
    assert problems(ds) == [
        f"{label}:{n}: expected 5 fields 'class cx cy w h', got 4: fix the line",
        f"{label}:{m}: expected 5 fields 'class cx cy w h', got 7 (segmentation polygons are not supported): fix "
        f"the line",
    ]


def test_non_numeric_fields(ds):
    label = ds / "labels" / "train" / "000000.txt"
    n = add_line(label, "car 0.5 0.5 0.1 x")
    assert problems(ds) == [
        f"{label}:{n}: class 'car' is not a number: fix the line",
        f"{label}:{n}: h 'x' is not a number: fix the line",
    ]


def test_class_id_out_of_range_or_not_integer(ds):
    label = ds / "labels" / "val" / "000000.txt"
    n = add_line(label, "3 0.5 0.5 0.1 0.1")
    m = add_line(label, "1.5 0.5 0.5 0.1 0.1")
    k = add_line(label, "-1 0.5 0.5 0.1 0.1")
    assert problems(ds) == [
        f"{label}:{n}: class id 3 is out of range [0, 3): use an id from names (0..2), or add the class to names",
        f"{label}:{m}: class id '1.5' is not an integer: use a class id from names",
        f"{label}:{k}: class id -1 is out of range [0, 3): use an id from names (0..2), or add the class to names",
    ]


def test_coordinates_outside_unit_range(ds):
    label = ds / "labels" / "train" / "000003.txt"
    n = add_line(label, "0 1.2 0.5 0.1 0.1")
    m = add_line(label, "0 0.5 -0.1 0.1 1.5")
    k = add_line(label, "0 0.5 0.5 0 0.1")
    assert problems(ds) == [
        f"{label}:{n}: cx 1.2 is outside [0, 1]: coordinates must be normalised by the image width and height",
        f"{label}:{m}: cy -0.1 is outside [0, 1]: coordinates must be normalised by the image width and height",
        f"{label}:{m}: h 1.5 is outside [0, 1]: coordinates must be normalised by the image width and height",
        f"{label}:{k}: w 0 must be > 0: remove the empty box",
    ]


def test_unreadable_image(ds):
    bad = ds / "images" / "train" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg" * 10)
    (ds / "images" / "val" / "empty.png").write_bytes(b"")
    assert problems(ds) == [
        f"{bad} cannot be decoded as an image (corrupt or not really a jpg): replace it, or delete it and its label "
        f"file",
        f"{ds / 'images' / 'val' / 'empty.png'} cannot be decoded as an image (corrupt or not really a png): "
        f"replace it, or delete it and its label file",
    ]


def test_all_problems_in_one_error_capped(ds, monkeypatch):
    shutil.rmtree(ds / "images" / "val")
    label = ds / "labels" / "train" / "000000.txt"
    lines = [add_line(label, "9 0.5 0.5 0.1 0.1") for _ in range(25)]
    with pytest.raises(UserError) as e:
        check_dataset(ds)
    text = str(e.value).split("\n")
    assert text[0] == f"dataset check failed for {ds / 'data.yaml'}: 26 problems"
    assert len(text) == 1 + check.MAX_PROBLEMS + 1
    assert text[1] == f"  - {label}:{lines[0]}: class id 9 is out of range [0, 3): use an id from names (0..2), or " \
                      f"add the class to names"
    assert text[-1] == "  ... and 6 more"


# --- resolve_data -----------------------------------------------------------------------------------------------


def test_resolve_bccd():
    assert resolve_data("bccd") == BCCD
    assert resolve_data("BCCD") == BCCD


def test_resolve_paths(ds):
    assert resolve_data(ds) == ds / "data.yaml"
    assert resolve_data(str(ds / "data.yaml")) == ds / "data.yaml"


def test_resolve_folder_without_yaml(tmp_path):
    with pytest.raises(UserError) as e:
        resolve_data(tmp_path)
    assert str(e.value) == (f"dataset folder {tmp_path} has no data.yaml: pass the path of its yaml file, or add a "
                            f"data.yaml (train, val, names) to the folder.")


def test_resolve_unknown_name_suggests():
    with pytest.raises(UserError) as e:
        resolve_data("bcd")
    assert str(e.value) == ("unknown dataset 'bcd'. Did you mean 'bccd'? Valid datasets: bccd, shapes. Or pass the "
                            "path of a data.yaml (or of a folder that holds one).")


def test_resolve_missing_path():
    with pytest.raises(UserError) as e:
        resolve_data("no/such/data.yaml")
    assert str(e.value) == ("dataset 'no/such/data.yaml' does not exist: pass the path of a data.yaml (or of a folder "
                            "that holds one), or one of the known names: bccd, shapes.")


def test_resolve_shapes_generates_the_default_set_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    y = resolve_data("shapes")
    assert y == tmp_path / "datasets" / "shapes" / "data.yaml"
    assert yaml.safe_load(y.read_text())["generator"]["n_train"] == DEFAULT_SHAPES["n_train"]
    mtime = y.stat().st_mtime_ns
    assert resolve_data("shapes") == y and y.stat().st_mtime_ns == mtime
    assert check_dataset(y).splits["train"].images == 256


def test_resolve_bccd_falls_back_to_the_installed_package_data(tmp_path, monkeypatch):
    """Installed from a wheel there is no checkout around the package: the yaml comes from yolo_gd/_shipped."""
    from yolo_gd import shipped

    package = tmp_path / "site-packages" / "yolo_gd"
    monkeypatch.setattr(shipped, "PACKAGE", package)
    (package / "_shipped" / "bccd").mkdir(parents=True)
    (package / "_shipped" / "bccd" / "data.yaml").write_text("train: images/train\n")
    assert resolve_data("bccd") == package / "_shipped" / "bccd" / "data.yaml"

    (package / "_shipped" / "bccd" / "data.yaml").unlink()
    with pytest.raises(UserError) as e:
        resolve_data("bccd")
    in_repo = tmp_path / "site-packages" / "datasets" / "bccd" / "data.yaml"
    assert str(e.value) == (
        f"the shipped BCCD dataset is missing (looked in {in_repo} and {package / '_shipped' / 'bccd' / 'data.yaml'}"
        f"): reinstall yolo_gd, or pass the path of a data.yaml."
    )


def test_resolve_shapes_with_a_custom_set_in_the_default_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    generate_shapes(tmp_path / "datasets" / "shapes", n_train=2, n_val=1, imgsz=64)
    with pytest.raises(UserError) as e:
        resolve_data("shapes")
    out = tmp_path / "datasets" / "shapes"
    assert str(e.value) == (
        f"shapes out dir {out} holds a dataset generated with different parameters (n_train: 2 -> 256, n_val: 1 -> "
        f"64, imgsz: 64 -> 128): pass overwrite=True to regenerate it, or choose another out dir. ('shapes' means the "
        f"default set {DEFAULT_SHAPES} in {out}: pass the path of your own shapes data.yaml instead, or delete that "
        f"folder.)"
    )

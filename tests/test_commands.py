"""What the CLI calls for sweeps: compare's default of two trials side by side on a multi-core CPU."""

from __future__ import annotations

import pytest

from yolo_gd.ablate import commands
from yolo_gd.ablate.commands import compare_side_by_side


@pytest.mark.parametrize(("opts", "cores", "expected"), [
    ({}, 2, True),
    ({"devices": "cpu"}, 8, True),
    ({}, 1, False),  # one core: one after the other
    ({"workers": 1}, 8, False),  # the user's choice wins
    ({"workers": 3}, 8, False),
    ({"devices": "0"}, 8, False),  # GPUs: per_device decides
    ({"backend": "ray"}, 8, False),
])
def test_compare_runs_side_by_side_only_on_a_multicore_cpu_by_default(opts, cores, expected):
    assert compare_side_by_side(opts, cores=cores) is expected


def test_compare_passes_workers_2_on_this_cpu(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(commands, "ablate_command", lambda spec, progress, **o: seen.update(o) or tmp_path)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    commands.compare_command(progress=None, out=str(tmp_path))
    assert seen == {"workers": 2, "out": str(tmp_path)}
    commands.compare_command(progress=None, workers=1)
    assert seen["workers"] == 1

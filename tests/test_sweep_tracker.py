"""A sweep as an MLflow parent run with its trials' runs nested under it, with the real mlflow on a sqlite store.

The trials train in their own processes (not under pytest, so Ultralytics' MLflow integration opens their runs
there, as it does for a user); the store is a sqlite file in a temporary folder (``MLFLOW_TRACKING_URI``), read
back with ``MlflowClient``.
"""

from __future__ import annotations

import os

import pytest

from conftest import require
from yolo_gd.ablate.commands import ablate_command
from yolo_gd.ablate.spec import load_spec
from yolo_gd.ablate.sweep_tracker import PARENT_TAG, sweep_parent_run, trial_axes
from yolo_gd.inject.trackers import PARENT_ENV
from yolo_gd.telemetry.sinks import read_steps
from yolo_gd.telemetry.tracker_sinks import series


@pytest.fixture
def mlflow_on(tmp_path, monkeypatch):
    """MLflow on in Ultralytics' settings (conftest turns it off), a sqlite store in ``tmp_path``, no GitHub
    Actions variables (with them Ultralytics' integration stays quiet in the trial processes too)."""
    from ultralytics.utils import SETTINGS

    require("mlflow")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # artifacts of a database store go to ./mlruns
    for name in ("GITHUB_ACTIONS", "GITHUB_WORKFLOW", "RUNNER_OS", "MLFLOW_EXPERIMENT_NAME", PARENT_ENV):
        monkeypatch.delenv(name, raising=False)
    SETTINGS.update(mlflow=True)
    try:
        yield uri
    finally:
        SETTINGS.update(mlflow=False)


def _spec_text(data, name="grouped") -> str:
    return (f"name: {name}\n"
            f"base: {{model: yolo11n.yaml, data: '{data}', imgsz: 32, batch: 4, nbs: 4, workers: 0, plots: false, "
            f"amp: false, warmup_epochs: 1}}\n"
            "axes:\n  optimizer:\n    - {name: sgd, lr: 0.01}\n    - {name: adamw, lr: 0.001}\n"
            "seeds: [0]\nbudget: {epochs: 1}\n")


def test_trial_axes_name_what_tells_a_trial_apart(tmp_path):
    text = _spec_text("shapes") + "protocol: tuned\ntune: {lrs: [0.001], epochs: 1, seeds: [3]}\n"
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    sweep = load_spec(path)
    (tune_sgd, _) = sweep.tune_trials()
    assert trial_axes(sweep, tune_sgd) == {"config": "sgd-tune-lr0.001", "optimizer": "sgd", "lr": "0.001",
                                           "data": "shapes", "seed": "3", "stage": "tune"}
    (main_sgd, _) = sweep.main_trials({"sgd": 0.01, "adamw": 0.001})
    assert trial_axes(sweep, main_sgd) == {"config": "sgd", "optimizer": "sgd", "lr": "0.01",
                                           "data": "shapes", "seed": "0", "stage": "main"}


def test_no_parent_run_with_mlflow_off(tmp_path, monkeypatch):
    monkeypatch.delenv(PARENT_ENV, raising=False)
    lines = []
    with sweep_parent_run(tmp_path, lines.append) as run_id:  # conftest: mlflow=False in Ultralytics' settings
        assert run_id is None and PARENT_ENV not in os.environ
    assert lines == [] and not (tmp_path / "mlflow.db").exists()


def test_an_unreachable_server_is_one_line_and_the_sweep_goes_on(mlflow_on, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # port 9 (discard): nothing listens
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    lines = []
    with sweep_parent_run(tmp_path / "sw", lines.append) as run_id:
        assert run_id is None and PARENT_ENV not in os.environ
    assert len(lines) == 1 and lines[0].startswith("[ablate] MLflow: no parent run for the sweep (")
    assert "\n" not in lines[0] and lines[0].endswith("; the sweep goes on")


@pytest.mark.slow
def test_mlflow_a_sweep_is_a_parent_run_with_its_trials_nested_and_the_report_attached(mlflow_on, tmp_path):
    from mlflow.tracking import MlflowClient

    from yolo_gd.datasets.shapes import generate_shapes

    data = generate_shapes(tmp_path / "small", n_train=16, n_val=8, imgsz=32, seed=0)
    spec = tmp_path / "grouped.yaml"
    spec.write_text(_spec_text(data), encoding="utf-8")
    sweep_dir = ablate_command(spec, workers=2, out=tmp_path / "runs", progress=None)
    assert PARENT_ENV not in os.environ

    client = MlflowClient(mlflow_on)
    experiment_id = client.get_experiment_by_name(str(sweep_dir)).experiment_id
    (parent,) = client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{sweep_dir}'")
    assert parent.info.status == "FINISHED" and parent.info.run_name == "grouped"
    report = {f.path for f in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.html", "report/report.md", "report/summary.csv"} <= report

    children = client.search_runs([experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(r.info.run_name for r in children) == ["adamw-lr0.001-s0", "sgd-lr0.01-s0"]
    for run in children:
        axes = {k: v for k, v in run.data.params.items() if k.startswith("yolo_gd.axis.")}
        optimizer, lr = ("sgd", "0.01") if run.info.run_name.startswith("sgd") else ("adamw", "0.001")
        assert axes == {"yolo_gd.axis.config": f"{optimizer}-lr{lr}", "yolo_gd.axis.optimizer": optimizer,
                        "yolo_gd.axis.lr": lr, "yolo_gd.axis.data": str(data), "yolo_gd.axis.seed": "0",
                        "yolo_gd.axis.stage": "main"}
        assert run.data.tags["yolo_gd.sweep"] == "grouped" and run.info.status == "FINISHED"
        steps = read_steps(sweep_dir / run.info.run_name)
        keys, step_axis, values = series(steps)
        history = sorted(client.get_metric_history(run.info.run_id, "yolo_gd/grad_norm"), key=lambda m: m.step)
        assert [m.value for m in history] == values[:, keys.index("yolo_gd/grad_norm")].tolist()
        assert "metrics/mAP50B" in run.data.metrics  # Ultralytics' own epoch metrics: the same run

    ablate_command(spec, out=tmp_path / "runs", progress=None)  # a rerun (nothing left to train): the same parent
    again = client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{sweep_dir}'")
    assert [r.info.run_id for r in again] == [parent.info.run_id] and again[0].info.status == "FINISHED"

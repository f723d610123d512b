"""Per-step telemetry in the tracker run Ultralytics' own integration opened, with the real packages offline.

MLflow: Ultralytics' integration only logs under pytest when the test's name holds ``test_mlflow``
(``callbacks/mlflow.py``), so every training test here is named so; its store is a sqlite file in a temporary
folder (``MLFLOW_TRACKING_URI``), read back with ``MlflowClient``. W&B: its integration does not load under pytest at
all, so the W&B training runs in a child process (tests/tracker_worker.py) and the offline run file is read back.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import require
from wandb_records import finished_records, history_rows
from yolo_gd.ablate.worker import tracker_env
from yolo_gd.inject.attach import attach, compose
from yolo_gd.inject.config import InjectConfig
from yolo_gd.inject.run import Attachment
from yolo_gd.inject.trackers import TrackerBridge, wandb_needs_offline
from yolo_gd.telemetry.sinks import read_steps
from yolo_gd.telemetry.tracker_sinks import STEP_AXIS, clearml_names, series

ARGS = dict(epochs=1, imgsz=32, batch=4, nbs=4, workers=0, seed=0, deterministic=True, plots=False, verbose=False,
            amp=False, warmup_epochs=1, exist_ok=False)
SERIES = ("grad_norm", "loss/box_loss", "loss/cls_loss", "loss/dfl_loss", "epoch", "images_seen")


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """16 train / 8 val shapes images at 32 px: 4 batches of 4, 4 optimizer steps at nbs 4."""
    from yolo_gd.datasets.shapes import generate_shapes

    return generate_shapes(tmp_path_factory.mktemp("shapes") / "small", n_train=16, n_val=8, imgsz=32, seed=0)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One sqlite store (MLflow's default kind) for the module, as MLFLOW_TRACKING_URI. The working directory moves
    there too: with a database store MLflow puts artifacts (Ultralytics logs the weights) under ``./mlruns``."""
    from ultralytics.utils import SETTINGS

    require("mlflow")
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    SETTINGS.update(mlflow=True)  # conftest turns it off for the session
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MLFLOW_TRACKING_URI", uri)
            mp.chdir(folder)
            yield uri
    finally:
        SETTINGS.update(mlflow=False)


def _train(data, project, name, callbacks=(), **inject):
    from ultralytics import YOLO

    model = YOLO("yolo11n.yaml")
    attach(model, **inject)
    for event, fn in callbacks:
        model.add_callback(event, fn)
    model.train(data=str(data), project=str(project), name=name, **ARGS)
    return Path(project) / name


def _only_run(uri, project):
    """The one MLflow run of the experiment Ultralytics named after ``project``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name(str(project)).experiment_id])
    return client, run


def _assert_series_equal_step_table(client, run, save_dir):
    steps = read_steps(save_dir)
    keys, step_axis, values = series(steps)
    assert {"yolo_gd/grad_norm", "yolo_gd/loss/box_loss"} <= set(keys)
    assert any(k.startswith("yolo_gd/lr/") for k in keys)
    for c, key in enumerate(keys):
        history = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
        assert [m.step for m in history] == step_axis.tolist(), key
        assert [m.value for m in history] == values[:, c].tolist(), key
    # Ultralytics' own epoch metrics are in the same run
    assert {"metrics/mAP50B", "train/box_loss", "lr/pg0"} <= set(run.data.metrics)
    return steps


@pytest.fixture(scope="module")
def observed(small_data, store, tmp_path_factory):
    project = tmp_path_factory.mktemp("observed")
    return project, _train(small_data, project, "obs")


@pytest.mark.slow
def test_mlflow_observe_only_run_holds_the_step_table(store, observed):
    project, save_dir = observed
    client, run = _only_run(store, project)
    steps = _assert_series_equal_step_table(client, run, save_dir)
    assert len(steps) == 4


@pytest.mark.slow
def test_mlflow_injected_run_holds_the_step_table_flushed_mid_epoch(store, small_data, tmp_path, monkeypatch):
    """Also a sweep trial's labels: yolo_gd's options as parameters, the sweep, config and seed as tags."""
    for name, value in tracker_env({"sweep": "sw", "config": "sgd", "seed": 1}, {}).items():
        monkeypatch.setenv(name, value)
    save_dir = _train(small_data, tmp_path, "sgd", optimizer="sgd", telemetry_every=2)
    client, run = _only_run(store, tmp_path)
    steps = _assert_series_equal_step_table(client, run, save_dir)
    assert len(steps) == 4 and steps["optimizer"].iloc[0] == "SGD"
    assert {k: v for k, v in run.data.params.items() if k.startswith("yolo_gd.")} == {
        "yolo_gd.optimizer": "sgd", "yolo_gd.telemetry_every": "2"}
    assert {k: v for k, v in run.data.tags.items() if k.startswith("yolo_gd.")} == {
        "yolo_gd.sweep": "sw", "yolo_gd.config": "sgd", "yolo_gd.seed": "1"}


@pytest.mark.slow
def test_mlflow_failing_tracker_leaves_training_untouched(store, small_data, observed, tmp_path):
    """The run is deleted under the training (as a server that went away would fail it): the first flush fails, one
    line says so, and the training is step for step the observe-only one."""
    from mlflow.tracking import MlflowClient
    from ultralytics.utils import LOGGER

    def delete_run(trainer):  # runs after yolo_gd's TrackerBridge connected its sink
        import mlflow

        MlflowClient(store).delete_run(mlflow.active_run().info.run_id)

    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    LOGGER.addHandler(handler)
    try:
        save_dir = _train(small_data, tmp_path, "obs", callbacks=[("on_train_start", delete_run)])
    finally:
        LOGGER.removeHandler(handler)
    ours = [line for line in lines if "yolo_gd: MLflow per-step logging stopped" in line]
    assert len(ours) == 1 and "\n" not in ours[0]
    expected, got = read_steps(observed[1]), read_steps(save_dir)
    cols = ["step", "grad_norm", "loss_backprop", "loss/box_loss", "lr/weight"]
    assert got[cols].equals(expected[cols])
    assert (save_dir / "weights" / "last.pt").exists()


def test_the_steps_flags_reach_the_bridge():
    parts = compose(Attachment(InjectConfig(mlflow_steps=False)))
    (bridge,) = [p for p in parts if isinstance(p, TrackerBridge)]
    assert (bridge.mlflow, bridge.wandb) == (False, True)
    assert not any(isinstance(p, TrackerBridge) for p in compose(Attachment(InjectConfig(telemetry="off"))))


def test_wandb_offline_only_without_mode_or_key(tmp_path):
    none = tmp_path / "netrc"
    none.write_text("")
    assert wandb_needs_offline({"NETRC": str(none)})
    assert not wandb_needs_offline({"NETRC": str(none), "WANDB_MODE": "online"})
    assert not wandb_needs_offline({"NETRC": str(none), "WANDB_API_KEY": "x" * 40})
    none.write_text("machine api.wandb.ai login user password " + "x" * 40 + "\n")
    assert not wandb_needs_offline({"NETRC": str(none)})
    assert wandb_needs_offline({"NETRC": str(none), "WANDB_BASE_URL": "https://wandb.example.com"})


def _worker(data, tmp_path, name, tracker, **extra) -> subprocess.CompletedProcess:
    """tests/tracker_worker.py as a sweep trial 'sw' (config sgd, seed 0), with only ``tracker`` on in Ultralytics'
    settings, no tracker configuration from outside (and no pytest or GitHub variables: Ultralytics' TESTS_RUNNING),
    a home of its own in ``tmp_path``."""
    strip = ("PYTEST", "GITHUB_", "RUNNER_", "WANDB_", "COMET_", "CLEARML_", "MLFLOW_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(strip)}
    env.update(tracker_env({"sweep": "sw", "config": "sgd", "seed": 0}, {}))
    env.update(YOLO_CONFIG_DIR=str(tmp_path / "settings"), HOME=str(tmp_path / "home"),
               PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")]), **extra)
    worker = Path(__file__).with_name("tracker_worker.py")
    return subprocess.run([sys.executable, str(worker), str(data), str(tmp_path / "runs"), name, tracker], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_wandb_offline_run_holds_the_step_table(small_data, tmp_path):
    """No key, no WANDB_MODE: the run is offline, and its history holds the step table beside Ultralytics' epoch
    metrics (one run file: the same run). As a sweep trial its group is the sweep and its config has yolo_gd's
    options."""
    require("wandb")
    netrc = tmp_path / "netrc"
    netrc.write_text("")
    done = _worker(small_data, tmp_path, "wb", "wandb", NETRC=str(netrc), WANDB_CONFIG_DIR=str(tmp_path / "wbcfg"),
                   WANDB_SILENT="true")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    save_dir = tmp_path / "runs" / "wb"
    assert [p.parent.name.split("-")[0] for p in save_dir.rglob("*.wandb")] == ["offline"]
    rows = history_rows(save_dir)
    ours = [r for r in rows if STEP_AXIS in r]
    steps = read_steps(save_dir)
    keys, step_axis, values = series(steps)
    assert [r[STEP_AXIS] for r in ours] == step_axis.tolist() and len(ours) == 4
    for c, key in enumerate(keys):
        assert [r[key] for r in ours] == values[:, c].tolist(), key
    assert any("metrics/mAP50(B)" in r for r in rows) and any("train/box_loss" in r for r in rows)
    records = finished_records(save_dir)
    assert any(r.WhichOneof("record_type") == "metric" and r.metric.glob_name == "yolo_gd/*"
               and r.metric.step_metric == STEP_AXIS for r in records)
    assert {r.run.run_group for r in records if r.WhichOneof("record_type") == "run"} == {"sw"}
    config = {i.key: json.loads(i.value_json) for r in records if r.WhichOneof("record_type") == "config"
              for i in r.config.update}
    labels = (config["yolo_gd.optimizer"], config["yolo_gd.telemetry_every"], config["yolo_gd.sweep"])
    assert labels == ("sgd", "2", "sw")


@pytest.mark.slow
def test_comet_offline_experiment_holds_the_step_table(small_data, tmp_path):
    """COMET_START_ONLINE=0: the offline archive's messages hold the step table (step = optimizer step) beside
    Ultralytics' epoch metrics, and yolo_gd's options as parameters; the training equals one with no tracker."""
    require("comet_ml")
    done = _worker(small_data, tmp_path, "cm", "comet", COMET_START_ONLINE="0",
                   COMET_OFFLINE_DIRECTORY=str(tmp_path / "comet"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (archive,) = (tmp_path / "comet").glob("*.zip")  # one experiment: the one Ultralytics started
    with zipfile.ZipFile(archive) as z:
        messages = [json.loads(line) for line in z.read("messages.json").decode().splitlines()]
    metrics = [m["payload"]["metric"] for m in messages if m["type"] == "metric_msg"]
    steps = read_steps(tmp_path / "runs" / "cm")
    keys, step_axis, values = series(steps)
    assert len(steps) == 4 and "yolo_gd/grad_norm" in keys
    for c, key in enumerate(keys):
        points = [(m["step"], m["epoch"], m["metricValue"]) for m in metrics if m["metricName"] == key]
        assert points == [(s, 0, v) for s, v in zip(step_axis.tolist(), values[:, c].tolist())], key
    assert {"metrics/mAP50(B)", "train/box_loss"} <= {m["metricName"] for m in metrics}
    params = {m["payload"]["param"]["paramName"]: m["payload"]["param"]["paramValue"] for m in messages
              if m["type"] == "parameter_msg"}
    assert (params["yolo_gd.optimizer"], params["yolo_gd.telemetry_every"]) == ("sgd", "2")
    # comet_ml draws from Python's random at import and start (inject/tracker_rng.py): the training is still the one
    # with every tracker off, step for step
    off = _worker(small_data, tmp_path, "off", "none")
    assert off.returncode == 0, off.stdout[-2000:] + off.stderr[-2000:]
    alike = list(SERIES[:4])
    assert read_steps(tmp_path / "runs" / "off")[alike].equals(steps[alike])


@pytest.mark.slow
def test_clearml_offline_task_holds_the_step_table(small_data, tmp_path):
    """CLEARML_OFFLINE_MODE=1: the offline session's scalars hold the step table (iteration = optimizer step) beside
    Ultralytics' epoch scalars. Ultralytics' own ClearML callback then fails the training at its very end in offline
    mode (``task.update_output_model`` -> ``'DummyModel' object has no attribute 'locked'``, clearml 2.1.12,
    ultralytics 8.4.190, without yolo_gd too): after yolo_gd's last flush, which runs first."""
    require("clearml")
    done = _worker(small_data, tmp_path, "cl", "clearml", CLEARML_OFFLINE_MODE="1")
    if done.returncode != 0:  # the upstream failure, and only that one
        assert "'DummyModel' object has no attribute 'locked'" in done.stderr, done.stderr[-2000:]
    (session,) = (tmp_path / "home" / ".clearml" / "cache" / "offline").glob("offline-*/metrics.jsonl")
    events = [e for line in session.read_text().splitlines() for e in json.loads(line)]
    scalars = [e for e in events if e["type"] == "training_stats_scalar"]
    steps = read_steps(tmp_path / "runs" / "cl")
    keys, step_axis, values = series(steps)
    assert len(steps) == 4 and "yolo_gd/grad_norm" in keys
    for c, key in enumerate(keys):
        title, name = clearml_names(key)
        points = [(e["iter"], e["value"]) for e in scalars if (e["metric"], e["variant"]) == (title, name)]
        assert points == list(zip(step_axis.tolist(), values[:, c].tolist())), key
    assert ("train", "train/box_loss") in {(e["metric"], e["variant"]) for e in scalars}


@pytest.mark.slow
def test_mlflow_resumed_run_continues_the_step_axis_without_repeats(store, small_data, tmp_path):
    """Ultralytics opens a new MLflow run when a training resumes; yolo_gd's series go on in it from the resumed
    step: the two runs hold the step table between them, each step once, with the table's values."""
    import yolo_gd
    from mlflow.tracking import MlflowClient

    keep = {k: v for k, v in ARGS.items() if k not in ("epochs", "exist_ok")}
    yolo_gd.train(model="yolo11n.yaml", data=str(small_data), optimizer="sgd", epochs=1, project=str(tmp_path),
                  name="r", **keep)
    yolo_gd.train(model=str(tmp_path / "r" / "weights" / "last.pt"), resume=True, optimizer="sgd", epochs=2)
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name(str(tmp_path)).experiment_id],
                              order_by=["attributes.start_time ASC"])
    keys, step_axis, values = series(read_steps(tmp_path / "r"))
    c = keys.index("yolo_gd/grad_norm")
    assert len(runs) == 2 and step_axis.tolist() == list(range(8))
    logged = [sorted((m.step, m.value) for m in client.get_metric_history(r.info.run_id, keys[c])) for r in runs]
    assert [[s for s, _ in run] for run in logged] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [v for run in logged for _, v in run] == values[:, c].tolist()

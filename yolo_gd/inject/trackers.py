"""Per-step telemetry into the tracker runs Ultralytics' own integrations opened (MLflow, W&B, Comet, ClearML).

At ``on_train_start`` (the integrations open their runs at ``on_pretrain_routine_end``, after yolo_gd's callbacks
for that event) :class:`TrackerBridge` asks the host which runs are open and adds a sink per run to the run's
recorder; the recorder then hands each flushed frame to them (telemetry/tracker_sinks.py). Nothing is sent to a tracker
the user did not enable in Ultralytics' settings, or whose integration did not open a run; ``mlflow_steps=false``
(``wandb_steps``, ``comet_steps``, ``clearml_steps``) keeps yolo_gd's series out of that tracker while Ultralytics'
epoch metrics still go there.
The run also gets yolo_gd's options as parameters (``yolo_gd.optimizer``...; Ultralytics logs only its own args)
and, in a sweep trial, the tags ``yolo_gd.sweep`` / ``yolo_gd.config`` / ``yolo_gd.seed`` (W&B: the sweep is the
run's ``group``, set by the trial's ``WANDB_RUN_GROUP``).
A tracker that fails (here or at a later flush) is reported once, in one line, and training goes on.

Local by default: before W&B's integration opens its run (``on_pretrain_routine_end``; yolo_gd's callbacks for an
event run before the integrations'), a W&B integration with no key configured (no ``WANDB_API_KEY``, identity
token file or ``.netrc`` entry) and no ``WANDB_MODE`` runs offline (``WANDB_MODE=offline``): Ultralytics' own
``wandb.init`` would otherwise ask for a key, or without a terminal raise ``UsageError: No API key configured``
(wandb 0.31) and end the training. MLflow needs nothing: its default store is local.
"""

from __future__ import annotations

import netrc
import os
from urllib.parse import urlparse

from yolo_gd.inject.host import Host, rank


#: What a sweep trial's process is (set by ``ablate/worker.py``): run tags ``yolo_gd.sweep``, ``.config``, ``.seed``.
SWEEP_ENV = {"sweep": "YOLO_GD_SWEEP", "config": "YOLO_GD_SWEEP_CONFIG", "seed": "YOLO_GD_SWEEP_SEED"}


#: A sweep trial's axes (``ablate/sweep_tracker.py``'s ``trial_axes``, as JSON): parameters ``yolo_gd.axis.<axis>``.
AXES_ENV = "YOLO_GD_SWEEP_AXES"
#: The sweep's MLflow parent run (set by the sweep process, ``ablate/sweep_tracker.py``): the trial's run is tagged
#: ``mlflow.parentRunId`` with it.
PARENT_ENV = "YOLO_GD_MLFLOW_PARENT"


def sweep_tags(environ) -> dict[str, str]:
    """The tracker tags of a sweep trial (none outside a sweep)."""
    return {f"yolo_gd.{key}": environ[name] for key, name in SWEEP_ENV.items() if environ.get(name)}


def sweep_axes(environ) -> dict[str, str]:
    """A sweep trial's axes as yolo_gd parameters (``axis.lr``...; none outside a sweep)."""
    import json

    return {f"axis.{k}": str(v) for k, v in json.loads(environ.get(AXES_ENV) or "{}").items()}


class TrackerBridge:
    """Connects the recorder to the open tracker runs (picklable: holds flags and the options' text)."""

    def __init__(self, mlflow: bool = True, wandb: bool = True, options: dict[str, str] | None = None,
                 comet: bool = True, clearml: bool = True):
        self.mlflow = mlflow
        self.wandb = wandb
        self.comet = comet
        self.clearml = clearml
        self.options = dict(options or {})

    def on_pretrain_routine_end(self, trainer) -> None:
        host = Host(trainer)
        if rank() in {-1, 0} and host.wandb_enabled and host.wandb_run is None and wandb_needs_offline(os.environ):
            from ultralytics.utils import LOGGER

            os.environ["WANDB_MODE"] = "offline"
            LOGGER.info("yolo_gd: no W&B key configured: W&B runs offline (WANDB_MODE=offline; upload later with "
                        "'wandb sync <run dir>/wandb/offline-run-*')")

    def on_train_start(self, trainer) -> None:
        if rank() not in {-1, 0}:
            return
        host = Host(trainer)
        recorder = host.run.recorder if host.run is not None else None
        if recorder is None:
            return
        from ultralytics.utils import LOGGER

        for name, flag, wanted, connect in (("MLflow", "mlflow_steps", self.mlflow, _mlflow_sink),
                                            ("W&B", "wandb_steps", self.wandb, _wandb_sink),
                                            ("Comet", "comet_steps", self.comet, _comet_sink),
                                            ("ClearML", "clearml_steps", self.clearml, _clearml_sink)):
            try:
                sink = connect(host, recorder, LOGGER.warning)
            except Exception as e:  # a tracker's failure is never training's
                LOGGER.warning(f"yolo_gd: {name} per-step logging not started ({type(e).__name__}: "
                               f"{(str(e).strip().splitlines() or [''])[0][:200]}); training continues")
                continue
            if sink is None:
                continue
            # the run's labels (options, sweep, axes, MLflow's parent) also with the per-step series off
            sink.label({**self.options, **sweep_axes(os.environ)}, sweep_tags(os.environ))
            if wanted:
                recorder.add_sink(sink)
                LOGGER.info(f"yolo_gd: per-step telemetry also goes to the {name} run {sink.run_name} "
                            f"(off: {flag}=false)")


def _mlflow_sink(host: Host, recorder, report):
    run_id = host.mlflow_run_id
    if run_id is None:
        return None
    import mlflow

    from yolo_gd.telemetry.tracker_sinks import MlflowSink

    return MlflowSink(run_id, mlflow.get_tracking_uri(), report, wall_origin=recorder.wall_origin,
                      layers=recorder.level == "full", parent_run_id=os.environ.get(PARENT_ENV) or None)


def _wandb_sink(host: Host, recorder, report):
    run = host.wandb_run
    if run is None:
        return None
    from yolo_gd.telemetry.tracker_sinks import WandbSink

    return WandbSink(run, report, layers=recorder.level == "full")


def _comet_sink(host: Host, recorder, report):
    experiment = host.comet_experiment
    if experiment is None:
        return None
    from yolo_gd.telemetry.tracker_sinks import CometSink

    return CometSink(experiment, report, layers=recorder.level == "full")


def _clearml_sink(host: Host, recorder, report):
    task = host.clearml_task
    if task is None:
        return None
    from yolo_gd.telemetry.tracker_sinks import ClearmlSink

    return ClearmlSink(task, report, layers=recorder.level == "full")


def wandb_needs_offline(environ) -> bool:
    """True when W&B has neither a mode set nor a key to go online with (env, identity token, ``.netrc``)."""
    if environ.get("WANDB_MODE") or environ.get("WANDB_API_KEY") or environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return False
    host = urlparse(environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    try:
        return netrc.netrc(environ.get("NETRC")).authenticators(host) is None
    except (OSError, netrc.NetrcParseError):  # no .netrc (or an unreadable one): no key there
        return True

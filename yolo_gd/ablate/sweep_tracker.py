"""A sweep as one MLflow parent run, its trials' runs nested under it, the sweep report attached to it.

Each trial's MLflow run is the one Ultralytics' integration opens in the trial's process (experiment = the trial's
``project``, the sweep folder). The sweep process opens a parent run in that experiment (:func:`sweep_parent_run`)
and hands its id to the trials in ``YOLO_GD_MLFLOW_PARENT``; yolo_gd's tracker bridge in each trial tags the trial's
run ``mlflow.parentRunId = <parent>`` (MLflow's own nesting tag: the UI shows the trials under the sweep) and logs
the trial's axes (:func:`trial_axes`) as parameters ``yolo_gd.axis.<axis>``. When the report is built,
:func:`attach_report` logs the ``report/`` folder (``report.html``, ``report.md``, tables, plots) as artifacts of
the parent.

Only when the user has MLflow on in Ultralytics' settings (``yolo settings mlflow``, on by default when mlflow is
importable): then the trials' integration opens runs, and only then is there anything to group. Rerunning the
sweep reopens the same parent (found by its tag ``yolo_gd.sweep_dir``). MLflow's failures never stop a sweep: they
are reported in one line and the sweep runs without a parent.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from yolo_gd.inject.trackers import PARENT_ENV

__all__ = ["attach_report", "find_parent", "mlflow_on", "sweep_parent_run", "trial_axes"]

#: The parent run's tag: the sweep folder it stands for (two sweeps of one name in two roots stay apart).
PARENT_TAG = "yolo_gd.sweep_dir"


def mlflow_on() -> bool:
    """Ultralytics' MLflow integration will open the trials' runs: the setting is on and mlflow is importable (the
    test Ultralytics' ``callbacks/base.py`` and ``callbacks/mlflow.py`` make)."""
    from ultralytics.utils import SETTINGS

    if SETTINGS.get("mlflow") is not True:
        return False
    try:
        import mlflow
    except ImportError:
        return False
    return hasattr(mlflow, "__version__")


def _experiment_name(sweep_dir: Path) -> str:
    """The trials' experiment as Ultralytics names it: ``MLFLOW_EXPERIMENT_NAME``, else the trial's ``project``."""
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or str(sweep_dir)


def find_parent(client, sweep_dir: Path, create: bool = False) -> str | None:
    """The id of the sweep's parent run in the trials' experiment (a new one with ``create``), or None."""
    name = _experiment_name(sweep_dir)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        if not create:
            return None
        experiment_id = client.create_experiment(name)
    else:
        experiment_id = experiment.experiment_id
    found = client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{sweep_dir}'",
                               max_results=1)
    if found:
        return found[0].info.run_id
    if not create:
        return None
    run = client.create_run(experiment_id, run_name=sweep_dir.name,
                            tags={PARENT_TAG: str(sweep_dir), "yolo_gd.sweep": sweep_dir.name})
    return run.info.run_id


def _warn(say: Callable[[str], object], what: str, e: Exception) -> None:
    text = (str(e).strip().splitlines() or [""])[0][:200]
    say(f"[ablate] MLflow: {what} ({type(e).__name__}: {text}); the sweep goes on")


@contextlib.contextmanager
def sweep_parent_run(sweep_dir: Path, say: Callable[[str], object]) -> Iterator[str | None]:
    """Open (or reopen) the sweep's parent run while the trials run, with its id in ``YOLO_GD_MLFLOW_PARENT`` for
    the trial processes; yields the id (None: MLflow off, or it failed). Ends the run FINISHED, or KILLED when the
    sweep is interrupted (rerunning the command reopens it)."""
    run_id = client = None
    if mlflow_on():
        try:
            from mlflow.tracking import MlflowClient

            client = MlflowClient()
            run_id = find_parent(client, sweep_dir, create=True)
            client.update_run(run_id, status="RUNNING")
            say(f"[ablate] MLflow: the trials' runs go under the sweep's run {run_id} "
                f"(experiment {_experiment_name(sweep_dir)})")
        except Exception as e:  # a tracker's failure is never the sweep's
            _warn(say, "no parent run for the sweep", e)
            run_id = None
    old = os.environ.pop(PARENT_ENV, None)
    if run_id is not None:
        os.environ[PARENT_ENV] = run_id
    status = "KILLED"
    try:
        yield run_id
        status = "FINISHED"
    finally:
        os.environ.pop(PARENT_ENV, None)
        if old is not None:
            os.environ[PARENT_ENV] = old
        if run_id is not None:
            try:
                client.set_terminated(run_id, status=status)
            except Exception as e:
                _warn(say, f"the sweep's run was not marked {status}", e)


def attach_report(sweep_dir: Path, report_dir: Path, say: Callable[[str], object]) -> str | None:
    """Log ``report_dir`` (``report.html``, ``report.md``, tables, plots) as the artifacts ``report/...`` of the
    sweep's parent run, if it has one; returns the run id."""
    if not mlflow_on():
        return None
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        run_id = find_parent(client, Path(sweep_dir))
        if run_id is not None:
            client.log_artifacts(run_id, str(report_dir), artifact_path="report")
        return run_id
    except Exception as e:
        _warn(say, "the report was not attached to the sweep's run", e)
        return None


def trial_axes(sweep, trial) -> dict[str, str]:
    """What tells this trial apart in its sweep, as text: config, optimizer, LR, schedule, dataset, seed, stage."""
    config = next((c for c in sweep.configs if c.name in (trial.tunes, trial.config)), None)
    kwargs = trial.kwargs or {}
    schedule = kwargs.get("schedule")
    if isinstance(schedule, dict):
        schedule = schedule.get("name")
    axes = {"config": trial.config, "optimizer": config.optimizer if config else kwargs.get("optimizer"),
            "lr": kwargs.get("lr"), "schedule": schedule,
            "data": (config.dataset if config and config.dataset else None) or kwargs.get("data"),
            "seed": trial.seed, "stage": trial.stage}
    return {k: str(v) for k, v in axes.items() if v is not None}

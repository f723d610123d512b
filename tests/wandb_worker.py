"""Test-only worker: one tiny attached training with Ultralytics' W&B integration on, in a process of its own.

    python wandb_worker.py DATA PROJECT NAME

Ultralytics' ``callbacks/wb.py`` refuses to load under pytest (``assert not TESTS_RUNNING``), so the test runs this
script in a child whose environment has no ``PYTEST_CURRENT_TEST``; ``YOLO_CONFIG_DIR`` must point at the test's own
settings folder (this script turns W&B on there).
"""

from __future__ import annotations

import sys

from ultralytics.utils import SETTINGS

SETTINGS.update(wandb=True, mlflow=False, raytune=False, comet=False, clearml=False, dvc=False, tensorboard=False)

from ultralytics import YOLO  # noqa: E402

from yolo_gd.inject.attach import attach  # noqa: E402

ARGS = dict(epochs=1, imgsz=32, batch=4, nbs=4, workers=0, seed=0, deterministic=True, plots=False, verbose=False,
            amp=False, warmup_epochs=1, exist_ok=False)

if __name__ == "__main__":
    data, project, name = sys.argv[1:4]
    model = YOLO("yolo11n.yaml")
    attach(model, optimizer="sgd", telemetry_every=2)
    model.train(data=data, project=project, name=name, **ARGS)

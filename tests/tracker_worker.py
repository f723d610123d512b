"""Test-only worker: one tiny attached training with one of Ultralytics' tracker integrations on, in a process of
its own.

    python tracker_worker.py DATA PROJECT NAME [TRACKER]      # TRACKER: wandb (default), comet, clearml or none

Ultralytics' ``callbacks/wb.py``, ``comet.py`` and ``clearml.py`` refuse to load under pytest (``assert not
TESTS_RUNNING``), so the test runs this script in a child whose environment has no ``PYTEST_CURRENT_TEST``;
``YOLO_CONFIG_DIR`` must point at the test's own settings folder (this script turns TRACKER on there, the others off).
"""

from __future__ import annotations

import sys

from ultralytics.utils import SETTINGS

TRACKER = sys.argv[4] if len(sys.argv) > 4 else "wandb"
SETTINGS.update({k: k == TRACKER for k in ("wandb", "mlflow", "raytune", "comet", "clearml", "dvc", "tensorboard")})

from ultralytics import YOLO  # noqa: E402

from yolo_gd.inject.attach import attach  # noqa: E402

ARGS = dict(epochs=1, imgsz=32, batch=4, nbs=4, workers=0, seed=0, deterministic=True, plots=False, verbose=False,
            amp=False, warmup_epochs=1, exist_ok=False)

if __name__ == "__main__":
    data, project, name = sys.argv[1:4]
    model = YOLO("yolo11n.yaml")
    attach(model, optimizer="sgd", telemetry_every=2)
    model.train(data=data, project=project, name=name, **ARGS)

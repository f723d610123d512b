"""Optimizer ablations: a YAML spec -> trials run as local processes -> ``runs/ablate/<sweep>/manifest.json``.

- :mod:`~yolo_gd.ablate.spec`: ``load_spec(path) -> Sweep`` (validated; every error names file:line and key)
  - :mod:`~yolo_gd.ablate.yamlpos`: YAML values with the line of every key, duplicate keys refused
  - :mod:`~yolo_gd.ablate.validate`: the rules a spec must follow and their file:line errors
  - :mod:`~yolo_gd.ablate.naming`: config and trial names
- :mod:`~yolo_gd.ablate.manifest`: trial states on disk (the file the report reads)
- :mod:`~yolo_gd.ablate.runner`: ``run_sweep(spec, devices=..., workers=...)``, resumable
  - :mod:`~yolo_gd.ablate.sweep_runner`: the bookkeeping (manifest, queue, resume, tuned protocol)
  - :mod:`~yolo_gd.ablate.backend`: what a backend does (place, start, finished, stop), served by
    :mod:`~yolo_gd.ablate.local_backend` (local processes) and :mod:`~yolo_gd.ablate.ray_backend` (Ray tasks)
  - :mod:`~yolo_gd.ablate.processes`: start a trial process, check it is ours, kill its process group
  - :mod:`~yolo_gd.ablate.slots`: device slots, ``shared_device``, the status line and ETA
  - :mod:`~yolo_gd.ablate.tuning`: a trial's final metric, the tuned protocol's LR pick
- :mod:`~yolo_gd.ablate.worker`: one trial in its own process
- :mod:`~yolo_gd.ablate.commands`: what ``yolo-gd ablate`` / ``yolo-gd compare`` call

Import from the modules (``from yolo_gd.ablate.runner import run_sweep``): this package re-exports nothing, because
:mod:`~yolo_gd.ablate.spec` imports the package itself and a re-export here would be an import cycle.
"""

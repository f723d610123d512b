"""Run health: rules over a run's telemetry that state what went wrong, with evidence and a change to try.

- :mod:`~yolo_gd.health.findings`: the :class:`Finding` record and the thresholds (named constants, one reason each);
- :mod:`~yolo_gd.health.rules`: the rules, pure functions of the step table and epochs.csv (no trainer, no files);
- :mod:`~yolo_gd.health.doctor`: :func:`doctor` reads a run folder and applies every rule.
"""

from yolo_gd.health.doctor import doctor, format_findings
from yolo_gd.health.findings import Finding

__all__ = ["Finding", "doctor", "format_findings"]

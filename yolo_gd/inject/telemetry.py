"""The telemetry lifecycle of an attached run: make the recorder, flush per epoch, close and plot at the end.

Rank 0 (or the single process) records; under DDP its norms are taken after the gradient all-reduce, so they
describe the global batch. On resume, rows at or past the checkpoint's step are dropped: the resumed run replays
them. After NaN recovery or an out-of-memory retry the thrown-away rows stay, marked by their ``attempt``.
"""

from __future__ import annotations

import functools

from yolo_gd.inject.host import Host, rank


class TelemetryLifecycle:
    """Owns the :class:`~yolo_gd.telemetry.recorder.StepRecorder` of one run (picklable: holds settings only)."""

    def __init__(self, level: str = "basic", flush_every: int = 0):
        self.level = level
        self.flush_every = flush_every

    def on_pretrain_routine_end(self, trainer) -> None:
        from yolo_gd.telemetry.recorder import StepRecorder

        if rank() not in {-1, 0}:
            return
        host = Host(trainer)
        recorder = StepRecorder(host.save_dir / "telemetry", level=self.level, flush_every=self.flush_every,
                                rank=rank())
        if host.resume:
            recorder.truncate_after(host.run.counters.steps)  # rows past the checkpoint are replayed
        host.run.recorder = recorder
        host.wrap("_handle_nan_recovery", functools.partial(self._after_recovery, trainer))

    def _after_recovery(self, trainer, recovered: bool) -> None:
        recorder = Host(trainer).run.recorder
        if recovered and recorder is not None:
            recorder.new_attempt()  # the thrown-away epoch's rows stay, marked by their attempt number

    def on_train_epoch_end(self, trainer) -> None:
        host = Host(trainer)
        if host.run is not None and host.run.recorder is not None:
            host.run.recorder.epoch_end(host)  # one device->host copy; epochs.csv (results.csv is untouched)

    def on_train_end(self, trainer) -> None:
        host = Host(trainer)
        if host.run is not None and host.run.recorder is not None:
            host.run.recorder.close()
            if host.plots:  # beside Ultralytics' own plots, when it makes them
                from yolo_gd.telemetry.plots import plot_run

                plot_run(host.save_dir)

    def teardown(self, trainer) -> None:
        run = Host(trainer).run
        if run is not None and run.recorder is not None:
            run.recorder.close()

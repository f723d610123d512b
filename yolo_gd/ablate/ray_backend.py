"""The Ray backend (``backend='ray'``): the same sweep, each trial a Ray task on a local Ray instance or a cluster.

Everything but where a trial runs is the sweep runner's (:class:`~yolo_gd.ablate.sweep_runner.SweepRunner`, which
this backend serves through the :class:`~yolo_gd.ablate.backend.TrialBackend` protocol): the trial expansion, the
manifest and its updates, the resume rules (``done`` skipped, ``running`` left by a dead driver resumed from
``last.pt``, ``failed`` retried with ``retry_failed=True``), the sweep lock, the tuned protocol, the progress lines
and the report. Each trial is one Ray task (``num_cpus=1``; ``num_gpus=1/per_device`` for GPU
trials, ``0`` on CPU; no automatic retries) that runs the SAME worker as the local backend,
``python -m yolo_gd.ablate.worker <dir>/trial.json``, as a subprocess in its own process group with its output
appended to ``<dir>/trial.log``, and returns its exit code; the driver collects finished tasks with ``ray.wait``.

- ``address``: ``'local'`` (the default unless ``RAY_ADDRESS`` is set) starts a private local Ray instance sized
  like the local backend (``devices=cpu workers=N``: N CPU trials at once; ``devices=0,1 per_device=K``: those
  GPUs, K trials each) and stops it at the end; ``'auto'`` (or ``RAY_ADDRESS``, or ``host:port`` /
  ``ray://host:port``) connects to a running cluster, whose CPUs or GPUs decide how many trials run at once
  (``devices=cpu``, or ``devices=gpu``: one GPU per trial). Ray's dashboard and usage stats are off; nothing is
  downloaded.
- On a cluster every node must have the same yolo_gd installed, the sweep folder (``out=``) and the datasets must
  be on a filesystem every node sees at the same path (NFS or similar), since a trial writes into its folder on
  whichever node runs it.
- CPU threads: Ultralytics sets torch's thread count itself (``select_device``), whatever ``OMP_NUM_THREADS``
  Ray exported, so a CPU trial gets an explicit share as with the local backend: on a local instance the cores
  divided among the trials that run at once (``slots.cpu_threads``, e.g. 4 trials on 8 cores: 2 threads each; a
  lone trial keeps Ultralytics' count);
  on a cluster the task's one CPU (1 thread). GPU trials keep Ultralytics' own count.
- The manifest's ``device`` is ``cpu`` or ``gpu`` (Ray picks the GPU; the trial sees it as CUDA device 0; its
  node and GPU are in ``trial.log``), and ``pid`` stays null (the process is on some node). Overlapping CPU
  trials (and GPU trials with ``per_device > 1``) are marked ``shared_device``, as with the local backend.
- On Ctrl-C or SIGTERM the driver cancels the running tasks (each stops its trial's process group; force-kill
  after a grace period) and marks them ``pending``; if the driver dies, Ray ends its tasks and the trials die with
  them (parent-death signal), so a rerun resumes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolo_gd.ablate.backend import LOG_NAME, Finished, Placement, Running
from yolo_gd.ablate.processes import KILL_GRACE
from yolo_gd.ablate.slots import attempt_header, cpu_threads, device_slots
from yolo_gd.ablate.sweep_runner import SweepRunner, sigterm_as_interrupt
from yolo_gd.errors import UserError

__all__ = ["RayBackend", "RayPlan", "ray_plan"]

#: Object store of a private local instance: the tasks pass only their exit codes (Ray's minimum is 75 MiB).
LOCAL_OBJECT_STORE = 100 * 1024 * 1024


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("backend 'ray' needs Ray: pip install 'yolo_gd[ray]' (or use backend='local')") from None
    return ray


# ------------------------------------------------------------------------------------------------ the task


def run_trial_task(job: str, cwd: str, threads: int | None = None) -> int:
    """Body of the Ray task: run the worker on ``job`` (a trial.json) in a subprocess, return its exit code.

    Its output goes to ``trial.log`` next to ``job``; the subprocess leads its own process group and gets a
    parent-death signal, so it dies with this Ray worker. A cancelled task stops the trial's process group."""
    import socket
    import subprocess

    import ray

    from yolo_gd.ablate.processes import kill_group, start_trial

    job_path = Path(job)
    if not job_path.is_file():
        raise FileNotFoundError(f"{job} is not visible on node {socket.gethostname()}: the sweep folder must be on "
                                f"a filesystem every Ray node sees at the same path")
    gpus = ",".join(str(g) for g in ray.get_gpu_ids()) or "none"
    with open(job_path.parent / LOG_NAME, "ab") as log:
        log.write(f"=== ray task on {socket.gethostname()} ({ray.util.get_node_ip_address()}), worker pid "
                  f"{os.getpid()}, GPUs {gpus} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')}), "
                  f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} ===\n".encode())
        log.flush()
        proc = start_trial(job_path, log, cwd if os.path.isdir(cwd) else str(job_path.parent), threads)
        try:
            while True:  # short waits: a cancel (KeyboardInterrupt in this thread) is not seen inside a long wait
                with contextlib.suppress(subprocess.TimeoutExpired):
                    return proc.wait(timeout=0.5)
        except BaseException:  # cancelled (KeyboardInterrupt) or the worker is exiting
            kill_group(proc.pid)
            raise


# ------------------------------------------------------------------------------------------------ the plan


@dataclass
class RayPlan:
    """Where a sweep's trials go: checked before anything runs (:func:`ray_plan`), connected in :meth:`run`."""

    address: str  # 'local', 'auto', host:port or ray://...
    gpu: bool
    per_device: int
    local_cpus: int = 1  # a local instance: its CPUs (one per parallel trial)
    local_gpus: list[str] | None = None  # a local instance: the GPU ids it may use (None: CPU only)

    @property
    def local(self) -> bool:
        return self.address == "local"

    def run(self, sweep, spec_path: Path, sweep_dir: Path, say, retry_failed: bool, status_every: float,
            poll_interval: float) -> None:
        ray = _import_ray()
        with self._connected(ray) as parallel, sigterm_as_interrupt():  # (after ray.init, which sets its own)
            kind = "gpu" if self.gpu else "cpu"
            where = "local Ray instance" if self.local else f"Ray cluster {self.address}"
            say(f"[ablate] backend ray: {where}, {parallel} trial(s) at once, 1 {kind.upper()}"
                f"{'' if not self.gpu or self.per_device == 1 else f'/{self.per_device}'} each")
            backend = RayBackend(ray, self, parallel)
            SweepRunner(sweep, spec_path, sweep_dir, backend, say, retry_failed, status_every, poll_interval).run()

    @contextlib.contextmanager
    def _connected(self, ray):
        """Connect (or start a local instance), yield how many trials fit at once, disconnect (stop it)."""
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline: no usage report
        owned = not ray.is_initialized()
        if owned:
            opts: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=True,
                                        logging_level=logging.WARNING)
            if self.local:
                opts.update(num_cpus=self.local_cpus, num_gpus=len(self.local_gpus or []),
                            object_store_memory=LOCAL_OBJECT_STORE)
            try:
                with _visible_gpus(self.local_gpus if self.local else None):
                    ray.init(address=self.address, **opts)
            except (ConnectionError, ValueError, RuntimeError) as e:
                if self.local:
                    raise UserError(f"could not start a local Ray instance ({type(e).__name__}: {e})") from None
                raise UserError(f"could not connect to the Ray cluster {self.address!r} ({type(e).__name__}: {e}): "
                                f"start one with 'ray start --head' (then address=auto), or use address=local "
                                f"for a local instance") from None
        try:
            res = ray.cluster_resources()
            cpus, gpus = int(res.get("CPU", 0)), res.get("GPU", 0)
            parallel = min(cpus, int(gpus * self.per_device + 1e-9)) if self.gpu else cpus
            if parallel < 1:
                raise UserError(f"the Ray cluster at {self.address!r} has no room for a trial ({cpus} CPU, {gpus:g} "
                                f"GPU; a trial needs 1 CPU{' and a GPU' if self.gpu else ''})")
            yield parallel
        finally:
            if owned:
                ray.shutdown()


@contextlib.contextmanager
def _visible_gpus(ids: list[str] | None):
    """A local instance uses exactly the GPU ids asked for: its processes inherit this CUDA_VISIBLE_DEVICES."""
    if not ids:
        yield
        return
    old = os.environ.get("CUDA_VISIBLE_DEVICES")
    base = [v.strip() for v in old.split(",") if v.strip()] if old else None
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(base[int(i)] if base else i for i in ids)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = old


def ray_plan(devices, workers: int, per_device: int, address: str | None) -> RayPlan:
    """Check the Ray options (a :class:`UserError` for what the user must change) before anything runs."""
    _import_ray()
    addr = str(address or os.environ.get("RAY_ADDRESS") or "local").strip()
    text = ",".join(str(d) for d in devices) if isinstance(devices, (list, tuple)) else str(devices or "cpu")
    text = text.strip().lower()
    if text == "mps":
        raise UserError("backend 'ray' schedules CPU or CUDA GPU trials: use devices=cpu, or backend='local' for mps")
    if addr == "local":
        if text == "gpu":
            import torch

            text = ",".join(str(i) for i in range(torch.cuda.device_count())) or "gpu"
            if text == "gpu":
                raise UserError("devices=gpu: this machine has no CUDA device; use devices=cpu workers=N")
        slots = device_slots(text, workers, per_device)  # the local backend's checks
        if text == "cpu":
            return RayPlan(addr, gpu=False, per_device=1, local_cpus=len(slots))
        return RayPlan(addr, gpu=True, per_device=per_device, local_cpus=len(slots),
                       local_gpus=list(dict.fromkeys(slots)))
    if workers != 1:
        raise UserError("workers= sizes a local Ray instance; on a Ray cluster its CPUs decide how many trials run "
                        "at once (drop workers=, or use address=local)")
    if text == "cpu":
        if per_device != 1:
            raise UserError("per_device= is for GPUs; on a Ray cluster with devices=cpu each trial takes 1 CPU")
        return RayPlan(addr, gpu=False, per_device=1)
    ids = [d.strip() for d in text.split(",") if d.strip()]
    if text != "gpu" and not (ids and all(d.isdigit() for d in ids)):
        raise UserError(f"devices must be 'cpu', 'gpu' or GPU ids like '0,1', got {devices!r}")
    if isinstance(per_device, bool) or not isinstance(per_device, int) or per_device < 1:
        raise UserError(f"per_device must be a positive integer, got {per_device!r}")
    return RayPlan(addr, gpu=True, per_device=per_device)  # a cluster: Ray picks the GPUs, ids are not used


# ------------------------------------------------------------------------------------------------ the backend


class RayBackend:
    """Trials as Ray tasks (one per trial the cluster runs at once): submitted, collected with ``ray.wait``,
    cancelled on a stop. CPU trials, and GPU trials with ``per_device > 1``, share their device."""

    def __init__(self, ray: Any, plan: RayPlan, parallel: int, cwd: str | None = None):
        self.ray, self.plan = ray, plan
        self.device = "gpu" if plan.gpu else "cpu"
        self.slots = [f"ray:{self.device}"] * parallel
        self.cwd = cwd if cwd is not None else os.getcwd()
        self._remote: Any = None
        # torch threads per CPU trial: the local backend's share on a local instance, the task's 1 CPU on a cluster
        self.threads = None if plan.gpu else (cpu_threads(["cpu"] * parallel) if plan.local else 1)

    def _task(self):
        if self._remote is None:
            num_gpus = 1.0 / self.plan.per_device if self.plan.gpu else 0
            self._remote = self.ray.remote(run_trial_task).options(num_cpus=1, num_gpus=num_gpus, max_retries=0,
                                                                   name="yolo_gd_trial")
        return self._remote

    def place(self, slot: int) -> Placement:
        shares = self.device == "cpu" or self.plan.per_device > 1
        return Placement(self.device, "0" if self.plan.gpu else "cpu", exclusive=not shares)

    def start(self, name: str, job: Path, attempt: int, place: Placement, now: float) -> Running:
        with open(job.parent / LOG_NAME, "ab") as log:
            offset = log.tell()
            log.write(attempt_header(name, attempt, f"ray:{place.device}", now))
        ref = self._task().remote(str(job), self.cwd, self.threads)
        what = "submitted" if attempt == 1 else f"resubmitted (attempt {attempt})"
        return Running(name, ref, offset, time.monotonic(), place.device, f"{what} to Ray ({place.device})",
                       threads=self.threads)

    def finished(self, running: Sequence[Running]) -> list[Finished]:
        by_ref = {r.handle: r for r in running}
        ready, _ = self.ray.wait(list(by_ref), num_returns=len(by_ref), timeout=0)
        done = []
        for ref in ready:
            try:
                done.append(Finished(by_ref[ref], code=int(self.ray.get(ref))))
            except Exception as e:  # noqa: BLE001  (the task itself failed: node died, folder not shared...)
                cause = getattr(e, "cause", None) or e
                lines = [ln for ln in str(cause).splitlines() if ln.strip()]
                done.append(Finished(by_ref[ref], error=f"the Ray task failed ({type(cause).__name__}): "
                                                        f"{lines[-1] if lines else ''} (rerun with retry_failed=True "
                                                        f"to resume it)"))
        return done

    def stop(self, running: Sequence[Running]) -> None:
        for r in running:
            with contextlib.suppress(Exception):
                self.ray.cancel(r.handle)  # KeyboardInterrupt in the task: it stops its trial's process group
        with contextlib.suppress(Exception):
            _, left = self.ray.wait([r.handle for r in running], num_returns=len(running), timeout=KILL_GRACE + 5)
            for ref in left:
                self.ray.cancel(ref, force=True)

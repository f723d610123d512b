"""The GPU suite (issue 15): one entry point, one JSON, everything a lent H200 should measure in under 8 minutes.

Sections (each a median over interleaved repeats, so drift hits every variant alike):

* ``inject``: native Ultralytics SGD / AdamW vs the same optimizers injected (telemetry off): training time per
  epoch (validation excluded), ratio injected / native (goal <= 1.01);
* ``telemetry``: injected SGD with telemetry off / basic / full (goal basic / off <= 1.005), and observe-only
  (native optimizer, recorder on) vs plain native;
* ``sync``: one epoch with the recorder on (injected SGD, telemetry basic) under ``torch.cuda.set_sync_debug_mode``:
  every device->host sync is caught with its stack and attributed to yolo_gd (a frame in yolo_gd/) or to
  Ultralytics/torch (listed separately; their own loop reads loss values for the progress bar). ``"warn"`` mode
  is used for the epoch so that Ultralytics' own syncs do not stop it; the recorder's step path alone is also run
  under ``"error"`` (``recorder_step_under_error``: must be "ok");
* ``trials``: trials per hour for nano models with 1, 2, 4 trials sharing the device (separate processes started
  together), and the speed-up over one trial (goal >= 2x at 4);
* ``qat``: a QAT (ModelOpt INT8) fine-tune step vs the float step (``bench/qat_step_time.py``'s code), skipped
  with the reason when ModelOpt is not installed.

Usage (device machine; see docs/benchmarks.md, "GPU suite", for installing from carried wheels)::

    python bench/gpu_suite.py                          # yolo11n, batch 64, imgsz 640, AMP, cache=ram, device 0
    python bench/gpu_suite.py --dry-run                # CPU, tiny sizes: what CI runs (tests/test_gpu_suite.py)

Writes ``bench/results/gpu_suite_<device type>.json`` (``--out`` to change) with the device name and versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp())
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from _common import EpochTimer  # noqa: E402

# Tiny sizes of --dry-run (tests/test_gpu_suite.py): 9 tiny trainings + 3 trial processes; each costs its fixed
# overheads (model build, final validation), so the time depends on the machine's load more than on these sizes
DRY = dict(device="cpu", images=4, imgsz=32, batch=2, epochs=1, repeats=1, trial_epochs=1, concurrency="1,2",
           amp=False, cache="", qat=False)
SECTIONS = ("inject", "telemetry", "sync", "trials", "qat")


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes (CI)")
    ap.add_argument("--device", default="0")
    ap.add_argument("--model", default="yolo11n.yaml")
    ap.add_argument("--images", type=int, default=512, help="synthetic shapes images (training set)")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1, help="epochs per timed training")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats per variant")
    ap.add_argument("--trial-epochs", type=int, default=2, help="epochs of each concurrent nano trial")
    ap.add_argument("--concurrency", default="1,2,4", help="trials sharing the device at once")
    ap.add_argument("--no-amp", dest="amp", action="store_false")
    ap.add_argument("--cache", default="ram", help="Ultralytics cache: ram, disk or '' (none)")
    ap.add_argument("--no-qat", dest="qat", action="store_false")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections to run")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.dry_run:
        for k, v in DRY.items():
            setattr(args, k, v)
    return args


def metadata(args) -> dict:
    import torch
    import ultralytics

    cuda = args.device != "cpu" and torch.cuda.is_available()
    return {"device": torch.cuda.get_device_name(0) if cuda else (platform.processor() or platform.machine()),
            "device_type": "cuda" if cuda else "cpu", "torch": str(torch.__version__), "cuda": torch.version.cuda,
            "ultralytics": ultralytics.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
            "dry_run": args.dry_run, "args": vars(args), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def train(args, data: Path, project: Path, name: str, configure=None, timer=None, **extra):
    """One training of ``args.model``; returns the trainer. ``configure(model)`` attaches what the variant needs."""
    from ultralytics import YOLO

    model = YOLO(args.model)
    if configure is not None:
        configure(model)
    if timer is not None:
        timer.watch(model)
    model.train(data=str(data), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, workers=0,
                device=args.device, amp=args.amp, nbs=args.batch, seed=0, plots=False, val=False,
                cache=args.cache or False, project=str(project), name=name, exist_ok=True, verbose=False, **extra)
    return model.trainer


def attach(optimizer: str | None, telemetry: str):
    """A configure() for train(): inject ``optimizer`` (None: observe-only) with ``telemetry``; Ultralytics'
    own LR and warmup so injected and native do the same arithmetic."""
    import yolo_gd

    def configure(model):
        if optimizer is None:
            yolo_gd.attach(model, None, telemetry=telemetry)
        else:
            yolo_gd.attach(model, optimizer, lr=0.01, momentum=0.937, warmup_bias_lr=0.1, telemetry=telemetry)
    return configure


def interleaved(args, data, project, variants: dict) -> dict:
    """Seconds of training per variant over ``args.repeats`` interleaved repeats (order reversed every other)."""
    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.repeats):
        for n in names if r % 2 == 0 else names[::-1]:
            configure, extra = variants[n]
            timer = EpochTimer()
            train(args, data, project, n, configure, timer, **extra)
            times[n].append(timer.total)
    return {n: {"median_s": statistics.median(t), "all_s": t} for n, t in times.items()}


def section_inject(args, data, project) -> dict:
    variants = {}
    for opt in ("SGD", "AdamW"):
        variants[f"native-{opt}"] = (None, {"optimizer": opt})
        variants[f"injected-{opt}"] = (attach(opt.lower(), "off"), {"optimizer": opt})
    t = interleaved(args, data, project, variants)
    ratios = {opt: t[f"injected-{opt}"]["median_s"] / t[f"native-{opt}"]["median_s"] for opt in ("SGD", "AdamW")}
    return {"times": t, "ratio_injected_vs_native": ratios, "goal": 1.01}


def section_telemetry(args, data, project) -> dict:
    variants = {f"injected-{lvl}": (attach("sgd", lvl), {"optimizer": "SGD"}) for lvl in ("off", "basic", "full")}
    variants["native-plain"] = (None, {"optimizer": "SGD"})
    variants["observe-basic"] = (attach(None, "basic"), {"optimizer": "SGD"})
    t = interleaved(args, data, project, variants)
    off = t["injected-off"]["median_s"]
    ratios = {"basic_vs_off": t["injected-basic"]["median_s"] / off, "full_vs_off": t["injected-full"]["median_s"] / off,
              "observe_vs_plain": t["observe-basic"]["median_s"] / t["native-plain"]["median_s"]}
    return {"times": t, "ratios": ratios, "goal_basic_vs_off": 1.005}


def _origin(stack) -> str:
    """'yolo_gd' if a frame of the stack is in the yolo_gd package, else 'ultralytics' / 'torch' / 'other'."""
    files = [f.filename.replace(os.sep, "/") for f in stack]
    if any("/yolo_gd/" in f and "/bench/" not in f for f in files):
        return "yolo_gd"
    return "ultralytics" if any("/ultralytics/" in f for f in files) else "other"


def section_sync(args, data, project) -> dict:
    import torch

    if not (args.device != "cpu" and torch.cuda.is_available()):
        return {"skipped": "set_sync_debug_mode needs a CUDA device", "syncs": {}, "recorder_step_under_error": None}
    syncs: dict[str, dict[str, int]] = {"yolo_gd": {}, "ultralytics": {}, "other": {}}

    def record(message, category, filename, lineno, file=None, line=None):
        stack = traceback.extract_stack()[:-1]
        where = next((f"{f.filename}:{f.lineno}" for f in reversed(stack) if "warnings" not in f.filename), "?")
        bucket = syncs[_origin(stack)]
        bucket[where] = bucket.get(where, 0) + 1

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        old, warnings.showwarning = warnings.showwarning, record
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train(args, data, project, "sync", attach("sgd", "basic"), optimizer="SGD")
        finally:
            torch.cuda.set_sync_debug_mode(0)
            warnings.showwarning = old
    return {"mode_for_epoch": "warn (error would stop at Ultralytics' own first sync)", "syncs": syncs,
            "yolo_gd_sync_count": sum(syncs["yolo_gd"].values()),
            "recorder_step_under_error": _recorder_under_error(args)}


def _recorder_under_error(args) -> str:
    """The step path (one read, clip, before/after_step) on real CUDA grads under set_sync_debug_mode('error')."""
    import torch

    from yolo_gd.optim.progress import Progress
    from yolo_gd.telemetry.norms import clip_read_, read_grads
    from yolo_gd.telemetry.recorder import StepRecorder

    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Linear(64, 8)).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    trainer = type("T", (), dict(optimizer=opt, model=model, scaler=torch.amp.GradScaler("cuda"), loss=None,
                                 loss_items=None, batch_size=4, epoch=0))()
    with tempfile.TemporaryDirectory() as d:
        rec = StepRecorder(d, level="full", tensorboard=False)
        for i in range(3):
            trainer.scaler.scale(model(torch.randn(4, 64, device="cuda")).square().sum()).backward()
            trainer.scaler.unscale_(opt)
            torch.cuda.set_sync_debug_mode("error")
            try:
                rec.before_step(trainer, Progress(i, 10, i, 10, 1), clip_read_(read_grads(model.parameters()), 10.0),
                                10.0)
                trainer.scaler.step(opt)
                trainer.scaler.update()
                rec.after_step(trainer)
            except RuntimeError as e:
                return f"sync: {e}"
            finally:
                torch.cuda.set_sync_debug_mode(0)
            opt.zero_grad()
        rec.close()
    return "ok"


TRIAL = """
import sys, yolo_gd
yolo_gd.train(model=sys.argv[1], data=sys.argv[2], optimizer='sgd', epochs=int(sys.argv[3]), imgsz=int(sys.argv[4]),
              batch=int(sys.argv[5]), device=sys.argv[6], workers=0, plots=False, val=False, project=sys.argv[7],
              name=sys.argv[8], telemetry='basic', verbose=False, amp=sys.argv[9] == '1')
"""


def section_trials(args, data, project) -> dict:
    """Wall time of N nano trials started together as separate processes; trials per hour and speed-up vs 1."""
    out = {}
    for n in (int(c) for c in args.concurrency.split(",")):
        t0 = time.perf_counter()
        logs = [project / f"trials{n}-{i}.log" for i in range(n)]
        logs[0].parent.mkdir(parents=True, exist_ok=True)
        procs = []
        for i, log in enumerate(logs):  # output to files: a full pipe would stall a trial
            with open(log, "w") as f:
                procs.append(subprocess.Popen(
                    [sys.executable, "-c", TRIAL, args.model, str(data), str(args.trial_epochs), str(args.imgsz),
                     str(args.batch), args.device, str(project / f"trials{n}"), f"t{i}", "1" if args.amp else "0"],
                    stdout=f, stderr=subprocess.STDOUT))
        codes = [p.wait() for p in procs]
        errors = [log.read_text()[-800:] for log, c in zip(logs, codes) if c != 0]
        wall = time.perf_counter() - t0
        out[str(n)] = {"wall_s": wall, "trials_per_hour": n * 3600 / wall, "failed": len(errors), "errors": errors}
    base = out[min(out, key=int)]["trials_per_hour"]
    return {"by_concurrency": out, "speedup_vs_1": {k: v["trials_per_hour"] / base for k, v in out.items()},
            "goal_at_4": 2.0}


def section_qat(args, data, project) -> dict:
    import importlib.util

    if not args.qat:
        return {"skipped": "--no-qat (or --dry-run)"}
    if importlib.util.find_spec("modelopt") is None:
        return {"skipped": "nvidia-modelopt is not installed (pip install 'yolo_gd[qat]' from carried wheels)"}
    import qat_step_time as q

    qargs = argparse.Namespace(model=args.model, imgsz=args.imgsz, batch=args.batch, workers=0, device=args.device,
                               amp=args.amp, nbs=args.batch, float_epochs=1, epochs=1, lr=1e-5)
    ckpt = q.train_float(qargs, data, project)
    steps = {"float": [], "qat": []}
    for r in range(max(1, args.repeats - 1)):
        for mode in ("float", "qat") if r % 2 == 0 else ("qat", "float"):
            steps[mode] += q.fine_tune(ckpt, mode, qargs, data, project, f"{mode}{r}")
    med = {m: statistics.median(s) for m, s in steps.items() if s}
    return {"median_step_s": med, "ratio_qat_vs_float": med["qat"] / med["float"] if len(med) == 2 else None}


def main(argv=None) -> dict:
    args = parse(argv)
    from yolo_gd.datasets.shapes import generate_shapes

    work = Path(tempfile.mkdtemp(prefix="yolo_gd_gpu_suite_"))
    data = generate_shapes(work / "data", n_train=args.images, n_val=8, imgsz=args.imgsz, seed=0)
    result = {"meta": metadata(args)}
    t0 = time.perf_counter()
    for name in args.only.split(","):
        t = time.perf_counter()
        result[name] = globals()[f"section_{name}"](args, data, work / "runs")
        result[name]["section_s"] = time.perf_counter() - t
        print(f"[gpu_suite] {name}: {time.perf_counter() - t:.1f} s", flush=True)
    result["meta"]["total_s"] = time.perf_counter() - t0
    out = Path(args.out or HERE / "results" / f"gpu_suite_{result['meta']['device_type']}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"[gpu_suite] wrote {out} in {result['meta']['total_s']:.1f} s")
    return result


if __name__ == "__main__":
    main()

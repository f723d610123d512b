"""Microbenchmark: the telemetry recorder's per-step cost on yolo11n's parameters, side by side with references.

Measured in one process, on one device:

* ``foreach_norm``: ``torch._foreach_norm`` over the gradients, the bandwidth reference (reads the grads once);
* ``clip alone``: the host's ``clip_grad_norm_(model.parameters())`` (reads the grads twice: norm, then multiply);
* ``read+clip+recorder <level>``: what the step does with telemetry on (issue 15): one read of the gradients
  (:func:`read_grads`) shared by the clip (:func:`clip_read_`) and ``before_step`` + ``after_step``; at ``full``
  also the noise scale's first-micro-batch read (one per window: the worst case k = 2 puts one in every step).
  Goals: basic within 1.15x of the clip alone, full within 2x of basic; both ratios are stored;
* ``recorder <level>``: ``before_step`` + ``after_step`` of :class:`StepRecorder` (no flush), each level, and the
  pieces that make ``full`` dearer (the update norm needs a parameter snapshot: copy, in-place subtract, two
  reductions over the flat snapshot);
* ``train step``: a yolo11n training step (forward, loss, backward, SGD step; no data loading) at ``--imgsz`` and
  ``--batch`` on a fixed random batch, the denominator of the overhead;
* ``in situ``: the recorder inside that step (caches as cold as forward/backward leave them), measured as paired
  differences against the plain step, with a bootstrap CI. This is the number to quote; the micro numbers above
  it are a lower bound (warm caches).

GB/s counts the bytes a case must touch at least once (recorder basic: the grads; full: params + grads); the real
traffic of ``full`` is larger (snapshot write, subtract, re-read). Device timings use
``torch.cuda.synchronize`` around the timed loop only. Usage::

    python bench/recorder_micro.py [--device cpu|cuda] [--iters 30] [--rounds 7] [--pairs 30] [--imgsz 128]
        [--batch 16] [--out bench/results/recorder_micro_cpu.json] [--meanwhile "what else ran"]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import subprocess
import statistics
import sys
import tempfile
import time
import types

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from yolo_gd.optim.progress import Progress  # noqa: E402
from yolo_gd.telemetry.norms import clip_read_, read_grads, slice_norms  # noqa: E402
from yolo_gd.telemetry.recorder import StepRecorder  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(cases: dict, device, rounds: int) -> dict:
    """Median seconds per call of each case, timed in ``rounds`` interleaved rounds (A B C A B C ...).

    Interleaving makes the ratios fair on a shared machine: a burst of load hits every case alike.
    ``cases``: name -> (fn, iters, no_grad).
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(rounds + 1):  # round 0 is warmup
        for name, (fn, iters, no_grad) in cases.items():
            with torch.set_grad_enabled(not no_grad):
                sync(device)
                t0 = time.perf_counter()
                for _ in range(iters):
                    fn()
                sync(device)
            if r:
                times[name].append((time.perf_counter() - t0) / iters)
    return {name: statistics.median(t) for name, t in times.items()}


def in_situ(recorders, train_step, trainer, model, optimizer, batch, pairs: int) -> dict:
    """Recorder cost inside a real step (caches as cold as forward/backward leave them), as paired differences.

    Each pair times one plain train step and one with the recorder around ``optimizer.step()``, back to back, so
    slow drifts of a shared machine cancel; returns level -> (median diff, 95 % bootstrap CI low, high, median
    plain step), in seconds.
    """
    counter = itertools.count()

    def recorded(rec):
        optimizer.zero_grad(set_to_none=False)
        loss, _ = model.loss(batch)
        loss.sum().backward()
        record_step(rec, trainer, model, next(counter))
        optimizer.step()
        rec.after_step(trainer)

    def timed(fn, *a):
        t0 = time.perf_counter()
        fn(*a)
        return time.perf_counter() - t0

    rng = random.Random(0)
    out = {}
    diffs = {rec.level: [] for rec in recorders}
    plain = []
    for _ in range(pairs):
        for rec in recorders:
            a = timed(train_step)
            diffs[rec.level].append(timed(recorded, rec) - a)
            plain.append(a)
    for level, d in diffs.items():
        boot = sorted(statistics.median(rng.choices(d, k=len(d))) for _ in range(2000))
        out[level] = (statistics.median(d), boot[49], boot[1949], statistics.median(plain))
    return out


CLIP = 10.0  # Ultralytics' fixed clip threshold (BaseTrainer.optimizer_step): in situ, on fresh gradients
# Micro cases call the clip again and again on the same gradients: a threshold that bites would shrink them
# geometrically into denormal floats (measured: the clip 20x slower on CPU). This one never bites; the clip still
# multiplies every gradient by its coefficient (1.0), so the work is the same.
MICRO_CLIP = 1e9


def record_step(rec, trainer, model, i: int, clip: float = CLIP) -> None:
    """What the owned step does with telemetry on, up to the optimizer step: one read, the clip, the record."""
    if rec.level == "full":
        rec.first_microbatch(trainer, i)  # noise scale: worst case k = 2, one extra read per step
    read = clip_read_(read_grads(model.parameters()), clip)
    rec.before_step(trainer, Progress(i, 10**9, i, 10**6, 1), read, clip)


def meanwhile() -> list[str]:
    """Other processes using CPU now (ps, > 5 % CPU): the machine is shared, timings depend on it."""
    try:
        out = subprocess.run(["ps", "-eo", "pcpu,etime,args", "--sort=-pcpu"], capture_output=True, text=True,
                             timeout=10).stdout.splitlines()[1:]
    except (OSError, subprocess.SubprocessError):
        return []
    me = str(os.getpid())
    return [line.strip()[:160] for line in out if line.split() and float(line.split()[0]) > 5 and me not in line]


def build(device):
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from yolo_gd.optim.groups import build_param_groups

    model = DetectionModel("yolo11n.yaml", nc=3, verbose=False).to(device)
    model.args = get_cfg()
    for p in model.parameters():
        p.requires_grad_(True)
    groups = build_param_groups(model, lr=0.01, weight_decay=5e-4)
    optimizer = torch.optim.SGD(groups, lr=0.01, momentum=0.937, nesterov=True)
    return model, optimizer


def fake_batch(batch: int, imgsz: int, device, boxes_per_image: int = 4):
    g = torch.Generator().manual_seed(0)
    n = batch * boxes_per_image
    xy = torch.rand(n, 2, generator=g) * 0.6 + 0.2
    wh = torch.rand(n, 2, generator=g) * 0.2 + 0.05
    return {
        "img": torch.rand(batch, 3, imgsz, imgsz, generator=g).to(device),
        "batch_idx": torch.arange(batch).repeat_interleave(boxes_per_image).float().to(device),
        "cls": torch.randint(0, 3, (n, 1), generator=g).float().to(device),
        "bboxes": torch.cat([xy, wh], 1).to(device),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--imgsz", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--train-iters", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--pairs", type=int, default=30)
    ap.add_argument("--out", default=None, help="result JSON (default bench/results/recorder_micro_<device>.json)")
    ap.add_argument("--meanwhile", default="", help="what else ran on the machine (stored with the result)")
    args = ap.parse_args()
    device = torch.device(args.device)

    model, optimizer = build(device)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for p in params:
        p.grad = torch.randn_like(p)
    grads = [p.grad for p in params]
    nbytes = sum(p.numel() * p.element_size() for p in params)
    n_el = sum(p.numel() for p in params)
    loss_items = {k: torch.rand((), device=device) for k in ("box_loss", "cls_loss", "dfl_loss")}
    trainer = types.SimpleNamespace(
        optimizer=optimizer, model=model, scaler=torch.amp.GradScaler(device.type, enabled=device.type == "cuda"),
        loss=torch.rand((), device=device), loss_items=loss_items, batch_size=args.batch, epoch=0,
    )
    if trainer.scaler.is_enabled():
        trainer.scaler.scale(trainer.loss)  # initializes _scale as a training step would
        trainer.scaler.unscale_(optimizer)

    print(f"device={device} torch={torch.__version__} python={platform.python_version()} "
          f"threads={torch.get_num_threads()} cpu={platform.processor() or platform.machine()}")
    if device.type == "cuda":
        print(f"gpu={torch.cuda.get_device_name(device)}")
    print(f"yolo11n nc=3: {len(params)} parameter tensors, {n_el / 1e6:.3f} M elements, "
          f"params+grads {2 * nbytes / 1e6:.1f} MB, groups {[len(g['params']) for g in optimizer.param_groups]}")

    snap = [torch.empty_like(p) for p in params]
    flat = torch.empty(n_el, device=device)
    sizes = [sum(p.numel() for p in g["params"]) for g in optimizer.param_groups]
    batch = fake_batch(args.batch, args.imgsz, device)
    model.train()

    def train_step():
        # zero in place first: the grads stay allocated (the tensors the micro cases read) and hold real gradients
        optimizer.zero_grad(set_to_none=False)
        loss, _ = model.loss(batch)
        loss.sum().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)  # the host's step clips: the in-situ baseline
        optimizer.step()

    cases = {
        "foreach_norm(grads) [reference]": (lambda: torch._foreach_norm(grads), args.iters, True),
        "clip alone (host's clip_grad_norm_)": (
            lambda: torch.nn.utils.clip_grad_norm_(model.parameters(), MICRO_CLIP), args.iters, True),
        "foreach_copy_(snapshot, params)": (lambda: torch._foreach_copy_(snap, params), args.iters, True),
        "foreach_sub_(snapshot, params)": (lambda: torch._foreach_sub_(snap, params), args.iters, True),
        "slice_norms(flat snapshot, groups)": (lambda: slice_norms(flat, sizes), args.iters, True),
    }
    bytes_read = {
        "foreach_norm(grads) [reference]": nbytes,
        "clip alone (host's clip_grad_norm_)": 2 * nbytes,
        "foreach_copy_(snapshot, params)": 2 * nbytes,
        "foreach_sub_(snapshot, params)": 3 * nbytes,
        "slice_norms(flat snapshot, groups)": nbytes,
    }
    with tempfile.TemporaryDirectory() as d:
        recorders = []
        for level in ("basic", "full"):
            rec = StepRecorder(os.path.join(d, level), level=level, tensorboard=False, capacity=1 << 16)
            recorders.append(rec)
            counter = itertools.count()

            def one(rec=rec, counter=counter):
                record_step(rec, trainer, model, next(counter), MICRO_CLIP)
                rec.after_step(trainer)

            cases[f"read+clip+recorder {level}"] = (one, args.iters, True)
            # basic reads the grads twice (norm, clip multiply); full also snapshots and re-reads the params
            bytes_read[f"read+clip+recorder {level}"] = 2 * nbytes if level == "basic" else 4 * nbytes
        cases[f"train step yolo11n {args.imgsz}px b{args.batch}"] = (train_step, args.train_iters, False)
        t = interleaved(cases, device, args.rounds)
        paired = in_situ(recorders, train_step, trainer, model, optimizer, batch, args.pairs)
        for rec in recorders:
            rec._n = 0  # drop the benchmark rows instead of writing them
            rec.close()

    print(f"{'case':<36} {'ms/step':>9} {'GB/s*':>7}")
    for name, sec in t.items():
        b = bytes_read.get(name)
        gbs = f"{b / sec / 1e9:7.2f}" if b else "      -"
        print(f"{name:<36} {sec * 1e3:9.3f} {gbs}")
    print("* GB/s: bytes the case must touch at least once / time (recorder basic: grads, full: params + grads)")
    report(args, device, t, paired, len(params), n_el)


def report(args, device, t: dict, paired: dict, n_tensors: int, n_el: int) -> None:
    """Print the ratios and store them with the timings, device, versions and what else ran."""
    import ultralytics

    clip = t["clip alone (host's clip_grad_norm_)"]
    basic, full = t["read+clip+recorder basic"], t["read+clip+recorder full"]
    train = t[f"train step yolo11n {args.imgsz}px b{args.batch}"]
    ratios = {"basic_vs_clip_alone": basic / clip, "full_vs_basic": full / basic,
              "basic_vs_foreach_norm": basic / t["foreach_norm(grads) [reference]"]}
    print()
    print(f"read+clip+recorder basic / clip alone: {ratios['basic_vs_clip_alone']:.3f}x (goal <= 1.15)")
    print(f"read+clip+recorder full / basic:       {ratios['full_vs_basic']:.3f}x (goal <= 2)")
    for level in ("basic", "full"):
        print(f"{level:<5}: {100 * t[f'read+clip+recorder {level}'] / train:5.2f} % of a train step")
    for level, (med, lo, hi, base) in paired.items():
        print(f"in situ  {level:<5}: {med * 1e3:+.2f} ms (95% CI {lo * 1e3:+.2f} .. {hi * 1e3:+.2f}) per step over "
              f"a train step with the host's clip = {100 * med / base:+.2f} % of {base * 1e3:.1f} ms "
              f"(paired, {args.pairs} pairs)")
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        platform.processor() or platform.machine())
    result = {
        "device": device_name, "device_type": device.type, "torch": str(torch.__version__),
        "ultralytics": ultralytics.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(), "args": vars(args), "parameter_tensors": n_tensors, "elements": n_el,
        "ms_per_call": {k: v * 1e3 for k, v in t.items()}, "ratios": ratios,
        "goals": {"basic_vs_clip_alone": 1.15, "full_vs_basic": 2.0},
        "in_situ_ms": {k: dict(zip(("median", "ci_lo", "ci_hi", "plain_step"), (x * 1e3 for x in v)))
                       for k, v in paired.items()},
        "meanwhile": args.meanwhile, "load_average": os.getloadavg(), "other_processes": meanwhile(),
    }
    out = args.out or os.path.join(os.path.dirname(__file__), "results", f"recorder_micro_{device.type}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {out}")

if __name__ == "__main__":
    main()

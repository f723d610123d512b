"""The QAT measurement table: accuracy, size and CPU latency of each form of the model, side by side.

Rows (:data:`ROWS`, in this order; a row whose artifact is missing is left out):

- ``float``: the float checkpoint in PyTorch.
- ``float_onnx``: the same model exported to fp32 ONNX, in onnxruntime (the latency reference for the INT8 rows).
- ``ptq_onnxruntime``: what a user gets by default: Ultralytics' ``export(format='onnx', quantize=8)`` of the float
  model (onnxruntime static quantization of Conv/Gemm/MatMul), calibrated on train images (see ``export.py``).
- ``ptq_modelopt``: ModelOpt INT8 calibration (Ultralytics' ``prepare_qat``) with zero fine-tuning steps, exported
  the same way as the QAT model.
- ``qat_torch``: the fine-tuned fake-quantized model in PyTorch (ModelOpt's fake quantization on CPU).
- ``qat_onnx``: the fine-tuned model's ONNX with Q/DQ nodes and int8 weights, in onnxruntime.

Columns: ``mAP50-95`` and ``mAP50`` from Ultralytics' validator on the data's ``val`` split (``rect=False`` for
every row, so PyTorch and ONNX rows see the same letterboxed images); ``file_mb`` (the artifact on disk);
``latency_ms_per_image``: median of ``runs`` timed forward passes after ``warmup`` untimed ones, batch 1, one
zero image at ``imgsz``, model forward only (no pre-processing, no NMS), on CPU with one thread per available CPU
for PyTorch and onnxruntime alike; ``qdq_nodes``: QuantizeLinear + DequantizeLinear nodes (0 for PyTorch rows).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROWS", "Candidate", "cpu_threads", "latency_ms", "map_scores", "measure", "write_table"]

ROWS = {
    "float": "float checkpoint, PyTorch",
    "float_onnx": "float, fp32 ONNX (onnxruntime)",
    "ptq_onnxruntime": "PTQ: Ultralytics export(format=onnx, quantize=8) of the float model (onnxruntime static "
                       "INT8, calibrated on train images)",
    "ptq_modelopt": "PTQ: ModelOpt INT8 calibration, 0 fine-tuning steps, ONNX Q/DQ (onnxruntime)",
    "qat_torch": "QAT: fake-quantized model, PyTorch",
    "qat_onnx": "QAT: ONNX Q/DQ with int8 weights (onnxruntime)",
}

COLUMNS = ("row", "runtime", "mAP50-95", "mAP50", "file_mb", "latency_ms_per_image", "qdq_nodes", "file",
           "description")


@dataclass(frozen=True)
class Candidate:
    """One row to measure: a name from :data:`ROWS` and its artifact (``.pt`` for PyTorch, ``.onnx``)."""

    name: str
    path: Path

    @property
    def runtime(self) -> str:
        return "onnxruntime" if Path(self.path).suffix == ".onnx" else "torch"


def map_scores(path: str | Path, *, data: str | Path, imgsz: int, batch: int = 16,
               project: str | Path | None = None, name: str = "val") -> tuple[float, float]:
    """``(mAP50-95, mAP50)`` of ``path`` on ``data``'s val split with Ultralytics' validator, on CPU."""
    from ultralytics import YOLO

    onnx = Path(path).suffix == ".onnx"
    kwargs = dict(data=str(data), imgsz=imgsz, batch=1 if onnx else batch, split="val", rect=False, device="cpu",
                  plots=False, save_json=False, verbose=False, exist_ok=True, name=name)
    if project is not None:
        kwargs["project"] = str(project)
    metrics = YOLO(str(path), task="detect").val(**kwargs)
    return float(metrics.box.map), float(metrics.box.map50)


def cpu_threads() -> int:
    """The CPUs this process may run on: the thread count of every latency measurement (set explicitly, because
    Ultralytics' ``select_device`` leaves PyTorch at ``cpu_count - 1`` threads after a training)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def latency_ms(path: str | Path, *, imgsz: int, runs: int = 50, warmup: int = 5, threads: int | None = None) -> float:
    """Median CPU milliseconds of one batch-1 forward pass of ``path`` (``.pt`` in PyTorch, ``.onnx`` in
    onnxruntime) on a zero image of ``imgsz``, with ``threads`` intra-op threads (default :func:`cpu_threads`)."""
    import numpy as np
    import torch

    threads = threads or cpu_threads()
    if Path(path).suffix == ".onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        inp = session.get_inputs()[0]
        shape = tuple(d if isinstance(d, int) else 1 for d in inp.shape)
        feed = {inp.name: np.zeros(shape, dtype=np.float32)}

        def forward():
            session.run(None, feed)
    else:
        from ultralytics import YOLO

        model = YOLO(str(path)).model.float().cpu().eval()
        model = model.fuse(verbose=False) if hasattr(model, "fuse") else model
        x = torch.zeros(1, 3, imgsz, imgsz)

        def forward():
            model(x)

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                forward()
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                forward()
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(previous)
    return float(np.median(times) * 1e3)


def measure(candidates: list[Candidate], *, data: str | Path, imgsz: int, batch: int = 16,
            work_dir: str | Path | None = None, runs: int = 50, warmup: int = 5):
    """Measure every candidate; return a ``pandas.DataFrame`` with :data:`COLUMNS`, rows in :data:`ROWS` order."""
    import pandas as pd

    from yolo_gd.qat.export import count_qdq

    order = list(ROWS)
    rows = []
    for c in sorted(candidates, key=lambda c: order.index(c.name) if c.name in order else len(order)):
        path = Path(c.path)
        m, m50 = map_scores(path, data=data, imgsz=imgsz, batch=batch,
                            project=Path(work_dir) / "val" if work_dir else None, name=c.name)
        qdq = sum(count_qdq(path)) if c.runtime == "onnxruntime" else 0
        rows.append({
            "row": c.name, "runtime": c.runtime, "mAP50-95": m, "mAP50": m50,
            "file_mb": path.stat().st_size / 1e6,
            "latency_ms_per_image": latency_ms(path, imgsz=imgsz, runs=runs, warmup=warmup),
            "qdq_nodes": int(qdq), "file": str(path), "description": ROWS.get(c.name, ""),
        })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_table(table, out_stem: str | Path, *, meta: dict | None = None) -> tuple[Path, Path]:
    """Write ``table`` as ``<out_stem>.csv`` and ``<out_stem>.md`` (a header of ``meta`` lines, then the table with
    paths relative to the Markdown file's folder); return both paths."""
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    csv, md = out_stem.with_suffix(".csv"), out_stem.with_suffix(".md")
    table.to_csv(csv, index=False)

    def fmt(key, v):
        if isinstance(v, float):
            if not math.isfinite(v):
                return "n/a"
            return f"{v:.4f}" if key.startswith("mAP") else f"{v:.2f}"
        if key == "file":
            try:
                return f"`{Path(v).resolve().relative_to(md.parent.resolve())}`"
            except ValueError:
                return f"`{v}`"
        return str(v)

    lines = ["# QAT measurement", ""]
    lines += [f"- {k}: {v}" for k, v in (meta or {}).items()]
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for rec in table.to_dict("records"):
        lines.append("| " + " | ".join(fmt(k, rec[k]) for k in COLUMNS) + " |")
    md.write_text("\n".join(lines) + "\n")
    return csv, md

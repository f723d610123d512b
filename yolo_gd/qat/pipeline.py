"""``qat(float.pt, data, ...)``: calibrate -> fine-tune with an injected optimizer -> export INT8 ONNX -> measure.

1. Checks (one-line :class:`UserError` each): the ``qat`` extra is installed (ModelOpt, onnx, onnxruntime); the
   model is a float Ultralytics detection checkpoint (not a ``.yaml``, not a checkpoint that already carries
   ModelOpt quantizers); the data has a ``val`` split (the table scores every model on it).
2. Calibrate + fine-tune: ``YOLO(float).train(quantize=8, ...)`` with :func:`yolo_gd.attach`. Ultralytics'
   ``_setup_train`` runs ``prepare_qat`` (ModelOpt ``INT8_DEFAULT_CFG``, 8 calibration batches of train images, the
   head's output layers left in float) BEFORE it builds the optimizer, so the injected optimizer, schedule, clip
   and telemetry act on the fake-quantized model. Defaults are a fine-tune's: AdamW at 1e-5, per-step cosine, no
   warmup, 3 epochs. At ``on_pretrain_routine_end`` (calibrated, no step taken yet) the model is saved as
   ``qat/ptq_modelopt.pt``: the PTQ baseline is the exact starting point of the fine-tune.
3. Export (``export.py``): Ultralytics' ONNX exporter (``torch.onnx.export(dynamo=False)``) writes Q/DQ nodes;
   the weight quantizers are folded into int8 initializers (``weights/last_int8.onnx``); onnxruntime must load and
   run it with the float model's output shape.
4. Measure (``evaluate.py``): ``qat_table.csv`` and ``qat_table.md`` in the run folder.

ModelOpt is imported only inside ``yolo_gd.qat`` functions (through Ultralytics' ``prepare_qat``/``restore_qat``),
never at import time, and nowhere else in the package.
"""

from __future__ import annotations

import importlib
import shutil
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolo_gd.errors import UserError
from yolo_gd.inject.config import UNSET

__all__ = ["QATResult", "PtqSnapshot", "check_float_checkpoint", "count_quantizers", "qat", "qat_command",
           "require_qat_packages"]

EXTRA_HINT = "pip install 'yolo_gd[qat]'"
RUN_NAME = "qat"  # default run name under the project folder
WORK_DIR = "qat"  # artifacts of the measurement, inside the run folder
PTQ_NAME = "ptq_modelopt.pt"
TABLE_STEM = "qat_table"

#: (module to import, distribution that provides it) for everything the pipeline needs beyond the base install.
_REQUIRED = (
    ("modelopt.torch.quantization", "nvidia-modelopt"),  # also imports huggingface_hub (undeclared by ModelOpt)
    ("onnx", "onnx"),
    ("onnxruntime", "onnxruntime"),
)


@dataclass(frozen=True)
class QATResult:
    """Where a :func:`qat` run put everything, and what it counted."""

    save_dir: Path  # Ultralytics' run folder (weights/, results.csv, telemetry/)
    qat_checkpoint: Path  # weights/last.pt: fine-tuned, ModelOpt quantizer state beside the module
    onnx_path: Path  # weights/last_int8.onnx: Q/DQ graph with int8 weights
    table_path: Path | None  # qat_table.csv (None with measure=False)
    table_md: Path | None = None
    ptq_checkpoint: Path | None = None  # qat/ptq_modelopt.pt: calibrated, zero fine-tuning steps
    quantizers: int = 0  # ModelOpt TensorQuantizer modules in the fine-tuned model
    quantizers_enabled: int = 0
    quantize_nodes: int = 0  # QuantizeLinear / DequantizeLinear nodes in onnx_path
    dequantize_nodes: int = 0
    table: Any = field(default=None, repr=False)  # the pandas.DataFrame written to table_path


# --- checks -------------------------------------------------------------------------------------------------------


def require_qat_packages() -> None:
    """Raise a one-line :class:`UserError` naming the ``qat`` extra if ModelOpt, onnx or onnxruntime is missing."""
    missing = []
    for module, dist in _REQUIRED:
        try:
            importlib.import_module(module)
        except ImportError as e:  # name the inner module when the package is there but one of its imports is not
            inner = getattr(e, "name", None) not in (None, module.split(".")[0])
            missing.append(f"{dist} ({e})" if inner else dist)
    if missing:
        raise UserError(f"QAT needs {', '.join(missing)}, which the base install leaves out: {EXTRA_HINT}")


def check_float_checkpoint(model: str | Path) -> dict:
    """Check ``model`` is a float Ultralytics detection checkpoint; return its ``train_args`` (may be empty)."""
    import torch

    from yolo_gd._offline import check_local_weights

    text = str(model)
    if not text.endswith(".pt"):
        raise UserError(f"QAT fine-tunes a trained float checkpoint (.pt), got '{text}': train the float model first "
                        f"(yolo-gd train ...) and pass its weights/best.pt or last.pt")
    check_local_weights(text)
    from ultralytics.nn.tasks import guess_model_task, torch_safe_load

    try:
        ckpt, _ = torch_safe_load(text)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise UserError(f"cannot read '{text}' as an Ultralytics checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict):
        raise UserError(f"'{text}' is not an Ultralytics checkpoint (a dict with 'model'/'ema'): pass a YOLO .pt")
    if ckpt.get("modelopt"):
        raise UserError(f"'{text}' is already quantization-aware (it carries ModelOpt quantizer state): pass the "
                        f"float checkpoint it was fine-tuned from (an interrupted QAT run resumes with "
                        f"yolo_gd.train(model='<run>/weights/last.pt', resume=True, optimizer=...))")
    net = ckpt.get("ema") or ckpt.get("model")
    if not isinstance(net, torch.nn.Module):
        raise UserError(f"'{text}' holds no model ('model'/'ema' is empty): pass a trained YOLO .pt")
    task = getattr(net, "task", None) or guess_model_task(net)
    if task != "detect":
        raise UserError(f"'{text}' is a {task} model: yolo_gd's QAT pipeline handles detection checkpoints only")
    return dict(ckpt.get("train_args") or {})


def check_val_split(data: str | Path) -> Path:
    """Resolve ``data`` (a data.yaml, its folder, 'shapes', 'bccd'), require a ``val`` split, run the dataset check."""
    import yaml

    from yolo_gd.datasets.check import check_dataset, resolve_data

    yaml_path = resolve_data(data)
    try:
        cfg = yaml.safe_load(Path(yaml_path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"cannot read {yaml_path}: {e}") from None
    if not isinstance(cfg, dict) or not cfg.get("val"):
        raise UserError(f"{yaml_path} has no 'val' split: QAT scores the float, PTQ and QAT models on it; add "
                        f"'val: images/val' (images the model does not train on)")
    check_dataset(yaml_path)
    return Path(yaml_path)


# --- fine-tune ----------------------------------------------------------------------------------------------------


class PtqSnapshot:
    """Callback (``on_pretrain_routine_end``): save the freshly calibrated model before any optimizer step.

    That is post-training quantization with ModelOpt's calibration: the same quantizers and ranges the fine-tune
    starts from. Saved like Ultralytics' ``Model.save`` (quantizer state beside the stripped module), so
    ``YOLO(path)`` restores it. Skipped on resume and on DDP ranks other than 0. Picklable (holds a path only).
    """

    def __init__(self, filename: str = PTQ_NAME):
        self.filename = filename

    def __call__(self, trainer) -> None:
        import torch
        from ultralytics import __version__
        from ultralytics.utils import RANK
        from ultralytics.utils.torch_utils import qat_state, strip_qat, unwrap_model

        if trainer.resume or RANK not in {-1, 0}:
            return
        model = unwrap_model(trainer.model)
        state = qat_state(model)
        if state is None:
            return
        copy = deepcopy(model).half()
        if hasattr(copy, "criterion"):
            copy.criterion = None
        strip_qat(copy)
        path = Path(trainer.save_dir) / WORK_DIR / self.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"epoch": -1, "model": copy, "ema": None, "modelopt": state, "optimizer": None,
                    "train_args": vars(trainer.args), "version": __version__,
                    "yolo_gd": "ModelOpt INT8 calibration, 0 fine-tuning steps"}, path)


def count_quantizers(model) -> tuple[int, int]:
    """``(all, enabled)`` ModelOpt ``TensorQuantizer`` modules in ``model`` (an ``nn.Module`` or a YOLO)."""
    from modelopt.torch.quantization.nn import TensorQuantizer

    found = [m for m in model.modules() if isinstance(m, TensorQuantizer)]  # ultralytics.YOLO is an nn.Module too
    return len(found), sum(bool(m.is_enabled) for m in found)


def _check_finite(save_dir: Path) -> None:
    import numpy as np
    import pandas as pd

    results = save_dir / "results.csv"
    if not results.is_file():
        return
    df = pd.read_csv(results)
    df.columns = [c.strip() for c in df.columns]
    losses = df[[c for c in df.columns if c.startswith("train/")]].to_numpy(dtype=float)
    if np.isfinite(losses).all():
        return
    where = ""
    try:
        from yolo_gd.telemetry.sinks import read_steps

        steps = read_steps(save_dir)
        if not steps.empty and steps["nonfinite"].any():
            where = f" from optimizer step {int(steps.loc[steps['nonfinite'], 'step'].iloc[0])}"
    except Exception:  # noqa: BLE001 - the hint is optional
        pass
    raise UserError(
        f"QAT fine-tune diverged: non-finite loss/gradients{where} (see {results}). The fake-quantized model's "
        f"gradients overflowed; seen with float checkpoints trained for only a few dozen batches (activation ranges "
        f"calibrated in eval mode do not match training-mode activations): start from a longer-trained float model "
        f"or lower lr. Nothing was exported")


def _float_output_shape(float_pt: Path, imgsz: int) -> tuple[int, ...]:
    import torch
    from ultralytics import YOLO

    net = YOLO(str(float_pt)).model.float().cpu().eval()
    with torch.inference_mode():
        out = net(torch.zeros(1, 3, imgsz, imgsz))
    return tuple((out[0] if isinstance(out, (list, tuple)) else out).shape)


def qat(model: str | Path, data: str | Path, *, optimizer: Any = "adamw", lr: float | None = 1e-5,
        schedule: Any = "cosine", epochs: int = 3, imgsz: int | None = None, batch: int | None = None,
        clip: Any = UNSET, telemetry: str = "basic", project: str | Path | None = None, name: str | None = None,
        measure: bool = True, latency_runs: int = 50, **train_kwargs) -> QATResult:
    """Quantization-aware fine-tune of a float detection checkpoint, INT8 ONNX export and a measurement table.

    Args:
        model: the trained float checkpoint (``.pt``).
        data: a data.yaml (or its folder, ``'shapes'``, ``'bccd'``) with a ``val`` split.
        optimizer, lr, schedule, clip, telemetry: what :func:`yolo_gd.attach` injects (``lr=None``: the
            registry's/Ultralytics' LR; ``schedule=None``: Ultralytics' per-epoch schedule; ``clip=None``: none).
        epochs: fine-tuning epochs.
        imgsz, batch: default to the float checkpoint's training values.
        project, name: run folder ``project/name`` (default ``runs/detect/qat``, incremented if it exists).
        measure: build the table (float, PTQ x2, QAT in PyTorch and ONNX); False: fine-tune and export only.
        latency_runs: timed forward passes per row.
        **train_kwargs: other :class:`~yolo_gd.inject.config.InjectConfig` options (``warmup``, ``weight_decay``,
            ``groups``...; ``warmup`` defaults to 0 here) and Ultralytics train arguments (``workers``, ``seed``...).
    """
    from yolo_gd.training import default_project

    if optimizer is None or str(optimizer).lower() == "auto":
        raise UserError("qat injects the fine-tuning optimizer: pass optimizer=... (e.g. optimizer='adamw'); "
                        "'auto'/None would leave Ultralytics' own choice, use yolo_gd.train(..., quantize=8) for that")
    float_args = check_float_checkpoint(model)
    data_yaml = check_val_split(data)
    require_qat_packages()  # after the cheap checks: importing ModelOpt takes seconds and prints CUDA warnings
    ours, theirs = _split_train_kwargs(train_kwargs)
    imgsz = int(imgsz or float_args.get("imgsz") or 640)
    batch = int(batch or float_args.get("batch") or 16)

    from ultralytics import YOLO

    from yolo_gd.inject.attach import attach

    yolo = YOLO(str(model))
    attach(yolo, optimizer, schedule=schedule, clip=clip, lr=lr, telemetry=telemetry, **ours)
    yolo.add_callback("on_pretrain_routine_end", PtqSnapshot())
    project = Path(project).expanduser().resolve() if project else default_project()
    yolo.train(data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, quantize=8, project=str(project),
               name=name or RUN_NAME, **theirs)
    trainer = yolo.trainer
    save_dir = Path(trainer.save_dir)
    quantizers, enabled = count_quantizers(trainer.model)
    _check_finite(save_dir)
    qat_ckpt = Path(trainer.last)
    ptq_ckpt = save_dir / WORK_DIR / PTQ_NAME
    return _export_and_measure(Path(model), data_yaml, save_dir, qat_ckpt, ptq_ckpt if ptq_ckpt.is_file() else None,
                               imgsz=imgsz, batch=batch, quantizers=(quantizers, enabled), measure=measure,
                               latency_runs=latency_runs)


def _split_train_kwargs(train_kwargs: dict) -> tuple[dict, dict]:
    """qat's extra keywords as (yolo_gd's, Ultralytics'), checked: no second quantize mode, no resume, no key that
    is qat's own argument; ``warmup`` defaults to 0 (a fine-tune from trained weights; '1ep' etc. still possible)."""
    from yolo_gd.training import _check_ultralytics_keys, split_keys

    ours, theirs = split_keys(train_kwargs)
    if theirs.pop("quantize", 8) not in (8, "8", "int8"):
        raise UserError("qat trains INT8 (quantize=8) only: drop quantize=")
    if theirs.get("resume"):
        raise UserError("qat starts a new fine-tune from a float checkpoint; to resume an interrupted one use "
                        "yolo_gd.train(model='<run>/weights/last.pt', resume=True, optimizer=...) with the same "
                        "optimizer and schedule")
    for key in ("data", "model", "epochs", "imgsz", "batch", "project", "name"):
        if key in theirs:
            raise UserError(f"pass {key} as qat's own argument, not as a train keyword")
    _check_ultralytics_keys(theirs)
    ours.setdefault("warmup", 0)
    return ours, theirs


def _export_and_measure(float_pt: Path, data_yaml: Path, save_dir: Path, qat_ckpt: Path, ptq_ckpt: Path | None, *,
                        imgsz: int, batch: int, quantizers: tuple[int, int], measure: bool,
                        latency_runs: int) -> QATResult:
    from yolo_gd.qat.evaluate import Candidate, write_table
    from yolo_gd.qat.evaluate import measure as measure_rows
    from yolo_gd.qat.export import check_onnx, export_onnx, export_onnxruntime_int8

    work = save_dir / WORK_DIR
    work.mkdir(parents=True, exist_ok=True)
    expected = _float_output_shape(float_pt, imgsz)
    onnx_path = export_onnx(qat_ckpt, imgsz=imgsz)
    check = check_onnx(onnx_path, expect_output_shape=expected)
    if check.qdq_nodes == 0:
        raise RuntimeError(f"{onnx_path} has no QuantizeLinear/DequantizeLinear nodes: the export lost the quantizers")
    result = dict(save_dir=save_dir, qat_checkpoint=qat_ckpt, onnx_path=onnx_path, table_path=None,
                  ptq_checkpoint=ptq_ckpt, quantizers=quantizers[0], quantizers_enabled=quantizers[1],
                  quantize_nodes=check.quantize_nodes, dequantize_nodes=check.dequantize_nodes)
    if not measure:
        return QATResult(**result)

    float_copy = work / "float.pt"  # exports land beside their .pt: keep them out of the float run's folder
    shutil.copy2(float_pt, float_copy)
    candidates = [Candidate("float", float_copy), Candidate("qat_torch", qat_ckpt), Candidate("qat_onnx", onnx_path)]
    ort_int8 = export_onnxruntime_int8(float_copy, data=data_yaml, imgsz=imgsz)  # float_int8.onnx (before float.onnx)
    check_onnx(ort_int8, expect_output_shape=expected)
    candidates.append(Candidate("ptq_onnxruntime", ort_int8))
    float_onnx = export_onnx(float_copy, imgsz=imgsz, fold_weights=False)
    candidates.append(Candidate("float_onnx", float_onnx))
    if ptq_ckpt is not None:
        ptq_onnx = export_onnx(ptq_ckpt, imgsz=imgsz)
        check_onnx(ptq_onnx, expect_output_shape=expected)
        candidates.append(Candidate("ptq_modelopt", ptq_onnx))

    table = measure_rows(candidates, data=data_yaml, imgsz=imgsz, batch=batch, work_dir=work, runs=latency_runs)
    csv, md = write_table(table, save_dir / TABLE_STEM, meta=_meta(data_yaml, imgsz, latency_runs, quantizers, check))
    result.update(table_path=csv, table_md=md, table=table)
    return QATResult(**result)


def _meta(data_yaml: Path, imgsz: int, runs: int, quantizers: tuple[int, int], check) -> dict:
    import platform

    import onnxruntime
    import torch
    import ultralytics

    from yolo_gd.qat.evaluate import cpu_threads

    try:
        from importlib.metadata import version

        modelopt = version("nvidia-modelopt")
    except Exception:  # noqa: BLE001
        modelopt = "?"
    return {
        "data": f"`{data_yaml}` (val split, Ultralytics validator, rect=False)",
        "imgsz": imgsz,
        "latency": f"median of {runs} batch-1 forward passes on CPU ({cpu_threads()} threads, "
                   f"{platform.processor() or platform.machine()}), model only: no pre-processing, no NMS",
        "quantizers": f"{quantizers[0]} ModelOpt TensorQuantizers ({quantizers[1]} enabled) in the QAT model; "
                      f"QAT ONNX: {check.quantize_nodes} QuantizeLinear + {check.dequantize_nodes} DequantizeLinear",
        "versions": f"ultralytics {ultralytics.__version__}, torch {torch.__version__}, nvidia-modelopt {modelopt}, "
                    f"onnxruntime {onnxruntime.__version__}",
    }


# --- CLI ----------------------------------------------------------------------------------------------------------

QAT_USAGE = ("usage: yolo-gd qat model=FLOAT.pt data=DATA [optimizer=adamw] [lr=1e-5] [schedule=cosine] [epochs=3] "
             "[imgsz=...] [batch=...] [clip=...] [measure=true] [key=value ...]")


def qat_command(args: dict) -> int:
    """``yolo-gd qat model=FLOAT.pt data=... optimizer=... lr=... schedule=... epochs=...`` (parsed key=values)."""
    args = dict(args)
    model, data = args.pop("model", None), args.pop("data", None)
    if not model or not data:
        raise UserError(QAT_USAGE)
    result = qat(model, data, **args)
    print(f"yolo-gd: QAT run in {result.save_dir}")
    print(f"  {result.quantizers} quantizers ({result.quantizers_enabled} enabled); "
          f"ONNX {result.onnx_path}: {result.quantize_nodes} QuantizeLinear + {result.dequantize_nodes} "
          f"DequantizeLinear, runs in onnxruntime")
    if result.table is not None:
        print(format_table(result.table))
        print(f"  table: {result.table_path}\n         {result.table_md}")
    return 0


def format_table(table) -> str:
    """The measurement table as aligned text (row, mAP50-95, mAP50, MB, ms/image, Q/DQ nodes)."""
    lines = [f"  {'row':<16} {'mAP50-95':>9} {'mAP50':>7} {'MB':>7} {'ms/img':>8} {'Q/DQ':>6}"]
    for r in table.to_dict("records"):
        lines.append(f"  {r['row']:<16} {r['mAP50-95']:>9.4f} {r['mAP50']:>7.4f} {r['file_mb']:>7.2f} "
                     f"{r['latency_ms_per_image']:>8.2f} {r['qdq_nodes']:>6d}")
    return "\n".join(lines)

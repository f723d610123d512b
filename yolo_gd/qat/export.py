"""ONNX export of (fake-)quantized YOLO checkpoints, Q/DQ counting, and a load-and-run check in onnxruntime.

Export reuses Ultralytics' exporter (``YOLO(ckpt).export(format='onnx')``): for a QAT checkpoint it restores the
ModelOpt quantizers, fuses BatchNorm into the convolutions (rescaling the per-channel weight ranges) and calls
``torch.onnx.export(..., dynamo=False)``, so every enabled ``TensorQuantizer`` becomes a QuantizeLinear ->
DequantizeLinear pair. Weights then travel as fp32 initializers behind a per-channel QuantizeLinear: the file is
as large as the float model's. :func:`fold_weight_quantizers` computes those QuantizeLinear nodes once (exactly
the ONNX formula ``saturate(round_half_even(w / scale) + zero_point)``) and stores int8 initializers instead,
which is the layout onnxruntime's own static quantization writes and TensorRT reads.

``simplify=False`` is passed on every export: onnxslim is not a dependency (Ultralytics would try to pip-install
it) and constant folding must not touch the Q/DQ pattern. Nothing here imports ModelOpt; ``onnx`` and
``onnxruntime`` are imported inside the functions (the ``qat`` extra).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["OnnxCheck", "check_onnx", "count_qdq", "export_onnx", "export_onnxruntime_int8", "fold_weight_quantizers"]

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


@dataclass(frozen=True)
class OnnxCheck:
    """What :func:`check_onnx` found: Q/DQ node counts and the shapes of one onnxruntime CPU run."""

    path: Path
    quantize_nodes: int
    dequantize_nodes: int
    input_shape: tuple[int, ...]
    output_shapes: tuple[tuple[int, ...], ...]
    file_mb: float

    @property
    def qdq_nodes(self) -> int:
        return self.quantize_nodes + self.dequantize_nodes


def export_onnx(checkpoint: str | Path, *, imgsz: int, fold_weights: bool = True, opset: int | None = None) -> Path:
    """Export ``checkpoint`` (float or QAT ``.pt``) to ONNX beside it with Ultralytics' exporter; return the path.

    With ``fold_weights`` (default) and a graph whose weights are quantized at run time (a QAT/ModelOpt export),
    the returned file is ``<stem>_int8.onnx``: the same graph with int8 weight initializers (see
    :func:`fold_weight_quantizers`); Ultralytics' ``<stem>.onnx`` stays beside it.
    """
    from ultralytics import YOLO

    kwargs = dict(format="onnx", imgsz=imgsz, batch=1, dynamic=False, simplify=False, device="cpu", verbose=False)
    if opset is not None:
        kwargs["opset"] = opset
    path = Path(YOLO(str(checkpoint)).export(**kwargs))
    if fold_weights and count_qdq(path)[0]:
        folded = path.with_name(f"{path.stem}_int8{path.suffix}")
        if fold_weight_quantizers(path, folded):
            return folded
        folded.unlink(missing_ok=True)
    return path


def export_onnxruntime_int8(float_checkpoint: str | Path, *, data: str | Path, imgsz: int,
                            split: str = "train") -> Path:
    """Ultralytics' own INT8 ONNX: ``export(format='onnx', quantize=8)`` of a FLOAT checkpoint (onnxruntime static
    quantization of Conv/Gemm/MatMul, calibrated on ``split``); writes ``<stem>_int8.onnx`` beside it.

    Ultralytics calibrates on the ``val`` split unless told otherwise; this passes ``split='train'`` by default so
    the PTQ row is not calibrated on the images it is scored on (ModelOpt's calibration also uses train images).
    """
    from ultralytics import YOLO

    return Path(YOLO(str(float_checkpoint)).export(
        format="onnx", quantize=8, data=str(data), split=split, imgsz=imgsz, batch=1, dynamic=False, simplify=False,
        device="cpu", verbose=False))


def count_qdq(path: str | Path) -> tuple[int, int]:
    """``(QuantizeLinear, DequantizeLinear)`` node counts of an ONNX file (main graph)."""
    import onnx

    ops = Counter(n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node)
    return ops["QuantizeLinear"], ops["DequantizeLinear"]


def check_onnx(path: str | Path, *, expect_output_shape: tuple[int, ...] | None = None) -> OnnxCheck:
    """Validate ``path`` with ``onnx.checker``, load it in onnxruntime (CPU) and run one zero image through it.

    Raises ``RuntimeError`` if the output is not finite or (with ``expect_output_shape``) has another shape.
    """
    import numpy as np
    import onnx
    import onnxruntime as ort

    path = Path(path)
    onnx.checker.check_model(str(path))
    q, dq = count_qdq(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = tuple(d if isinstance(d, int) else 1 for d in inp.shape)
    outputs = session.run(None, {inp.name: np.zeros(shape, dtype=np.float32)})
    out_shapes = tuple(tuple(o.shape) for o in outputs)
    if not all(np.isfinite(o).all() for o in outputs):
        raise RuntimeError(f"{path}: onnxruntime produced non-finite outputs")
    if expect_output_shape is not None and out_shapes[0] != tuple(expect_output_shape):
        raise RuntimeError(f"{path}: output shape {out_shapes[0]} != expected {tuple(expect_output_shape)}")
    return OnnxCheck(path, q, dq, shape, out_shapes, path.stat().st_size / 1e6)


# --- weight folding -----------------------------------------------------------------------------------------------

_INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "uint16": (0, 65535)}


def fold_weight_quantizers(src: str | Path, dst: str | Path) -> int:
    """Write ``src`` to ``dst`` with every QuantizeLinear of a constant weight replaced by its int8 result.

    A QuantizeLinear whose input is an initializer and whose scale and zero point are constants (initializers or
    ``Constant`` nodes) is evaluated with ONNX's formula (division in fp32, round half to even, saturation to the
    zero point's type, per-axis scales broadcast along ``axis``); its output tensor becomes an initializer of that
    type under the same name, so the DequantizeLinear after it is untouched. Returns how many were folded (0: ``dst``
    is not written).
    """
    import onnx

    model = onnx.load(str(src))
    folds = _folds(model.graph)
    if not folds:
        return 0
    _apply_folds(model.graph, folds)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return len(folds)


def _folds(graph) -> dict[int, Any]:
    """Node index -> the int8 initializer that replaces that QuantizeLinear's output, for every foldable one."""
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    const_nodes = {n.output[0]: n for n in graph.node if n.op_type == "Constant" and len(n.output) == 1}

    def constant(name: str):
        if name in inits:
            return numpy_helper.to_array(inits[name])
        node = const_nodes.get(name)
        if node is not None and len(node.attribute) == 1 and node.attribute[0].name == "value":
            return numpy_helper.to_array(node.attribute[0].t)
        return None

    folds = {}
    for index, node in enumerate(graph.node):  # by position: protobuf hands out a new wrapper object per access
        if node.op_type == "QuantizeLinear" and node.input[0] in inits:
            folded = _quantize_constant(node, inits[node.input[0]], constant)
            if folded is not None:
                folds[index] = folded
    return folds


def _quantize_constant(node, weight, constant) -> Any:
    """The int8 initializer ``node`` (a QuantizeLinear of the initializer ``weight``) computes; None if its
    attributes, scale or zero point are not ones this evaluates."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if set(attrs) - {"axis", "saturate"}:
        return None  # block quantization, output_dtype...: not ours to evaluate
    scale = constant(node.input[1])
    zero = constant(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros((), np.uint8)
    if scale is None or zero is None or zero.dtype.name not in _INT_RANGES:
        return None
    w = numpy_helper.to_array(weight).astype(np.float32)
    shape = [1] * w.ndim
    if scale.ndim == 1 and scale.size > 1:
        shape[attrs.get("axis", 1) % w.ndim] = -1
    lo, hi = _INT_RANGES[zero.dtype.name]
    q = np.rint(w / scale.astype(np.float32).reshape(shape)) + zero.astype(np.int32).reshape(shape)
    return numpy_helper.from_array(np.clip(q, lo, hi).astype(zero.dtype), name=node.output[0])


def _apply_folds(graph, folds: dict[int, Any]) -> None:
    """Drop the folded QuantizeLinear nodes, add their int8 initializers, drop what nothing reads any more."""
    import onnx

    kept = []
    for i, n in enumerate(graph.node):
        if i not in folds:
            kept.append(onnx.NodeProto())
            kept[-1].CopyFrom(n)  # copies: the originals go with the del below
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(folds.values())
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    unused = [t for t in graph.initializer if t.name not in used]
    for t in unused:
        graph.initializer.remove(t)  # the fp32 weights the folded nodes consumed
    orphans = [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in used]
    for n in orphans:
        graph.node.remove(n)

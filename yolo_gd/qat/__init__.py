"""Quantization-aware training: calibrate a float detection checkpoint with ModelOpt INT8 (Ultralytics'
``quantize=8``), fine-tune it with an injected optimizer/schedule, export INT8 ONNX (Q/DQ) and measure it.

    from yolo_gd.qat import qat
    result = qat("runs/detect/train/weights/best.pt", data="bccd", optimizer="adamw", lr=1e-5, epochs=3)
    print(result.table_path)

Needs the ``qat`` extra (``pip install 'yolo_gd[qat]'``: nvidia-modelopt, huggingface_hub, onnx, onnxruntime).
Importing this package imports none of them; ModelOpt is imported only when a function here runs.
"""

from __future__ import annotations

__all__ = ["QATResult", "qat", "qat_command"]


def __getattr__(name):
    # Lazy: `import yolo_gd.qat` stays free of Ultralytics, ModelOpt and onnx until something is called.
    if name in __all__:
        from yolo_gd.qat import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'yolo_gd.qat' has no attribute '{name}'")

"""yolo_gd.qat: ModelOpt INT8 QAT with an injected optimizer, Q/DQ ONNX export, measurement table, resume, checks."""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import require, tiny_train_args

import yolo_gd
from yolo_gd.errors import UserError
from yolo_gd.qat.pipeline import QATResult

pytestmark = pytest.mark.slow

QAT_ARGS = dict(workers=0, seed=0, deterministic=True, plots=False, verbose=False, amp=False, nbs=16)


@pytest.fixture(scope="module")
def float_ckpt(tiny_data, tmp_path_factory):
    """A float yolo11n trained for 36 batches (3 epochs, batch 4) at 64 px.

    Shorter is not enough: after 12 batches (2 epochs at batch 8) the first QAT backward overflows to inf in the
    backbone (gradients grow ~5-10x per BatchNorm from the head down), natively in Ultralytics too.
    """
    require("modelopt")
    from ultralytics import YOLO

    model = YOLO("yolo11n.yaml")
    model.train(**tiny_train_args(tiny_data, tmp_path_factory.mktemp("qat_float"), "float", epochs=3, batch=4,
                                  optimizer="AdamW", lr0=0.002, val=False))
    return model.trainer.last


@pytest.fixture(scope="module")
def qat_run(float_ckpt, tiny_data, tmp_path_factory):
    """One ``qat()`` run; ``qat_run.seen`` holds what an ``on_train_start`` callback saw of its trainer."""
    import yolo_gd.inject.attach
    from yolo_gd.qat import qat

    seen = {}

    def on_train_start(trainer):  # calibrated, optimizer built and injected, no step taken yet
        from modelopt.torch.quantization.nn import TensorQuantizer

        seen.update(
            optimizer_ids=[id(p) for g in trainer.optimizer.param_groups for p in g["params"]],
            trainable_ids={id(p) for p in trainer.model.parameters() if p.requires_grad},
            parameter_ids={id(p) for p in trainer.model.parameters()},
            quantized_weight_ids={id(m.weight) for m in trainer.model.modules()
                                  if isinstance(getattr(m, "weight_quantizer", None), TensorQuantizer)
                                  and m.weight_quantizer.is_enabled},
            quantizers=_quantizers(trainer.model),
            injected=trainer.optimizer is getattr(getattr(trainer, "_yolo_gd_run", None), "optimizer", None),
        )

    original = yolo_gd.inject.attach.attach

    def attach_and_watch(model, *args, **kwargs):  # qat() builds its YOLO inside: hook in where it attaches
        out = original(model, *args, **kwargs)
        model.add_callback("on_train_start", on_train_start)
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(yolo_gd.inject.attach, "attach", attach_and_watch)
        result = qat(float_ckpt, tiny_data, optimizer="adamw", lr=1e-5, schedule="cosine", epochs=1, imgsz=64,
                     batch=8, project=tmp_path_factory.mktemp("qat_runs"), name="qat", latency_runs=3, **QAT_ARGS)
    return _WithSeen(**{f.name: getattr(result, f.name) for f in dataclasses.fields(result)}, seen=seen)


@dataclasses.dataclass(frozen=True)
class _WithSeen(QATResult):
    seen: dict = dataclasses.field(default_factory=dict, repr=False)


def _float_output_shape(float_ckpt) -> tuple:
    from ultralytics import YOLO

    net = YOLO(str(float_ckpt)).model.float().eval()
    with torch.inference_mode():
        return tuple(net(torch.zeros(1, 3, 64, 64))[0].shape)


def _quantizers(module) -> int:
    from modelopt.torch.quantization.nn import TensorQuantizer

    return sum(isinstance(m, TensorQuantizer) for m in module.modules())


def test_fine_tune_is_quantized_finite_and_recorded(qat_run):
    from ultralytics import YOLO

    from yolo_gd.telemetry.sinks import read_steps

    assert qat_run.quantizers > 0 and 0 < qat_run.quantizers_enabled < qat_run.quantizers  # head outputs stay float
    assert _quantizers(YOLO(str(qat_run.qat_checkpoint)).model) == qat_run.quantizers  # restored from the .pt
    results = pd.read_csv(qat_run.save_dir / "results.csv")
    results.columns = [c.strip() for c in results.columns]
    assert np.isfinite(results[[c for c in results.columns if c.startswith("train/")]].to_numpy()).all()

    steps = read_steps(qat_run.save_dir)
    planned = yaml.safe_load((qat_run.save_dir / "yolo_gd_run.yaml").read_text())["injected"]["optimizer_steps"]
    from yolo_gd.inject.state import read_state

    saved = read_state(qat_run.save_dir / "weights")  # the newest epoch's state
    assert len(steps) == planned == saved["steps"] > 0
    assert steps["step"].tolist() == list(range(planned))
    assert set(steps["optimizer"]) == {"AdamW"}
    assert not steps["nonfinite"].any()
    assert steps["lr/weight"].iloc[0] == pytest.approx(1e-5)  # the injected LR, no warmup by default

    ptq = torch.load(qat_run.ptq_checkpoint, weights_only=False)
    assert ptq["modelopt"] and _quantizers(YOLO(str(qat_run.ptq_checkpoint)).model) == qat_run.quantizers


def test_onnx_export_has_qdq_and_runs_in_onnxruntime(qat_run, float_ckpt):
    ort = require("onnxruntime")
    from yolo_gd.qat.export import check_onnx, count_qdq

    folded, raw = qat_run.onnx_path, qat_run.onnx_path.with_name("last.onnx")
    assert folded.name == "last_int8.onnx" and raw.is_file()
    q, dq = count_qdq(folded)
    assert (q, dq) == (qat_run.quantize_nodes, qat_run.dequantize_nodes) and q > 0 and dq > 0
    raw_q, raw_dq = count_qdq(raw)
    assert raw_dq == dq and raw_q > q  # folding evaluated the weights' QuantizeLinear nodes, nothing else
    check = check_onnx(folded, expect_output_shape=_float_output_shape(float_ckpt))
    assert check.input_shape == (1, 3, 64, 64)
    assert folded.stat().st_size < 0.5 * raw.stat().st_size  # int8 weights instead of fp32

    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    a, b = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
            for p in (raw, folded))
    assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()  # folding is the QuantizeLinear formula, evaluated once



def test_onnx_output_matches_fake_quant_pytorch(qat_run, float_ckpt):
    """The exported ONNX (Q/DQ ``last.onnx`` and folded ``last_int8.onnx``) computes what the fake-quantized
    PyTorch model computes, on the same input.

    Not bit for bit: ModelOpt's fake quantization rounds ``x / scale`` in fp32 PyTorch arithmetic and
    onnxruntime's QuantizeLinear/DequantizeLinear kernels (and the convolutions between them, summed in another
    order) differ in the last float bits, so an activation that lands on a rounding boundary takes the
    neighbouring int8 level in one runtime and not the other; one level of one activation moves the decoded
    boxes (pixels, through DFL) by a few hundredths. Measured (seed-0 fixture, yolo11n at 64 px, 3 random inputs,
    ultralytics 8.4.190, torch 2.14, modelopt, onnxruntime on CPU): max |onnx - torch| 0.017-0.019 on an output
    whose range is ~481 (3.5e-5 to 4.0e-5 of it; mean 0.0019), class scores 5e-7 to 8e-7; both ONNX files alike.
    The float model's output is 0.22 (4.7e-4 of the range) away from the QAT model's: the tolerance, 1e-4 of the
    range (2.5x the measured gap), tells the quantized graph from the float one.
    """
    ort = require("onnxruntime")
    from ultralytics import YOLO

    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)  # preprocessed: RGB, [0, 1], NCHW

    def torch_out(ckpt):  # as evaluate.py's qat_torch row loads it: YOLO(.pt), quantizers restored, eval mode
        net = YOLO(str(ckpt)).model.float().cpu().eval()
        with torch.inference_mode():
            out = net(torch.from_numpy(x))
        return (out[0] if isinstance(out, (list, tuple)) else out).numpy()  # eval: (decoded, raw) -> decoded

    fake_quant = torch_out(qat_run.qat_checkpoint)
    assert _quantizers(YOLO(str(qat_run.qat_checkpoint)).model) > 0
    span = float(np.ptp(fake_quant))
    tolerance = 1e-4 * span
    for path in (qat_run.onnx_path.with_name("last.onnx"), qat_run.onnx_path):
        onnx_out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
        assert onnx_out.shape == fake_quant.shape == _float_output_shape(float_ckpt)  # (1, 4 + nc, anchors)
        diff = np.abs(onnx_out - fake_quant)
        assert diff.max() <= tolerance, (path.name, float(diff.max()), span)
        assert diff[:, 4:].max() <= 5e-6, (path.name, float(diff[:, 4:].max()))  # class probabilities
    float_gap = np.abs(torch_out(float_ckpt) - fake_quant).max()
    assert float_gap > tolerance, (float(float_gap), tolerance)  # quantization shows above the tolerance


def test_optimizer_params_are_the_quantized_models(qat_run):
    """The injected optimizer holds exactly the fake-quantized model's parameters (seen at ``on_train_start`` of
    the fine-tune), frozen ones in place as in Ultralytics' groups: ModelOpt's calibration runs before the optimizer
    is built."""
    seen = qat_run.seen
    assert seen, "the on_train_start callback did not run"
    assert seen["injected"]  # yolo_gd's optimizer, not Ultralytics' own
    assert seen["quantizers"] == qat_run.quantizers > 0  # the trainer's model holds ModelOpt TensorQuantizers
    ids = seen["optimizer_ids"]
    assert len(ids) == len(set(ids))  # no parameter in two groups
    assert set(ids) == seen["parameter_ids"] and seen["trainable_ids"] < set(ids)  # (the DFL conv is frozen)
    assert seen["quantized_weight_ids"] and seen["quantized_weight_ids"] <= set(ids)  # quantized convs' weights


def test_measurement_table_has_every_row_with_finite_numbers(qat_run):
    table = pd.read_csv(qat_run.table_path)
    assert table["row"].tolist() == ["float", "float_onnx", "ptq_onnxruntime", "ptq_modelopt", "qat_torch",
                                     "qat_onnx"]
    numbers = table[["mAP50-95", "mAP50", "file_mb", "latency_ms_per_image", "qdq_nodes"]].to_numpy(dtype=float)
    assert np.isfinite(numbers).all()
    assert (table["file_mb"] > 0).all() and (table["latency_ms_per_image"] > 0).all()
    qdq = dict(zip(table["row"], table["qdq_nodes"]))
    assert qdq["float"] == qdq["float_onnx"] == qdq["qat_torch"] == 0
    assert min(qdq["ptq_onnxruntime"], qdq["ptq_modelopt"], qdq["qat_onnx"]) > 0
    assert qdq["qat_onnx"] == qat_run.quantize_nodes + qat_run.dequantize_nodes
    md = qat_run.table_md.read_text()
    assert all(f"| {row} |" in md for row in table["row"])


def test_resume_restores_quantizers_injected_optimizer_and_schedule(float_ckpt, tiny_data, tmp_path, monkeypatch):
    """Interrupt a QAT fine-tune after epoch 1 of 2; ``yolo_gd.train(resume=True)`` continues it exactly."""
    require("modelopt")
    from ultralytics import YOLO

    from yolo_gd.inject.resume import ResumeState
    from yolo_gd.inject.state import read_state
    from yolo_gd.telemetry.sinks import read_steps
    from yolo_gd.training import train

    inject = dict(optimizer="adamw", schedule="cosine", lr=1e-5, warmup=0)

    class Interrupt(Exception):
        pass

    def stop_at_epoch_1(trainer):
        if trainer.epoch == 1:
            raise Interrupt

    part = YOLO(str(float_ckpt))
    yolo_gd.attach(part, **inject)
    part.add_callback("on_train_epoch_start", stop_at_epoch_1)
    with pytest.raises(Interrupt):
        part.train(**tiny_train_args(tiny_data, tmp_path, "part", epochs=2, quantize=8))
    last = part.trainer.last
    fresh_quantizers = _quantizers(part.trainer.model)
    ckpt = torch.load(last, weights_only=False)
    saved = read_state(last.parent)
    assert ckpt["modelopt"] and saved["steps"] > 0

    seen = {}
    original = ResumeState.on_pretrain_routine_end

    def spy(self, trainer):  # after yolo_gd restored its state: what the first resumed step will use
        original(self, trainer)
        state = trainer.model.state_dict()
        seen.update(quantizers=_quantizers(trainer.model), optimizer=copy.deepcopy(trainer.optimizer.state_dict()),
                    ranges_equal=all(torch.equal(state[k].float(), v.float())
                                     for k, v in ckpt["modelopt"]["ranges"].items()))

    monkeypatch.setattr(ResumeState, "on_pretrain_routine_end", spy)
    result = train(str(last), resume=True, **inject)

    assert seen["quantizers"] == fresh_quantizers > 0  # Ultralytics' restore_qat, not a second calibration
    assert seen["ranges_equal"]
    for k, v in saved["optimizer"]["state"].items():  # the fp32 state, not Ultralytics' fp16 copy
        for name, t in v.items():
            assert torch.equal(seen["optimizer"]["state"][k][name].cpu(), t), (k, name)
    steps = read_steps(result.save_dir)  # rows past the checkpoint's step were dropped on resume, then rewritten
    total = yaml.safe_load((result.save_dir / "yolo_gd_run.yaml").read_text())["injected"]["optimizer_steps"]
    assert steps["step"].tolist() == list(range(total)) and total > saved["steps"]
    expected = [1e-5 * 0.5 * (1 + math.cos(math.pi * s / total)) for s in steps["step"]]
    assert steps["lr/weight"].tolist() == pytest.approx(expected, rel=1e-9)  # one cosine across the resume
    assert not steps["nonfinite"].any()


# --- checks that need no training ---------------------------------------------------------------------------------


def test_missing_modelopt_names_the_extra(float_ckpt, tiny_data, monkeypatch):
    from yolo_gd.qat import qat

    for name in [m for m in sys.modules if m == "modelopt" or m.startswith("modelopt.")] + ["modelopt"]:
        monkeypatch.setitem(sys.modules, name, None)  # `import modelopt...` now raises ImportError
    with pytest.raises(UserError, match=r"nvidia-modelopt.*pip install 'yolo_gd\[qat\]'") as e:
        qat(float_ckpt, tiny_data)  # a valid float checkpoint: the package check is what stops it
    assert "\n" not in str(e.value)


def test_quantized_checkpoint_given_as_float_is_refused(qat_run, tiny_data):
    from yolo_gd.qat import qat

    for ckpt in (qat_run.qat_checkpoint, qat_run.ptq_checkpoint):
        with pytest.raises(UserError, match="already quantization-aware") as e:
            qat(ckpt, tiny_data)
        assert "\n" not in str(e.value)


def test_bad_model_and_data_are_refused(float_ckpt, tiny_data, tmp_path):
    from ultralytics import YOLO

    from yolo_gd.qat import qat, qat_command

    with pytest.raises(UserError, match=r"trained float checkpoint \(\.pt\)"):
        qat("yolo11n.yaml", tiny_data)
    with pytest.raises(UserError, match="not on disk"):
        qat(tmp_path / "missing.pt", tiny_data)
    cls = tmp_path / "cls.pt"
    YOLO("yolo11n-cls.yaml").save(cls)
    with pytest.raises(UserError, match="classify model"):
        qat(cls, tiny_data)
    cfg = yaml.safe_load(tiny_data.read_text())
    cfg.pop("val")
    cfg["path"] = str(tiny_data.parent)
    no_val = tmp_path / "no_val.yaml"
    no_val.write_text(yaml.safe_dump(cfg))
    with pytest.raises(UserError, match="has no 'val' split"):
        qat(float_ckpt, no_val)
    with pytest.raises(UserError, match="pass optimizer="):
        qat(float_ckpt, tiny_data, optimizer="auto")
    with pytest.raises(UserError, match="usage: yolo-gd qat"):
        qat_command({"data": str(tiny_data)})


@pytest.mark.slow
def test_qat_stage_in_an_ablation_spec(float_ckpt, tiny_data, tmp_path):
    """`quantize: 8` in a sweep's base compares optimizers for QAT fine-tuning from one float checkpoint."""
    import yaml

    from yolo_gd.ablate.commands import ablate_command
    from yolo_gd.ablate.manifest import read_manifest

    spec = {"name": "qat_sweep", "base": {"model": str(float_ckpt), "data": str(tiny_data), "imgsz": 64, "batch": 8,
                                         "nbs": 8, "quantize": 8, "warmup_epochs": 0, "mosaic": 0.0},
            "axes": {"optimizer": [{"name": "sgd", "lr": 1e-4}, {"name": "adamw", "lr": 1e-5}]},
            "seeds": [0], "budget": {"epochs": 1}}
    path = tmp_path / "qat_sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    sweep = ablate_command(path, progress=None, out=tmp_path / "runs")
    trials = read_manifest(sweep)["trials"]
    assert {t["state"] for t in trials.values()} == {"done"}
    for t in trials.values():
        ckpt = torch.load(Path(t["dir"]) / "weights" / "last.pt", weights_only=False)
        assert ckpt.get("modelopt")  # the trial trained the fake-quantized model
    assert (sweep / "report" / "report.html").exists()

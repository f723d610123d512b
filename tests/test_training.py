"""yolo_gd.train(): data checked first, offline-safe, keys split between yolo_gd and Ultralytics, and
model.train given only the Ultralytics keys the user gave."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest
from conftest import tiny_train_args

from yolo_gd.cli import main
from yolo_gd.errors import UserError
from yolo_gd.training import load_cfg_file, split_keys, train


def test_split_keys():
    ours, theirs = split_keys({"lr": 0.1, "warmup": "1ep", "lr0": 0.02, "epochs": 3, "telemetry": "off"})
    assert ours == {"lr": 0.1, "warmup": "1ep", "telemetry": "off"}
    assert theirs == {"lr0": 0.02, "epochs": 3}


def test_split_keys_observe_only_gives_shared_keys_to_ultralytics():
    kw = {"momentum": 0.9, "weight_decay": 1e-4, "warmup_bias_lr": 0.05, "warmup_momentum": 0.7, "telemetry": "off"}
    assert split_keys(kw, observe_only=True) == ({"telemetry": "off"}, {k: v for k, v in kw.items()
                                                                       if k != "telemetry"})
    assert split_keys(kw)[1] == {}


def test_missing_pretrained_weights_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"model=yolo11n\.yaml"):
        train(model="yolo11n.pt", data="bccd")


@pytest.fixture
def calls(monkeypatch, tmp_path):
    """Record what model.train and attach get, without training."""
    from ultralytics.engine.model import Model

    import yolo_gd.inject.attach as attach_module

    seen = SimpleNamespace(train=[], attach=[])
    real_attach = attach_module.attach

    def fake_train(self, **kwargs):
        seen.train.append(kwargs)
        self.trainer = SimpleNamespace(save_dir=tmp_path / "run")

    def spy_attach(model, optimizer=None, **options):
        seen.attach.append(dict(options, optimizer=optimizer))
        return real_attach(model, optimizer, **options)

    monkeypatch.setattr(Model, "train", fake_train)
    monkeypatch.setattr(attach_module, "attach", spy_attach)
    return seen


def test_model_train_gets_only_the_keys_given(calls, tiny_data, tmp_path, capsys):
    assert main(["train", f"data={tiny_data}", "optimizer=adamw", "lr=0.001", "momentum=0.8", "epochs=2",
                 "imgsz=64", "lr0=0.01", "--plots=false", f"project={tmp_path}"]) == 0
    assert calls.train == [{"epochs": 2, "imgsz": 64, "lr0": 0.01, "plots": False, "project": str(tmp_path),
                            "data": str(tiny_data)}]
    assert calls.attach == [{"optimizer": "adamw", "lr": 0.001, "momentum": 0.8}]


def test_defaults_are_not_filled_in(calls, tiny_data):
    train(data=str(tiny_data))
    assert set(calls.train[0]) == {"data", "project"}  # project: absolute, see default_project()
    assert calls.attach == [{"optimizer": None}]


@pytest.mark.parametrize("optimizer", [[], ["optimizer=auto"]])
def test_observe_only_passes_shared_keys_to_ultralytics_unchanged(calls, tiny_data, tmp_path, optimizer):
    """Review item 9: momentum, weight_decay, warmup_bias_lr, warmup_momentum are Ultralytics' keys then."""
    shared = {"momentum": 0.9, "weight_decay": 0.001, "warmup_bias_lr": 0.05, "warmup_momentum": 0.7}
    assert main(["train", f"data={tiny_data}", *optimizer, *(f"{k}={v}" for k, v in shared.items()),
                 f"project={tmp_path}"]) == 0
    expected = {**shared, "project": str(tmp_path), "data": str(tiny_data)}
    if optimizer:
        expected["optimizer"] = "auto"
    assert calls.train == [expected] and calls.attach == [{"optimizer": None}]


def test_cfg_file_is_split_and_command_line_wins(calls, tiny_data, tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"model:\ndata: {tiny_data}\nmode: train\noptimizer: sgd\nlr: 2e-2\nwarmup: 1ep\nepochs: 3\n"
                   f"imgsz: 64\nclip: 5\n")
    assert main(["train", f"cfg={cfg}", "epochs=2", f"project={tmp_path}"]) == 0
    assert calls.train == [{"epochs": 2, "imgsz": 64, "project": str(tmp_path), "data": str(tiny_data)}]
    assert calls.attach == [{"optimizer": "sgd", "lr": 0.02, "warmup": "1ep", "clip": 5}]


def test_cfg_file_errors(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "bad.yaml").write_text("epochs: 3\nimgsz: [64\n")
    (tmp_path / "mode.yaml").write_text("mode: val\n")
    for name, message in [("none.yaml", "no such file"), ("list.yaml", "holds a list, not a mapping"),
                          ("bad.yaml", "not valid YAML at"), ("mode.yaml", "mode: val is not a training")]:
        with pytest.raises(UserError, match=message):
            load_cfg_file(tmp_path / name)


@pytest.mark.parametrize("kwargs, message", [
    (dict(optimizer="sgd", warmup="2ep", epochs=1), "warmup=2ep is longer than the run (1 epochs)"),
    (dict(optimizer="sgd", warmup="500it", epochs=1, batch=8, nbs=16),
     "warmup=500it is 500 optimizer steps but the run has about 3 (1 epochs of 6 batches, accumulate 2)"),
    (dict(optimizer="sgd", groups={"model.99.*": 0.1}), "rule 'model.99.*' matches no trainable parameter"),
    (dict(optimizer="sgd", groups={"model.0.*": 0.1}, freeze=1), "rule 'model.0.*' matches no trainable"),
    (dict(optimizer="sgd", groups={"model.*": 0.1, "model.0.*": 2}), "rule 'model.0.*' gets no parameter"),
    (dict(optimizer="sgd", time=0.1), "time=0.1 (a wall-clock budget)"),
])
def test_run_dependent_problems_are_found_before_the_run_folder(calls, tiny_data, tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        train(data=str(tiny_data), project=str(tmp_path / "p"), **kwargs)
    assert calls.train == [] and not (tmp_path / "p").exists()


def test_fitting_warmup_and_groups_pass(calls, tiny_data):
    train(data=str(tiny_data), optimizer="sgd", warmup="3it", epochs=1, batch=8, nbs=16,
          groups={"model.0.*": 0.1}, freeze=0)
    assert len(calls.train) == 1


def test_bad_dataset_is_rejected_before_the_model_is_built(tmp_path):
    with pytest.raises(UserError, match="unknown dataset"):
        train(data="cocoo")


@pytest.mark.slow
def test_training_opens_no_network_connection(tiny_data, tmp_path, monkeypatch):
    """No socket connects during a whole training (Ultralytics would otherwise check for updates and fonts)."""
    attempts = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError("network disabled by test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    args = tiny_train_args(tiny_data, tmp_path, "offline", epochs=1)
    result = train(model="yolo11n.yaml", optimizer="adamw", **{k: v for k, v in args.items() if k != "data"},
                   data=str(tiny_data))
    assert (result.save_dir / "weights" / "best.pt").exists()
    assert attempts == []


@pytest.mark.slow
def test_outputs_are_never_overwritten(tiny_data, tmp_path):
    """Ultralytics increments the run name; a second run with the same name lands beside the first."""
    args = {k: v for k, v in tiny_train_args(tiny_data, tmp_path, "same", epochs=1).items() if k != "data"}
    first = train(data=str(tiny_data), optimizer="sgd", **args)
    second = train(data=str(tiny_data), optimizer="sgd", **args)
    assert first.save_dir.name == "same" and second.save_dir.name == "same-2"
    assert (first.save_dir / "weights" / "best.pt").exists()


def test_yolo_gd_train_stays_the_function_after_submodule_imports():
    """Importing the package's modules must never turn `yolo_gd.train` into a module."""
    import yolo_gd
    import yolo_gd.cli  # noqa: F401  (imports the training module)

    assert callable(yolo_gd.train) and yolo_gd.train is train
    assert callable(yolo_gd.attach)

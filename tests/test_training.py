"""yolo_gd.train(): data checked first, offline-safe, keys split between yolo_gd and Ultralytics."""

from __future__ import annotations

import socket

import pytest
from conftest import tiny_train_args

from yolo_gd.errors import UserError
from yolo_gd.training import split_keys, train


def test_split_keys():
    ours, theirs = split_keys({"lr": 0.1, "warmup": "1ep", "lr0": 0.02, "epochs": 3, "telemetry": "off"})
    assert ours == {"lr": 0.1, "warmup": "1ep", "telemetry": "off"}
    assert theirs == {"lr0": 0.02, "epochs": 3}


def test_missing_pretrained_weights_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"model=yolo11n\.yaml"):
        train(model="yolo11n.pt", data="bccd")


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

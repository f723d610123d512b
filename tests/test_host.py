"""inject/host.Host: what the view reads from a trainer (here the attributes Ultralytics' _setup_train sets)."""

from __future__ import annotations

from types import SimpleNamespace

from yolo_gd.inject.host import Host


def test_unfreeze_never_selects_the_always_frozen_dfl_layer():
    """freeze=[22, 23] on yolo11n: layer 23 (Detect) holds the DFL conv, which Ultralytics always keeps frozen."""
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolo11n.yaml", nc=3, verbose=False)
    names = ["model.22.", "model.23.", ".dfl"]  # what _setup_train builds for freeze=[22, 23] (trainer.py 389-393)
    for k, v in model.named_parameters():  # its freeze loop
        v.requires_grad = not any(x in k for x in names)
    frozen = Host(SimpleNamespace(model=model, freeze_layer_names=names)).frozen_by_freeze()
    assert "model.23.dfl.conv.weight" not in frozen
    assert frozen == [k for k, _ in model.named_parameters() if k.startswith(("model.22.", "model.23.")) and
                      ".dfl" not in k]

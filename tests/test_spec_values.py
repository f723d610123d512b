"""Sweep-spec values checked by the one schema (yolo_gd options) and by the Ultralytics checks (ranges, model):
each error names the file:line of the key."""

from __future__ import annotations

import pytest
from test_spec import line_of, write

from yolo_gd.ablate.spec import load_spec
from yolo_gd.errors import UserError

BAD = [
    ("""
     axes:
       optimizer:
         - name: sgd
           momentum: 1.5   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "axes.optimizer[0].momentum: momentum must be a number in [0, 1), got 1.5"),
    ("""
     axes:
       optimizer:
         - name: adamw
           lr: fast   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "axes.optimizer[0].lr: lr must be > 0 (a number), got fast"),
    ("""
     axes:
       optimizer:
         - name: adamw
           optimizer_kwargs: {betas: [0.9, 1.2]}   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "optimizer_kwargs: betas must be two numbers in [0, 1) (three for Adan), got [0.9, 1.2]"),
    ("""
     axes:
       optimizer:
         - name: sgd
           warmup: 3 epochs   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "axes.optimizer[0].warmup: warmup: duration '3 epochs' has unknown unit 'epochs'"),
    ("""
     axes:
       optimizer:
         - {name: sgd, clip: 0}   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "clip must be > 0 (a max-norm), or none for no clipping, got 0"),
    ("""
     axes:
       optimizer: [sgd]
       lr: [0.01, -0.1]   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "axes.lr[1]: an LR must be a positive number"),
    ("""
     base:
       model: yolo11n.yml
       imgsz: -64   # <-
     axes: {optimizer: [sgd]}
     seeds: [0]
     budget: {epochs: 1}
     """, "base.imgsz: imgsz must be a whole number > 0"),
    ("""
     base:
       batch: 0   # <-
     axes: {optimizer: [sgd]}
     seeds: [0]
     budget: {epochs: 1}
     """, "base.batch: batch must be a whole number >= 1"),
    ("""
     base:
       model: yolo11q.yaml   # <-
     axes: {optimizer: [sgd]}
     seeds: [0]
     budget: {epochs: 1}
     """, "base.model: model=yolo11q.yaml: no such model config"),
    ("""
     base:
       model: nowhere/best.pt   # <-
     axes: {optimizer: [sgd]}
     seeds: [0]
     budget: {epochs: 1}
     """, "base.model: weights 'nowhere/best.pt' are not on disk"),
]


BAD.append(("""
     axes:
       optimizer:
         - name: auto
           momentum: 1.5   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "axes.optimizer[0].momentum: 'momentum=1.5' is an invalid value"))  # Ultralytics' own check


def test_observe_only_entry_gives_shared_keys_to_ultralytics(tmp_path):
    """An 'auto' entry's momentum and weight_decay are Ultralytics' keys (as in yolo-gd train), not refused."""
    path, _ = write(tmp_path, """
        axes:
          optimizer:
            - {name: auto, momentum: 0.9, weight_decay: 0.001, warmup_bias_lr: 0.0}
        seeds: [0]
        budget: {epochs: 1}
        """)
    (trial,) = load_spec(path).trials
    assert trial.kwargs["momentum"] == 0.9 and trial.kwargs["optimizer"] == "auto"


@pytest.mark.parametrize("text, message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_values_name_file_line_and_key(tmp_path, text, message):
    path, text = write(tmp_path, text)
    with pytest.raises(UserError) as info:
        load_spec(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:{line_of(text, '# <-')}: "), msg
    assert message in msg and "\n" not in msg, msg

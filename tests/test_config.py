"""InjectConfig: checked at construction, picklable, observe-only rules."""

from __future__ import annotations

import pickle

import pytest

from yolo_gd.errors import UserError
from yolo_gd.inject.config import UNSET, InjectConfig


def test_observe_only_rejects_step_options():
    assert InjectConfig().observe_only
    for kwargs, named in [(dict(clip=5.0), "clip"), (dict(clip=None), "clip"), (dict(schedule="cosine"), "schedule"),
                          (dict(lr=0.1), "lr")]:
        with pytest.raises(UserError, match=f"{named} given without an optimizer.*pass optimizer="):
            InjectConfig(**kwargs)


def test_clip_sentinel():
    assert InjectConfig(optimizer="sgd").clip_norm == 10.0
    assert InjectConfig(optimizer="sgd", clip=None).clip_norm is None
    assert InjectConfig(optimizer="sgd", clip=2).clip_norm == 2.0
    with pytest.raises(UserError, match="positive max-norm"):
        InjectConfig(optimizer="sgd", clip=0)


def test_unset_survives_pickle():
    cfg = pickle.loads(pickle.dumps(InjectConfig(optimizer="sgd")))
    assert cfg.clip is UNSET and cfg == InjectConfig(optimizer="sgd")


@pytest.mark.parametrize("kwargs, message", [(dict(lr=0), "lr must be > 0"), (dict(weight_decay=-1), ">= 0"),
                                             (dict(telemetry="all"), "telemetry must be one of"),
                                             (dict(warmup_kind="cos"), "warmup_kind")])
def test_bad_values(kwargs, message):
    with pytest.raises(UserError, match=message):
        InjectConfig(optimizer="sgd", **kwargs)


def test_fingerprint_names_optimizer_and_schedule():
    assert InjectConfig(optimizer="SGD", schedule="Cosine").fingerprint()["optimizer"] == "sgd"
    assert InjectConfig(optimizer="sgd").fingerprint() != InjectConfig(optimizer="adamw").fingerprint()

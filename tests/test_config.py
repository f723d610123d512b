"""InjectConfig, the schema of every yolo_gd option: checked at construction, one-line errors, picklable."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
from conftest import require

from yolo_gd.errors import UserError
from yolo_gd.inject.config import TELEMETRY_LEVELS, UNSET, InjectConfig
from yolo_gd.schema import field_table, options_help


def test_observe_only_rejects_step_options():
    assert InjectConfig().observe_only and InjectConfig(optimizer="AUTO").observe_only
    for kwargs, named in [(dict(clip=5.0), "clip"), (dict(clip=None), "clip"), (dict(schedule="cosine"), "schedule"),
                          (dict(lr=0.1), "lr"), (dict(warmup_bias_lr=0.0), "warmup_bias_lr"),
                          (dict(optimizer_kwargs={"eps": 1e-8}), "optimizer_kwargs")]:
        with pytest.raises(UserError, match=f"{named} given without an optimizer.*pass optimizer=") as info:
            InjectConfig(**kwargs)
        assert info.value.key == named


def test_observe_only_names_ultralytics_own_keys():
    with pytest.raises(UserError, match=r"give its keys to model.train instead \(lr0=..., momentum=...\)"):
        InjectConfig(lr=0.1, momentum=0.9)


def test_clip_sentinel():
    assert InjectConfig(optimizer="sgd").clip_norm == 10.0
    assert InjectConfig(optimizer="sgd", clip=None).clip_norm is None
    assert InjectConfig(optimizer="sgd", clip="none").clip is None
    assert InjectConfig(optimizer="sgd", clip=2).clip_norm == 2.0
    with pytest.raises(UserError, match=r"clip must be > 0 \(a max-norm\), or none for no clipping, got 0"):
        InjectConfig(optimizer="sgd", clip=0)


def test_unset_survives_pickle_and_pickling_does_not_validate_again():
    cfg = pickle.loads(pickle.dumps(InjectConfig(optimizer="sgd")))
    assert cfg.clip is UNSET and cfg == InjectConfig(optimizer="sgd")
    assert dataclasses.is_dataclass(cfg) and set(InjectConfig.__dataclass_fields__) >= {"lr", "telemetry", "clip"}


def test_frozen_and_replace_validates():
    cfg = InjectConfig(optimizer="sgd", lr=0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 0.2  # type: ignore[misc]
    assert dataclasses.replace(cfg, lr=0.2).lr == 0.2
    with pytest.raises(UserError, match="got -1"):
        dataclasses.replace(cfg, lr=-1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=0), "lr must be > 0 (a number), got 0; e.g. lr=0.001 (base learning rate"),
    (dict(lr="abc"), "lr must be > 0 (a number), got abc"),
    (dict(lr=True), "lr must be > 0 (a number), got True"),
    (dict(lr=float("nan")), "lr must be > 0 (a number), got nan"),
    (dict(weight_decay=-1), "weight_decay must be >= 0 (a number), got -1"),
    (dict(momentum=1.0), "momentum must be a number in [0, 1), got 1.0"),
    (dict(warmup_momentum=-0.1), "warmup_momentum must be a number in [0, 1), got -0.1"),
    (dict(optimizer_kwargs={"betas": (0.9, 1.0)}),
     "optimizer_kwargs: betas must be two numbers in [0, 1) (three for Adan), got (0.9, 1.0); e.g. optimizer_kwargs={betas: [0.9, "),
    (dict(optimizer_kwargs={"eps": 0}), "eps must be > 0 (a number), got 0"),
    (dict(optimizer_kwargs={"nesterovv": True}), "optimizer 'sgd' does not take 'nesterovv'"),
    (dict(telemetry="all"), "telemetry must be off, basic or full, got all"),
    (dict(telemetry_every=-1), "telemetry_every must be a whole number >= 0, got -1"),
    (dict(warmup_kind="cos"), "warmup_kind must be linear or exp, got cos"),
    (dict(warmup="3xx"), "warmup: duration '3xx' has unknown unit 'xx'"),
    (dict(warmup="1.5dur"), "is more than the whole training"),
    (dict(warmup=-3), "is negative"),
    (dict(schedule="cosinee"), "schedule: unknown schedule 'cosinee'. Did you mean 'cosine'?"),
    (dict(schedule="step"), "schedule 'step' needs option 'every'"),
    (dict(groups={"model.0.*": "fast"}), "groups: group rule 'model.0.*': expected a mapping"),
    (dict(lrr=0.1), "unknown option 'lrr'. Did you mean 'lr'?"),
])
def test_bad_values_are_one_line_naming_key_rule_and_fix(kwargs, message):
    with pytest.raises(UserError) as info:
        InjectConfig(optimizer="sgd", **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert info.value.key == next(iter(kwargs))


def test_unknown_optimizer_suggests_before_anything_runs():
    with pytest.raises(UserError, match="optimizer: unknown optimizer 'adamww'. Did you mean 'adamw'?"):
        InjectConfig(optimizer="adamww")


def test_values_are_normalised():
    cfg = InjectConfig(optimizer=" SGD ", lr="0.01", telemetry="FULL", warmup_kind="EXP", telemetry_every="3")
    assert (cfg.optimizer, cfg.lr, cfg.telemetry, cfg.warmup_kind, cfg.telemetry_every) == ("SGD", 0.01, "full",
                                                                                           "exp", 3)
    assert InjectConfig(optimizer="auto").optimizer is None


def test_help_lists_every_option_with_default_and_meaning():
    rows = {k: (d, m) for k, d, m in field_table(InjectConfig)}
    assert set(rows) == set(InjectConfig.__dataclass_fields__)
    assert rows["clip"][0] == "10.0" and rows["telemetry"][0] == "'basic'" and rows["lr"][1]
    assert all(m for _, m in rows.values())
    text = options_help(InjectConfig)
    assert len(text.splitlines()) == len(rows) and TELEMETRY_LEVELS[0] in text


def test_fingerprint_names_optimizer_and_schedule():
    assert InjectConfig(optimizer="SGD", schedule="Cosine").fingerprint()["optimizer"] == "sgd"
    assert InjectConfig(optimizer="sgd").fingerprint() != InjectConfig(optimizer="adamw").fingerprint()


def test_schedule_free_with_unfreeze_is_refused_in_one_line():
    require("schedulefree")
    with pytest.raises(UserError, match="unfreeze= with the schedule-free optimizer 'sfadamw' is not supported") as e:
        InjectConfig(optimizer="sfadamw", unfreeze="1ep")
    assert e.value.key == "unfreeze" and "\n" not in str(e.value)
    InjectConfig(optimizer="adamw", unfreeze="1ep")  # other optimizers keep it

"""Value resolution: attach keys win, then changed Ultralytics keys, then registry defaults."""

from __future__ import annotations

import pytest
from ultralytics.cfg import DEFAULT_CFG_DICT

from yolo_gd.errors import UserError
from yolo_gd.inject.config import InjectConfig
from yolo_gd.inject.resolve import TrainerFacts, resolve


def facts(**changed) -> TrainerFacts:
    args = {**DEFAULT_CFG_DICT, **changed}
    # 6 batches/epoch, 3 epochs, batch 8 with nbs 64 -> accumulate 8 (capped at 18), warmup 3 epochs capped to 2
    return TrainerFacts(args=args, defaults=DEFAULT_CFG_DICT, batch_size=8, batches_per_epoch=6, epochs=3,
                        warmup_batches=12, accumulate=8)


def test_sgd_defaults_are_ultralytics():
    r = resolve(InjectConfig(optimizer="SGD"), facts())
    assert r.info.name == "sgd"
    assert r.hparams["lr"] == 0.01 and r.hparams["momentum"] == 0.937 and r.hparams["nesterov"] is True
    assert r.weight_decay == 0.0005 * 8 * 8 / 64  # batch * accumulate / nbs
    assert r.plan.warmup.bias_lr == 0.1 and r.plan.warmup.momentum == 0.8
    assert (r.plan.warmup.length, r.plan.warmup.clock) == (12, "batch")
    assert r.clip == 10.0
    assert r.sources["lr"] == "sgd default"


def test_adaptive_optimizer_gets_its_own_lr_and_no_bias_warmup():
    r = resolve(InjectConfig(optimizer="adamw"), facts())
    assert r.hparams["lr"] == 0.001 and r.hparams["betas"] == (0.9, 0.999)
    assert r.plan.warmup.bias_lr == 0.0 and r.plan.warmup.momentum is None  # Ultralytics never warms beta1


def test_changed_ultralytics_keys_feed_the_injected_optimizer():
    r = resolve(InjectConfig(optimizer="adamw"), facts(lr0=0.003, momentum=0.95, warmup_bias_lr=0.05))
    assert r.hparams["lr"] == 0.003 and r.hparams["betas"] == (0.95, 0.999)
    assert r.plan.warmup.bias_lr == 0.05
    assert r.sources["lr"] == "ultralytics lr0"


def test_attach_keys_win():
    r = resolve(InjectConfig(optimizer="sgd", lr=0.02, momentum=0.9, weight_decay=0.001, clip=None), facts(lr0=0.1))
    assert r.hparams["lr"] == 0.02 and r.hparams["momentum"] == 0.9 and r.clip is None
    assert r.weight_decay == 0.001 * 8 * 8 / 64 and r.sources["lr"] == "attach"


def test_named_schedule_warms_up_in_optimizer_steps():
    r = resolve(InjectConfig(optimizer="sgd", schedule="cosine", warmup="1ep"), facts())
    assert r.plan.warmup.clock == "step"
    assert r.plan.warmup.length == r.cadence.steps_before_epoch(1)


def test_unscaled_weight_decay():
    assert resolve(InjectConfig(optimizer="sgd", scale_weight_decay=False), facts()).weight_decay == 0.0005


@pytest.mark.parametrize(
    "cfg, changed, message",
    [
        (InjectConfig(optimizer="sgd"), dict(time=0.5), "time= "),
        (InjectConfig(optimizer="sgd", schedule="cosine", warmup="5ep"), {}, "warmup '5ep' is"),
        (InjectConfig(optimizer="adagrad", momentum=0.9), {}, "has no momentum"),
    ],
)
def test_errors(cfg, changed, message):
    with pytest.raises(UserError, match=message):
        resolve(cfg, facts(**changed))


def test_the_fine_tuning_keys_are_in_the_fingerprint():
    cfg = InjectConfig(optimizer="sgd", lr_decay=0.8, unfreeze=[["model.[0-4].*", "2ep"]], unfreeze_ramp="3it",
                       ema=False, ema_decay=0.99, ema_tau=100)
    fp = resolve(cfg, facts()).fingerprint(cfg)
    assert {k: fp[k] for k in ("lr_decay", "unfreeze", "unfreeze_ramp", "ema", "ema_decay", "ema_tau")} == {
        "lr_decay": 0.8, "unfreeze": [["model.[0-4].*", "2ep"]], "unfreeze_ramp": "3it", "ema": False,
        "ema_decay": 0.99, "ema_tau": 100}

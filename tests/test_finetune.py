"""Fine-tuning controls: freeze then unfreeze on a schedule, the pretrained checkpoint."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_train_args

import yolo_gd
from yolo_gd.errors import UserError
from yolo_gd.optim.progress import Cadence
from yolo_gd.optim.unfreeze import JoinPlan, UnfreezeStage, assign_stages, join_plan, parse_unfreeze


def test_join_plan_ramps_linearly_from_the_join_step():
    plan = JoinPlan(steps=(3, 5), ramp=4)
    assert [plan.multiplier(0, s) for s in range(9)] == [0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [plan.multiplier(1, s) for s in (4, 5, 6)] == [0.0, 0.25, 0.5]
    assert JoinPlan((2,), 0).multiplier(0, 2) == 1.0
    # 6 batches per epoch, accumulate 2: 3 optimizer steps per epoch
    assert join_plan(parse_unfreeze("1ep"), "1ep", Cadence(6, 3, 2, 0)) == JoinPlan((3,), 3)


def test_unfreeze_stages_first_match_wins_and_typos_fail():
    names = ["model.0.conv.weight", "model.1.conv.weight", "model.1.bn.bias"]
    stages = parse_unfreeze([["model.1.*", "2ep"], ["*", 10]])
    assert stages[1] == UnfreezeStage("*", parse_unfreeze(10)[0].when)
    assert assign_stages(names, stages) == {"model.1.conv.weight": 0, "model.1.bn.bias": 0, "model.0.conv.weight": 1}
    with pytest.raises(UserError, match="selects no parameter frozen by freeze="):
        assign_stages(names, parse_unfreeze([["model.9.*", "1ep"]]))
    with pytest.raises(UserError, match="observe-only"):
        yolo_gd.attach(_yolo(), None, unfreeze="1ep")


def _yolo():
    from ultralytics import YOLO

    return YOLO("yolo11n.yaml")


class Watch:
    """Snapshots of frozen parameters and optimizer state at each epoch end, and the unfreeze groups' LRs."""

    def __init__(self):
        self.start, self.ends, self.lrs = {}, [], []

    def begin(self, trainer):
        m = trainer.model
        self.start = {n: p.detach().clone() for n, p in m.named_parameters() if n.startswith(("model.0.", "model.1."))}

    def batch(self, trainer):
        self.lrs.append({g["name"]: g["lr"] for g in trainer.optimizer.param_groups})

    def end(self, trainer):
        m, opt = trainer.model, trainer.optimizer
        params = dict(m.named_parameters())
        self.ends.append({
            "frozen": {n: params[n].detach().clone() for n in self.start},
            "state": opt.state[params["model.5.conv.weight"]],
            "buffer": opt.state[params["model.5.conv.weight"]].get("momentum_buffer"),
            "late_state": len(opt.state[params["model.0.conv.weight"]]),
        })


@pytest.mark.slow
def test_freeze_then_unfreeze_on_a_tiny_run(tiny_data, tmp_path):
    model = _yolo()
    yolo_gd.attach(model, "sgd", unfreeze="1ep", unfreeze_ramp="2it")
    w = Watch()
    model.add_callback("on_train_start", w.begin)
    model.add_callback("on_train_batch_end", w.batch)
    model.add_callback("on_train_epoch_end", w.end)
    model.train(**tiny_train_args(tiny_data, tmp_path, "ft", epochs=2, freeze=2, val=False))
    first, second = w.ends
    for n, p0 in w.start.items():
        assert torch.equal(first["frozen"][n], p0), n  # frozen for the whole first epoch
    moved = [n for n, p0 in w.start.items() if not torch.equal(second["frozen"][n], p0)]
    assert "model.0.conv.weight" in moved and "model.1.conv.weight" in moved
    assert first["late_state"] == 0 and second["late_state"] > 0
    assert second["state"] is first["state"] and second["buffer"] is first["buffer"]  # the same state objects
    # 6 batches/epoch, accumulate 2: steps at batches 1, 3, 5 | 7, 9, 11; joins at step 3 with a 2-step ramp
    per_step = [w.lrs[b] for b in (1, 3, 5, 7, 9, 11)]
    ramp = [0.0, 0.0, 0.0, 0.5, 1.0, 1.0]
    for row, mult in zip(per_step, ramp):
        assert row["weight"] > 0 and row["weight:unfreeze0"] == row["weight"] * mult
        assert row["bias:unfreeze0"] == row["bias"] * mult and row["bn:unfreeze0"] == row["bn"] * mult
    record = (tmp_path / "ft" / "yolo_gd_run.yaml").read_text()
    assert "unfreeze_events" in record and "weight:unfreeze0" in record


def test_pretrained_checkpoint_loads(pretrained):
    from ultralytics import YOLO

    model = YOLO(str(pretrained))
    assert model.names == {0: "Normal", 1: "Fall"}
    assert sum(p.numel() for p in model.model.parameters()) == 11136374


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["sgd", None])
def test_ema_off_saves_the_raw_model(tiny_data, tmp_path, optimizer):
    from ultralytics import YOLO

    model = _yolo()
    yolo_gd.attach(model, optimizer, ema=False)
    raw = {}
    model.add_callback("on_train_end", lambda t: raw.update({k: v.detach().clone()
                                                             for k, v in t.model.state_dict().items()}))
    model.train(**tiny_train_args(tiny_data, tmp_path, "noema", epochs=1))
    for name in ("best.pt", "last.pt"):
        saved = YOLO(str(tmp_path / "noema" / "weights" / name)).model.state_dict()  # plain Ultralytics loads it
        for k, v in raw.items():
            if v.dtype.is_floating_point:
                assert torch.equal(saved[k].half(), v.half()), (name, k)


def test_ema_decay_and_tau_follow_ultralytics_formula():
    from ultralytics.utils.torch_utils import ModelEMA

    from yolo_gd.inject.ema import ultralytics_decay

    ref = ModelEMA(torch.nn.Linear(2, 2), decay=0.999, tau=500)
    assert [ultralytics_decay(u, 0.999, 500) for u in (1, 10, 1000)] == [ref.decay(u) for u in (1, 10, 1000)]
    with pytest.raises(UserError, match="ema_decay"):
        yolo_gd.attach(_yolo(), "sgd", ema_decay=1.5)

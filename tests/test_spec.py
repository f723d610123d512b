"""Ablation specs: grid expansion (names, count, kwargs) and every validation error with its exact file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from yolo_gd.ablate.spec import TUNE_FACTORS, load_spec, parse_spec, safe_name
from yolo_gd.errors import UserError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def write(tmp_path, text: str, name: str = "spec.yaml") -> tuple[Path, str]:
    text = textwrap.dedent(text).lstrip("\n")
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path, text


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line containing ``needle``."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in spec")


GOOD = """
    name: grid
    base:
      model: yolo11n.yaml
      data: shapes
      imgsz: 64
      batch: 8
    axes:
      optimizer:
        - {name: sgd, lr: 0.01}
        - name: AdamW
          momentum: 0.8
      lr: [null, 1e-4]
      schedule: [null, cosine]
    seeds: [0, 1]
    budget: {epochs: 3}
    target: {metric: mAP50, value: 0.5}
"""


# ---------------------------------------------------------------------------------------------------- expansion


def test_grid_expands_into_named_trials_with_train_kwargs(tmp_path):
    path, _ = write(tmp_path, GOOD)
    sweep = load_spec(path)
    trials = sweep.trials
    assert len(trials) == 2 * 2 * 2 * 2  # optimizer x lr x schedule x seed
    names = [t.name for t in trials]
    assert len(set(names)) == len(names)
    assert names[:8] == [
        "sgd-lr0.01-s0", "sgd-lr0.01-s1", "sgd-lr0.01-cosine-s0", "sgd-lr0.01-cosine-s1",
        "sgd-lr0.0001-s0", "sgd-lr0.0001-s1", "sgd-lr0.0001-cosine-s0", "sgd-lr0.0001-cosine-s1",
    ]
    assert names[8:12] == ["adamw-momentum0.8-s0", "adamw-momentum0.8-s1", "adamw-momentum0.8-cosine-s0",
                           "adamw-momentum0.8-cosine-s1"]
    assert sweep.baseline == "sgd-lr0.01"
    assert sweep.target.metric == "metrics/mAP50(B)" and sweep.target.value == 0.5
    by_name = {t.name: t for t in trials}
    t = by_name["sgd-lr0.0001-cosine-s1"]
    assert t.config == "sgd-lr0.0001-cosine" and t.seed == 1 and t.stage == "main"
    assert t.kwargs == {"model": "yolo11n.yaml", "data": "shapes", "imgsz": 64, "batch": 8, "lr": 1e-4,
                        "optimizer": "sgd", "schedule": "cosine", "seed": 1, "epochs": 3}
    assert by_name["adamw-momentum0.8-s0"].kwargs == {
        "model": "yolo11n.yaml", "data": "shapes", "imgsz": 64, "batch": 8, "momentum": 0.8, "optimizer": "AdamW",
        "seed": 0, "epochs": 3}
    assert isinstance(by_name["adamw-momentum0.8-lr0.0001-s0"].kwargs["lr"], float)  # 1e-4 is a float, not a str
    for t in trials:  # every key is one train() accepts
        from ultralytics.cfg import DEFAULT_CFG_DICT

        from yolo_gd.training import YOLO_GD_KEYS

        assert set(t.kwargs) <= set(DEFAULT_CFG_DICT) | YOLO_GD_KEYS


def test_defaults_labels_schedule_options_and_budget_override(tmp_path):
    path, _ = write(tmp_path, """
        base: {epochs: 99}
        axes:
          optimizer:
            - sgd
            - {name: sgd, label: "slow backbone!", groups: {"model.[0-9].*": {lr: 0.1}}}
            - {name: sgd, nesterov_off: 1, label: x} 
          schedule: [{name: step, every: 3ep}]
        seeds: [7]
        budget: {epochs: 2}
    """.replace("nesterov_off: 1, ", ""), name="my sweep.yaml")
    sweep = load_spec(path)
    assert sweep.name == "my_sweep"  # the file stem, made filesystem-safe
    assert [t.name for t in sweep.trials] == ["sgd-step-every3ep-s7", "slow_backbone-s7", "x-s7"]
    t = sweep.trials[0]
    assert t.kwargs == {"model": "yolo11n.yaml", "data": "shapes", "optimizer": "sgd", "schedule": "step",
                        "schedule_kwargs": {"every": "3ep"}, "seed": 7, "epochs": 2}
    assert sweep.trials[1].kwargs["groups"] == {"model.[0-9].*": {"lr": 0.1}}


def test_tuned_protocol_expands_the_lr_grid(tmp_path):
    path, _ = write(tmp_path, """
        name: t
        axes:
          optimizer: [sgd, {name: adamw, lr: 0.002}]
        seeds: [0, 1, 2]
        budget: {epochs: 9}
        protocol: tuned
    """)
    sweep = load_spec(path)
    assert sweep.tune.epochs == 3 and sweep.tune.seeds == (0,)  # a third of the budget, the first seed
    assert sweep.tune_grid("sgd") == tuple(pytest.approx(0.01 * f) for f in TUNE_FACTORS)
    assert sweep.tune_grid("adamw") == tuple(pytest.approx(0.002 * f) for f in TUNE_FACTORS)
    tune = sweep.tune_trials()
    assert len(tune) == 10 and all(t.stage == "tune" for t in tune)
    assert tune[0].name == "sgd-tune-lr0.001-s0" and tune[0].tunes == "sgd" and tune[0].kwargs["epochs"] == 3
    assert tune[0].kwargs["lr"] == pytest.approx(0.001)
    assert sweep.trials == tune
    main = sweep.main_trials({"sgd": 0.03})
    assert [t.name for t in main] == ["sgd-s0", "sgd-s1", "sgd-s2", "adamw-s0", "adamw-s1", "adamw-s2"]
    assert main[0].kwargs["lr"] == 0.03 and main[0].kwargs["epochs"] == 9
    assert main[3].kwargs == {}  # adamw not picked yet: known by name only

    path, _ = write(tmp_path, """
        axes: {optimizer: [sgd]}
        seeds: [0]
        budget: {epochs: 4}
        protocol: tuned
        tune: {lrs: [1e-3, 1e-2], epochs: 1, seeds: [5]}
    """, name="t2.yaml")
    sweep = load_spec(path)
    assert [t.name for t in sweep.tune_trials()] == ["sgd-tune-lr0.001-s5", "sgd-tune-lr0.01-s5"]


def test_safe_name():
    assert safe_name("a b/c:d") == "a_b_c_d"
    assert safe_name("sgd-lr0.01") == "sgd-lr0.01"


@pytest.mark.parametrize("name", ["sgd_vs_adam", "sgd_vs_adam_bccd", "optimizers_bccd"])
def test_shipped_configs_load_and_expand(name):
    sweep = load_spec(CONFIGS / f"{name}.yaml")
    assert sweep.name == name
    trials = sweep.trials
    assert trials and len({t.name for t in trials}) == len(trials)
    assert all(c.kwargs["model"] == "yolo11n.yaml" for c in sweep.configs)  # (lrfind trials get kwargs later)
    optimizers = {c.kwargs["optimizer"] for c in sweep.configs}
    if name == "sgd_vs_adam":
        assert [t.name for t in trials] == ["sgd-s0", "sgd-s1", "adamw-s0", "adamw-s1"]
        assert sweep.configs[0].kwargs == {"model": "yolo11n.yaml", "data": "shapes", "imgsz": 128, "batch": 8,
                                           "nbs": 8, "optimizer": "sgd"}  # the range test sets lr
        assert sweep.lrfind == {"probe": 16}
        assert sweep.target.metric == "metrics/mAP50(B)" and sweep.target.value == 0.5
    elif name == "sgd_vs_adam_bccd":
        assert optimizers == {"sgd", "adamw"} and sweep.seeds == (0, 1, 2) and len(trials) == 6
        assert {t.kwargs["epochs"] for t in trials} == {30} and {t.kwargs["imgsz"] for t in trials} == {160}
    else:
        assert {"sgd", "adamw", "lion", "sfadamw"} <= optimizers and sweep.seeds == (0, 1, 2)
        assert {t.kwargs["epochs"] for t in trials} == {20} and {t.kwargs["imgsz"] for t in trials} == {160}


def test_the_compare_is_evidence_range_test_lrs_and_at_least_two_seeds():
    spec = load_spec(CONFIGS / "sgd_vs_adam.yaml")
    assert spec.protocol == "lrfind" and len(spec.seeds) >= 2
    assert [c.kwargs["optimizer"] for c in spec.configs] == ["sgd", "adamw"]
    assert all("lr" not in c.kwargs for c in spec.configs)  # the range test sets it


def test_compare_runs_the_shipped_config():
    from yolo_gd.ablate.commands import compare_spec_path

    assert compare_spec_path() == CONFIGS / "sgd_vs_adam.yaml"
    assert [t.name for t in load_spec(compare_spec_path()).trials] == ["sgd-s0", "sgd-s1", "adamw-s0", "adamw-s1"]


# ---------------------------------------------------------------------------------------------------- errors

BAD = [
    # (spec text, the line marker (the error's line holds it), words the message must contain)
    ("""
     axes: {optimizer: [sgd]}
     seeds: [0]
     budget: {epochs: 1}
     seed: [1]   # <-
     """, "unknown top-level key 'seed'. Did you mean 'seeds'?"),
    ("""
     axes:
       optimizer:
         - name: sgd
           lrr: 0.1   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "axes.optimizer[0].lrr: unknown key 'lrr'. Did you mean 'lr'?"),
    ("""
     axes:
       optimizer:
         - sgd
         - name: adamww   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "axes.optimizer[1].name: unknown optimizer 'adamww'. Did you mean 'adamw'?"),
    ("""
     axes:
       optimizer: [sgd]
       schedule:
         - null
         - cosinee   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "axes.schedule[1]: unknown schedule 'cosinee'. Did you mean 'cosine'?"),
    ("""
     axes:
       optimizer: [sgd]
       schedule:
         - {name: step}   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "schedule 'step' needs option 'every'"),
    ("""
     axes:
       optimizer: []   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "axes.optimizer: is empty"),
    ("""
     axes:
       lr: [0.1]
       optimizer:   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "axes.optimizer: must be a list"),
    ("""
     axes:
       optimizer:
         - {name: sgd, lr: 0.01}
         - {name: adamw}
         - {name: sgd, lr: 0.01}   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "two configs would both be named 'sgd-lr0.01' (also from line 3)"),
    ("""
     axes: {optimizer: [sgd]}
     seeds: [0, 1, 0]   # <-
     budget: {epochs: 1}
     """, "seeds[2]: seed 0 is listed twice"),
    ("""
     axes: {optimizer: [sgd]}
     seeds: [0, -1]   # <-
     budget: {epochs: 1}
     """, "seeds[1]: seed -1 must be a non-negative integer"),
    ("""
     axes: {optimizer: [sgd]}
     seeds: 3   # <-
     budget: {epochs: 1}
     """, "seeds: must be a list of seeds"),
    ("""
     axes: {optimizer: [sgd]}
     budget: {epochs: 1}
     seeds: []   # <-
     """, "seeds: must be a non-empty list"),
    ("""
     axes: {optimizer: [sgd]}
     seeds: [0]
     budget: {epochs: 1}
     target:
       metric: mAP75   # <-
       value: 0.5
     """, "target.metric: unknown metric 'mAP75'"),
    ("""
     axes: {optimizer: [sgd]}
     seeds: [0]
     budget: {epochs: 1}
     target:
       metric: mAP50
       value: 50   # <-
     """, "target.value: target value must be a number in (0, 1]"),
    ("""
     axes: {optimizer: [sgd]}
     seeds: [0]
     budget: {epochs: 1}
     target: {metric: mAP50}   # <-
     """, "target: a target needs both metric and value"),
    ("""
     axes:
       optimizer: [sgd]
     seeds: [0]
     budget:
       time: 0.05   # <-
     """, "a time budget needs Ultralytics' own optimizer"),
    ("""
     axes:
       optimizer:
         - {name: sgd, epochs: 3}   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "axes.optimizer[0].epochs: 'epochs' cannot be set here: the budget is shared"),
    ("""
     base:
       imgsz: 64
       project: runs/x   # <-
     axes: {optimizer: [sgd]}
     seeds: [0]
     budget: {epochs: 1}
     """, "base.project: 'project' cannot be set here"),
    ("""
     axes:
       optimizer:
         - name: sgd
           lr0: fast   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "axes.optimizer[0].lr0: 'lr0=fast' is of invalid type"),
    ("""
     axes:
       optimizer:
         - name: sgd
           telemetry: loud   # <-
     seeds: [0]
     budget: {epochs: 1}
     """, "axes.optimizer[0].telemetry: telemetry must be off, basic or full, got loud"),
    ("""
     axes: {optimizer: [sgd]}
     seeds: [0]
     budget: {epochs: 1}
     tune: {epochs: 1}   # <-
     """, "tune: tune is only used with 'protocol: tuned'"),
    ("""
     axes: {optimizer: [sgd]}
     seeds: [0]
     budget: {epochs: 1}
     protocol: tuneed   # <-
     """, "unknown protocol 'tuneed'. Did you mean 'tuned'?"),
    ("""
     axes: {optimizer: [sgd]}
     seeds: [0]
     budget: {epochs: 1}
     budget: {epochs: 2}   # <-
     """, "budget: duplicate key (first given on line 3)"),
    ("""
     axes: {optimizer: [sgd]}
     seeds: [0]
     budget: {epochs: 0}   # <-
     """, "epochs must be a positive integer"),
    ("""
     axes: {optimizer: [sgd]}
     seeds: [0]
     budget: {epochs: 1}
     base: {imgsz: 64
     name: x   # <-
     """, "not valid YAML"),
]


@pytest.mark.parametrize("text, message", BAD, ids=[m[:40] for _, m in BAD])
def test_every_error_names_file_line_and_key(tmp_path, text, message):
    path, text = write(tmp_path, text)
    with pytest.raises(UserError) as info:
        load_spec(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:{line_of(text, '# <-')}: "), msg
    assert message in msg, msg


def test_missing_spec_file_and_non_mapping(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match=r"^x\.yaml:1: an ablation spec is a YAML mapping"):
        parse_spec("- a\n- b\n", "x.yaml")

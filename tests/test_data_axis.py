"""Sweeps over datasets: the data axis, per-dataset names, and the performance profile across datasets."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from yolo_gd.ablate.naming import split_config
from yolo_gd.ablate.spec import parse_spec
from yolo_gd.errors import UserError
from yolo_gd.report.profile import (integrated_score, performance_profile, profile_blocks, ratio_table, rho,
                                    seed_time, time_table)

SPEC = """name: two
base: {{model: yolo11n.yaml, imgsz: 64, batch: 8, nbs: 8, workers: 0, plots: false, amp: false, warmup_epochs: 1}}
axes:
  optimizer: [{{name: sgd, lr: 0.01}}, adamw]
  data: ['{a}', '{b}']
seeds: [0]
budget: {{epochs: 1}}
"""


def test_profile_on_a_hand_made_table():
    table = pd.DataFrame([
        ("A", "d1", 0.50), ("B", "d1", 0.40), ("C", "d1", 0.25),
        ("A", "d2", 0.30), ("B", "d2", 0.60), ("C", "d2", 0.50),
        ("A", "d3", 0.20), ("B", "d3", 0.20),  # C did not finish on d3
        ("A", "d4", 0.00), ("B", "d4", 0.10), ("C", "d4", 0.11),
    ], columns=["config", "dataset", "value"])
    prof = performance_profile(table, taus=(1.0, 1.25, 2.0, 3.0))
    # ratios best/value  A: 1, 2, 1, inf   B: 1.25, 1, 1, 1.1   C: 2, 1.2, inf, 1
    assert prof.loc["A"].tolist() == [0.5, 0.5, 0.75, 0.75]
    assert prof.loc["B"].tolist() == [0.5, 1.0, 1.0, 1.0]
    assert prof.loc["C"].tolist() == [0.25, 0.5, 0.75, 0.75]
    times = pd.DataFrame([("A", "d1", 10.0), ("B", "d1", 30.0), ("A", "d2", math.nan), ("B", "d2", 5.0)],
                         columns=["config", "dataset", "value"])
    t = performance_profile(times, taus=(1.0, 3.0), higher_is_better=False)
    assert t.loc["A"].tolist() == [0.5, 0.5] and t.loc["B"].tolist() == [0.5, 1.0]


def test_time_to_target_profile_is_algoperf_s():
    inf = math.inf
    times = pd.DataFrame([("A", "d1", 10.0), ("B", "d1", 20.0), ("C", "d1", None),
                          ("A", "d2", 30.0), ("B", "d2", 10.0), ("C", "d2", 15.0),
                          ("A", "d3", inf), ("B", "d3", math.nan), ("C", "d3", 0.0)],  # nobody reached d3
                         columns=["config", "dataset", "value"])
    r = ratio_table(times)
    assert r.loc["A"].tolist() == [1.0, 3.0, inf] and r.loc["B"].tolist() == [2.0, 1.0, inf]
    assert r.loc["C"].tolist() == [inf, 1.5, inf]
    assert [rho(r.loc["A"].tolist(), t) for t in (1.0, 2.9, 3.0, 4.0)] == [1 / 3, 1 / 3, 2 / 3, 2 / 3]
    # area under rho over [1, 4] / 3: A (4-1)+(4-3) = 4, B (4-2)+(4-1) = 5, C 4-1.5 = 2.5; / (3 datasets x 3)
    assert [integrated_score(r.loc[c].tolist()) for c in "ABC"] == [4 / 9, 5 / 9, 2.5 / 9]
    grid = np.linspace(1.0, 4.0, 300_001)  # the same integral numerically, as a check of the closed form
    area = np.trapezoid([rho(r.loc["B"].tolist(), t) for t in grid[::1000]], grid[::1000]) / 3
    assert area == pytest.approx(5 / 9, abs=0.01)
    assert integrated_score([1.0, 1.0]) == 1.0 and integrated_score([4.5, inf]) == 0.0


def test_seed_time_is_the_median_with_misses_infinite():
    assert seed_time([10.0, 12.0]) == 11.0 and seed_time([10.0, None]) == math.inf
    assert seed_time([10.0, None, 12.0]) == 12.0 and seed_time([]) == math.inf


def test_profile_blocks_use_time_to_target_per_dataset():
    rows = [("d1__sgd", 0, 10.0), ("d1__sgd", 1, 14.0), ("d1__adamw", 0, 6.0), ("d1__adamw", 1, None),
            ("d2__sgd", 0, 40.0), ("d2__sgd", 1, 40.0), ("d2__adamw", 0, 20.0), ("d2__adamw", 1, 30.0)]
    tdf = pd.DataFrame([{"config": c, "seed": s, "stage": "main", "state": "done", "time_to_target": t}
                        for c, s, t in rows])
    configs = ["d1__sgd", "d1__adamw", "d2__sgd", "d2__adamw"]
    times = time_table(tdf, configs)
    assert times["value"].tolist() == [12.0, math.inf, 40.0, 25.0]
    summary = pd.DataFrame({"config": configs, "final_map50_95_mean": [0.4, 0.5, 0.2, 0.1]})
    blocks = profile_blocks(summary, tdf, {"metric": "metrics/mAP50(B)", "value": 0.5})
    profile = blocks[4][1]  # time to target: sgd r = 1, 1.6; adamw r = inf, 1
    assert profile.rows == [["sgd", "0.50", "0.50", "0.50", "1.00", "1.00", "1.00", f"{(3 + 2.4) / 6:.3f}"],
                            ["adamw", "0.50", "0.50", "0.50", "0.50", "0.50", "0.50", "0.500"]]
    assert blocks[-1][1].rows[0][-1] == f"{((4 - 1.25) + (4 - 1)) / 6:.3f}"  # final mAP: sgd r = 1.25, 1
    assert "Final-mAP ratio profile" in blocks[-2][1]


def test_data_axis_names_configs_per_dataset(tmp_path):
    sweep = parse_spec(SPEC.format(a="shapes", b="bccd"), tmp_path / "two.yaml")
    assert [t.name for t in sweep.trials] == ["shapes__sgd-lr0.01-s0", "shapes__adamw-s0", "bccd__sgd-lr0.01-s0",
                                              "bccd__adamw-s0"]
    assert [t.kwargs["data"] for t in sweep.trials] == ["shapes", "shapes", "bccd", "bccd"]
    assert split_config("bccd__sgd-lr0.01") == ("bccd", "sgd-lr0.01") and split_config("sgd") == (None, "sgd")
    with pytest.raises(UserError, match="both be named 'bccd'"):
        parse_spec(SPEC.format(a="bccd", b="bccd"), tmp_path / "two.yaml")


@pytest.mark.slow
def test_a_two_dataset_tiny_sweep_reports_the_profile(tmp_path, tiny_data):
    from yolo_gd.ablate.manifest import read_manifest
    from yolo_gd.ablate.runner import run_sweep
    from yolo_gd.datasets.shapes import generate_shapes

    other = generate_shapes(tmp_path / "other", n_train=48, n_val=16, imgsz=64, seed=1)
    spec = tmp_path / "two.yaml"
    spec.write_text(SPEC.format(a=tiny_data, b=other), encoding="utf-8")
    sweep_dir = run_sweep(spec, out_root=tmp_path / "runs", progress=None)
    trials = read_manifest(sweep_dir)["trials"]
    assert [split_config(n)[0] for n in trials] == ["tiny", "tiny", "other", "other"]
    assert all(t["state"] == "done" for t in trials.values()), trials
    from yolo_gd.report.build import build_report

    report = build_report(sweep_dir).markdown.read_text()
    assert "Across datasets" in report and "Final-mAP ratio profile" in report and "rho(1.25)" in report


def _trial(config: str, seed: int, map50_95: float):
    from yolo_gd.report.tables import MAP, TrialResult

    results = pd.DataFrame({"epoch": [1], "time": [10.0], MAP: [map50_95]})
    return TrialResult(name=f"{config}-s{seed}", config=config, seed=seed, state="done", stage="main", reason=None,
                       dir=None, shared_device=False, device="cpu", started=None, finished=None, results=results)


#: Two datasets, two optimizers, two seeds: final mAP50-95 per trial.
CRAFTED = {"d1__sgd": (0.4, 0.6), "d1__adamw": (0.1, 0.3), "d2__sgd": (0.05, 0.25), "d2__adamw": (0.7, 0.9)}


def test_statistics_stay_within_each_dataset():
    from yolo_gd.report.build import format_summary
    from yolo_gd.report.sections import summary_blocks
    from yolo_gd.report.tables import summary_table, trials_table

    trials = [_trial(c, s, v) for c, vals in CRAFTED.items() for s, v in enumerate(vals)]
    summary = summary_table(trials, trials_table(trials, None), list(CRAFTED), "d1__sgd").set_index("config")
    assert summary["baseline_config"].tolist() == ["d1__sgd", "d1__sgd", "d2__sgd", "d2__sgd"]
    assert summary["baseline"].tolist() == [True, False, True, False]
    assert summary["dataset"].tolist() == ["d1", "d1", "d2", "d2"]
    # both sides: std 0.1414 (var 0.02), se sqrt(0.02); Welch df = 2, where p = 1 - |t| / sqrt(t^2 + 2)
    t1, t2 = -0.3 / math.sqrt(0.02), 0.65 / math.sqrt(0.02)
    assert summary.loc["d1__adamw", "t_vs_baseline"] == pytest.approx(t1, rel=1e-12)
    assert summary.loc["d1__adamw", "p_vs_baseline"] == pytest.approx(1 - math.sqrt(4.5 / 6.5), rel=1e-9)
    assert summary.loc["d2__adamw", "t_vs_baseline"] == pytest.approx(t2, rel=1e-12)
    assert summary.loc["d2__adamw", "p_vs_baseline"] == pytest.approx(1 - math.sqrt(t2**2 / (t2**2 + 2)), rel=1e-9)
    assert summary.loc["d2__sgd", "p_vs_baseline"] is None  # d2's own baseline, not tested against d1__sgd
    assert summary["best"].tolist() == [True, False, False, True]  # one per dataset
    assert summary.loc["d2__adamw", "final_map50_95_ci_low"] == pytest.approx(0.8 - 12.706204736 * 0.1, rel=1e-9)
    text = " ".join(str(b[1]) for b in summary_blocks(summary.reset_index(), None))
    assert "Best config on `d1`: **d1__sgd**" in text and "Best config on `d2`: **d2__adamw**" in text
    assert "vs `d2__sgd` p = 0.044 (Welch)" in text  # 1 - sqrt(21.125 / 23.125) = 0.04422
    lines = format_summary(summary.reset_index()).splitlines()
    assert [ln[:2] for ln in lines[1:]] == ["* ", "  ", "  ", "* "]


def test_manifest_baselines_win_over_names_and_spec_gives_one_per_dataset(tmp_path):
    from yolo_gd.report.tables import summary_table, trials_table

    sweep = parse_spec(SPEC.format(a="shapes", b="bccd"), tmp_path / "two.yaml")
    assert sweep.baselines == {"shapes__sgd-lr0.01": "shapes__sgd-lr0.01", "shapes__adamw": "shapes__sgd-lr0.01",
                               "bccd__sgd-lr0.01": "bccd__sgd-lr0.01", "bccd__adamw": "bccd__sgd-lr0.01"}
    trials = [_trial(c, s, v) for c, vals in CRAFTED.items() for s, v in enumerate(vals)]
    given = {"d1__sgd": "d1__sgd", "d1__adamw": "d1__sgd", "d2__sgd": "d2__adamw", "d2__adamw": "d2__adamw"}
    summary = summary_table(trials, trials_table(trials, None), list(CRAFTED), "d1__sgd", None, given)
    assert summary["baseline"].tolist() == [True, False, False, True]
    assert summary["p_vs_baseline"].iloc[2] == pytest.approx(summary_table(
        trials, trials_table(trials, None), list(CRAFTED), "d1__sgd")["p_vs_baseline"].iloc[3], rel=1e-12)

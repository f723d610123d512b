"""build_report on a hand-made sweep: 2 configs x 2 seeds, 1 single-seed config, 1 failed trial, 1 tuning trial.

Every expected number below is computed by hand from the fake data written here (no runner involved), in the
layout the runner's read contract promises: manifest.json + Ultralytics save dirs with results.csv and
telemetry/steps/part-*.parquet.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from scipy import stats as st

from yolo_gd.report import ReportPaths, build_report, format_summary
from yolo_gd.report.stats import NO_CI
from yolo_gd.report.tables import images_per_second, read_results
from yolo_gd.telemetry.schema import cast_steps

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PER_EPOCH, EPOCHS, BATCH = 4, 3, 8
TARGET = {"metric": "metrics/mAP50(B)", "value": 0.45}

# trial -> (config, seed, mAP50-95 per epoch, mAP50 per epoch, results.csv seconds per epoch, seconds per step,
#           last-row train losses box/cls/dfl, started, finished, shared_device)
FAKE = {
    "sgd-s0": ("sgd", 0, [0.10, 0.20, 0.30], [0.20, 0.40, 0.50], 10.0, 0.5, (1.0, 2.0, 0.5), 1000.0, 1040.0, False),
    "sgd-s1": ("sgd", 1, [0.12, 0.25, 0.22], [0.30, 0.45, 0.44], 10.0, 0.4, (1.5, 2.0, 0.5), None, None, False),
    "adamw-s0": ("adamw", 0, [0.30, 0.40, 0.50], [0.50, 0.60, 0.70], 12.0, 0.25, (0.5, 1.0, 0.5), 1000.0, 1050.0,
                 False),
    "adamw-s1": ("adamw", 1, [0.35, 0.45, 0.56], [0.55, 0.65, 0.75], 12.0, 0.25, (0.7, 1.0, 0.5), 1000.0, 1046.0,
                 False),
    "lion-s0": ("lion", 0, [0.20, 0.30, 0.40], [0.40, 0.50, 0.60], 11.0, 0.4, (0.8, 1.2, 0.6), 2000.0, 2033.0,
                True),
    # the tuning stage: a great score that must NOT enter the statistics
    "adamw-tune-lr0.01": ("adamw", 0, [0.90, 0.95, 0.99], [0.9, 0.95, 0.99], 12.0, 0.25, (0.1, 0.1, 0.1), 900.0,
                          930.0, False),
}
FAILED_REASON = "CUDA out of memory at epoch 2 (batch 16)"
LOG_TAIL = "  File trainer.py, line 412, in _do_train\ntorch.OutOfMemoryError: CUDA out of memory"


def write_results(d, maps, maps50, epoch_s, losses):
    rows = []
    for e in range(EPOCHS):
        last = e == EPOCHS - 1
        box, cls, dfl = losses if last else (3.0, 3.0, 3.0)
        rows.append({"epoch": e + 1, "time": epoch_s * (e + 1), "train/box_loss": box, "train/cls_loss": cls,
                     "train/dfl_loss": dfl, "metrics/precision(B)": 0.5, "metrics/recall(B)": 0.5,
                     "metrics/mAP50(B)": maps50[e], "metrics/mAP50-95(B)": maps[e], "val/box_loss": 2.0,
                     "val/cls_loss": 2.0, "val/dfl_loss": 2.0, "lr/pg0": 0.01, "lr/pg1": 0.01, "lr/pg2": 0.01})
    df = pd.DataFrame(rows)
    df.columns = [f"{c:>20}" for c in df.columns]  # older Ultralytics pads column names: the reader strips them
    d.mkdir(parents=True, exist_ok=True)
    df.to_csv(d / "results.csv", index=False)


def steps_frame(seed, step_s, lr, clip, full, rng):
    n = PER_EPOCH * EPOCHS
    step = np.arange(n)
    epoch = step // PER_EPOCH
    parts = {k: b * np.exp(-step / 8) + rng.normal(0, 0.05, n) + 0.5 for k, b in
             (("box_loss", 2.0), ("cls_loss", 3.0), ("dfl_loss", 1.0))}
    gn = np.exp(rng.normal(np.log(12 if clip else 3), 0.3, n))
    df = {
        "step": step, "epoch": epoch, "batch": step, "batch_in_epoch": step % PER_EPOCH,
        "images_seen": (step + 1) * BATCH,
        "time": step * step_s + epoch * 3.0,  # 3 s of validation between epochs: excluded from images/s
        "attempt": np.zeros(n, int), "optimizer": ["X"] * n, "clip": np.full(n, clip if clip else np.nan),
        "lr/weight": lr * (1 - step / n), "lr/bias": lr * (1 - step / n),
        **{f"loss/{k}": v for k, v in parts.items()}, "loss_sum": sum(parts.values()),
        "loss_backprop": sum(parts.values()) * BATCH, "grad_norm": gn, "clipped": gn > (clip or np.inf),
    }
    if full:
        df["update_ratio/weight"] = 1e-3 * (1 - step / n) + 1e-5
        df["update_ratio/bias"] = 2e-3 * (1 - step / n) + 1e-5
    return cast_steps(pd.DataFrame(df))


def write_steps(d, frame, thrown_away_row=False):
    out = d / "telemetry" / "steps"
    out.mkdir(parents=True)
    if not thrown_away_row:
        frame.to_parquet(out / "part-00000.parquet", index=False)
        return
    # a NaN recovery threw step 5 away once (attempt 0, absurd time); the kept row is in the next part
    first, second = frame[frame["step"] <= 5].copy(), frame[frame["step"] >= 5].copy()
    first.loc[first["step"] == 5, "time"] = 999.0
    second["attempt"] = 1
    first.to_parquet(out / "part-00000.parquet", index=False)
    second.to_parquet(out / "part-00001.parquet", index=False)


def make_sweep(root, steps_per_epoch=PER_EPOCH):
    rng = np.random.default_rng(0)
    trials = {}
    for name, (config, seed, maps, maps50, epoch_s, step_s, losses, started, finished, shared) in FAKE.items():
        d = root / "trials" / name
        write_results(d, maps, maps50, epoch_s, losses)
        lr = {"sgd": 0.01, "adamw": 0.001, "lion": 3e-4}[config]
        write_steps(d, steps_frame(seed, step_s, lr, 10.0 if config == "sgd" else None, config == "adamw", rng),
                    thrown_away_row=name == "sgd-s0")
        trials[name] = {"config": config, "seed": seed, "state": "done", "reason": None, "dir": str(d),
                        "shared_device": shared, "device": "cpu", "started": started, "finished": finished,
                        "stage": "tune" if "tune" in name else "main", "lr": 0.01 if "tune" in name else lr}
    trials["adamw-s1"]["elapsed"] = 44.0  # the runner's time summed over attempts wins over finished - started
    trials["lion-s1"] = {"config": "lion", "seed": 1, "state": "pending", "reason": None,
                         "dir": str(root / "trials" / "lion-s1"), "shared_device": False, "device": None,
                         "started": None, "finished": None, "stage": "main"}
    trials["adamw-s2"] = {"config": "adamw", "seed": 2, "state": "failed", "reason": FAILED_REASON + "\n" + LOG_TAIL,
                          "dir": str(root / "trials" / "adamw-s2"), "shared_device": False, "device": "cuda:0",
                          "started": 1000.0, "finished": None, "stage": "main"}
    manifest = {
        "sweep": "fake-ablation", "target": TARGET, "baseline": "sgd", "protocol": "tuned",
        "tuned": {"adamw": {"tried": {"0.001": 0.53, "0.01": 0.41}, "picked": 0.001, "metric": "metrics/mAP50-95(B)",
                            "split": "val"}},
        "trials": trials,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = make_sweep(tmp_path_factory.mktemp("sweep"))
    return root, build_report(root)


def _summary(report):
    return pd.read_csv(report[1].tables[0]).set_index("config")


def _trials(report):
    return pd.read_csv(report[1].tables[1]).set_index("trial")


def test_paths(report):
    root, paths = report
    assert isinstance(paths, ReportPaths)
    out = root / "report"
    assert paths.markdown == out / "report.md" and paths.html == out / "report.html"
    assert {p.name for p in paths.tables} == {"summary.csv", "trials.csv", "trials.parquet"}
    assert all(p.exists() for p in (paths.markdown, paths.html, *paths.tables))


def test_trial_table_numbers(report):
    t = _trials(report)
    assert len(t) == 8 and t.loc["adamw-s2", "state"] == "failed"
    assert t.loc["adamw-s2", "reason"] == FAILED_REASON + "\n" + LOG_TAIL
    assert t.loc["lion-s1", "state"] == "pending" and pd.isna(t.loc["lion-s1", "final_map50_95"])
    assert pd.isna(t.loc["adamw-s2", "final_map50_95"])  # no files: no numbers (and no crash)
    r = t.loc["sgd-s1"]
    assert (r["final_map50_95"], r["best_map50_95"], r["final_map50"], r["best_map50"]) == (0.22, 0.25, 0.44, 0.45)
    assert r["final_train_loss"] == pytest.approx(4.0)  # 1.5 + 2.0 + 0.5
    assert r["epochs"] == 3
    assert r["steps"] == 12
    # target mAP50 >= 0.45: sgd-s1 reaches it at epoch 2 -> 20 s, 8 steps; sgd-s0 at epoch 3 -> 30 s, 12 steps
    assert (r["target_epoch"], r["time_to_target"], r["steps_to_target"]) == (2, 20.0, 8)
    assert tuple(t.loc["sgd-s0", ["target_epoch", "time_to_target", "steps_to_target"]]) == (3, 30.0, 12)
    assert tuple(t.loc["adamw-s0", ["target_epoch", "time_to_target", "steps_to_target"]]) == (1, 12.0, 4)
    # wall time: the runner's elapsed, else finished - started, else results.csv's last cumulative time
    assert t.loc["sgd-s0", "wall_time"] == 40.0 and r["wall_time"] == 30.0 and t.loc["adamw-s1", "wall_time"] == 44.0
    assert t.loc["sgd-s0", "lr"] == 0.01 and t.loc["adamw-tune-lr0.01", "lr"] == 0.01
    # images/s: 8 images per step over seconds per step (the 3 s validation gaps and the thrown-away row excluded)
    assert t.loc["sgd-s0", "images_per_s"] == pytest.approx(16.0)
    assert r["images_per_s"] == pytest.approx(20.0)
    assert t.loc["adamw-s0", "images_per_s"] == pytest.approx(32.0)
    assert bool(t.loc["lion-s0", "shared_device"]) and t.loc["adamw-tune-lr0.01", "stage"] == "tune"


def test_trials_parquet_matches_csv(report):
    pq = pd.read_parquet(report[1].tables[2]).set_index("trial")
    assert pq.loc["sgd-s1", "final_map50_95"] == 0.22
    assert pq["final_map50_95"].dtype == "float64"


def test_summary_numbers(report):
    s = _summary(report)
    assert list(s.index) == ["sgd", "adamw", "lion"]  # baseline first; the tuning trial adds no config
    assert tuple(s["n"]) == (2, 2, 1)
    # sgd final mAP50-95 [0.30, 0.22]: mean 0.26, std 0.04*sqrt(2), CI half-width t(0.975, 1) * 0.04
    assert s.loc["sgd", "final_map50_95_mean"] == pytest.approx(0.26)
    assert s.loc["sgd", "final_map50_95_std"] == pytest.approx(0.04 * math.sqrt(2))
    half = st.t.ppf(0.975, 1) * 0.04
    assert s.loc["sgd", "final_map50_95_ci_low"] == pytest.approx(0.26 - half)
    assert s.loc["sgd", "final_map50_95_ci_high"] == pytest.approx(0.26 + half)
    # adamw [0.50, 0.56] (tuning trial's 0.99 and the failed seed excluded): mean 0.53
    assert s.loc["adamw", "final_map50_95_mean"] == pytest.approx(0.53)
    assert s.loc["adamw", "best_map50_95_mean"] == pytest.approx(0.53)
    assert s.loc["adamw", "failed"] == 1
    # Welch adamw vs sgd: t = 0.27 / sqrt(0.0018/2 + 0.0032/2) = 5.4
    assert s.loc["adamw", "t_vs_baseline"] == pytest.approx(5.4)
    assert s.loc["adamw", "p_vs_baseline"] == pytest.approx(
        st.ttest_ind([0.5, 0.56], [0.30, 0.22], equal_var=False).pvalue)
    assert pd.isna(s.loc["sgd", "p_vs_baseline"]) and pd.isna(s.loc["lion", "p_vs_baseline"])  # baseline; 1 seed
    # single seed: a mean, no std, no CI
    assert s.loc["lion", "final_map50_95_mean"] == pytest.approx(0.40)
    assert pd.isna(s.loc["lion", "final_map50_95_std"]) and pd.isna(s.loc["lion", "final_map50_95_ci_low"])
    assert tuple(s["best"]) == (False, True, False)
    assert tuple(s["shared_device"]) == (False, False, True)
    # time / steps to target, wall time, images/s, train loss
    assert s.loc["sgd", "time_to_target_mean"] == pytest.approx(25.0)  # 30, 20
    assert s.loc["sgd", "steps_to_target_mean"] == pytest.approx(10.0)  # 12, 8
    assert s.loc["adamw", "time_to_target_mean"] == pytest.approx(12.0)
    assert tuple(s["target_reached"]) == (2, 2, 1)
    assert s.loc["sgd", "wall_time_mean"] == pytest.approx(35.0)  # 40, 30
    assert s.loc["adamw", "wall_time_mean"] == pytest.approx(47.0)  # 50, 44 (elapsed)
    assert tuple(s["failed"]) == (0, 1, 0) and tuple(s["unfinished"]) == (0, 0, 1)
    assert s.loc["sgd", "images_per_s_mean"] == pytest.approx(18.0)
    assert s.loc["sgd", "images_per_s_std"] == pytest.approx(math.sqrt(8))
    assert s.loc["sgd", "final_train_loss_mean"] == pytest.approx(3.75)  # 3.5, 4.0


def test_markdown_content(report):
    md = report[1].markdown.read_text()
    assert "fake-ablation" in md
    assert FAILED_REASON in md and "torch.OutOfMemoryError" in md
    assert f"| {FAILED_REASON} … torch.OutOfMemoryError: CUDA out of memory |" in md  # one line in the table
    assert "not finished (pending)" in md
    assert "`sgd` (baseline, lr 0.01)" in md
    assert NO_CI in md
    assert "LR picked on the validation split, which is also the split reported" in md
    assert "shared device" in md and "not comparable" in md
    assert "**adamw**" in md and "best" in md
    assert "0.530 ± 0.042" in md  # adamw final mAP50-95
    for png in report[1].plots:
        assert f"]({png.name})" in md


def _without_data_uris(text: str) -> str:
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)


def test_no_nan_anywhere(report):
    for path in (report[1].markdown, report[1].html, *report[1].tables[:2]):
        text = _without_data_uris(path.read_text())
        assert "nan" not in text.lower(), path.name


def test_html_is_self_contained(report):
    text = report[1].html.read_text()
    srcs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", text, flags=re.I)
    assert srcs and all(s.startswith("data:") for s in srcs)
    assert "<link" not in text.lower() and "@import" not in text
    assert text.count("<img") == len(report[1].plots)
    assert FAILED_REASON in text and NO_CI in text and "<table" in text


def test_all_pngs_exist_and_are_valid(report):
    names = {p.name for p in report[1].plots}
    assert names == {"map.png", "loss.png", "grad_norm.png", "lr.png", "update_ratio.png", "clip_rate.png"}
    for p in report[1].plots:
        data = p.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, p.name
        img = imread(p)
        assert img.shape[0] >= 300 and img.shape[1] >= 500


def test_format_summary_one_line_per_config(report):
    text = format_summary(pd.read_csv(report[1].tables[0]).astype(object).where(lambda d: d.notna(), None))
    lines = text.splitlines()
    assert len(lines) == 1 + 3  # header + configs
    for config in ("sgd", "adamw", "lion"):
        assert sum(re.search(rf"^\W*{config}\b", line) is not None for line in lines[1:]) == 1
    assert NO_CI in text and "nan" not in text.lower()
    assert len({len(line) for line in lines[1:]}) >= 1 and all(len(line) < 140 for line in lines)


def test_format_summary_on_the_in_memory_table(tmp_path):
    from yolo_gd.report.tables import config_order, load_trials, summary_table, trials_table

    root = make_sweep(tmp_path)
    manifest = json.loads((root / "manifest.json").read_text())
    trials = load_trials(manifest)
    summary = summary_table(trials, trials_table(trials, TARGET), config_order(manifest, trials), "sgd", TARGET)
    lines = format_summary(summary).splitlines()
    assert len(lines) == 4 and lines[2].startswith("* adamw")


def test_report_without_target_tuning_or_any_finished_trial(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({
        "sweep": "all-failed", "target": None, "baseline": "sgd", "tuned": None,
        "trials": {"sgd-s0": {"config": "sgd", "seed": 0, "state": "failed", "reason": "diverged (NaN loss)",
                              "dir": str(tmp_path / "nope"), "shared_device": False, "device": "cpu",
                              "started": None, "finished": None, "stage": "main"}}}))
    paths = build_report(tmp_path)
    md = paths.markdown.read_text()
    assert "diverged (NaN loss)" in md and "no finished trial" in md
    assert "validation split" in md
    assert paths.plots == ()
    assert "nan" not in _without_data_uris(paths.html.read_text()).replace("NaN loss", "").lower()
    assert len(format_summary(pd.read_csv(paths.tables[0])).splitlines()) == 2


def test_read_results_strips_names_dedupes_epochs_and_sums_time_across_resumes(tmp_path):
    (tmp_path / "results.csv").write_text(
        "  epoch,   time,  metrics/mAP50-95(B)\n1,10,0.1\n2,20,0.2\n2,21,0.25\n3,5,0.3\n4,15,0.4\n")
    df = read_results(tmp_path)
    assert list(df.columns) == ["epoch", "time", "metrics/mAP50-95(B)"]
    assert df["epoch"].tolist() == [1, 2, 3, 4]
    assert df["metrics/mAP50-95(B)"].tolist() == [0.1, 0.25, 0.3, 0.4]
    assert df["time"].tolist() == [10.0, 21.0, 26.0, 36.0]  # the resumed process restarted its clock at 0
    assert read_results(tmp_path / "missing").empty


def test_images_per_second_skips_epoch_gaps_and_restarts():
    steps = pd.DataFrame({"step": range(6), "epoch": [0, 0, 0, 1, 1, 1], "images_seen": [8, 16, 24, 32, 40, 48],
                          "time": [0.0, 1.0, 2.0, 10.0, 0.5, 1.5]})  # gap at the epoch, restart inside epoch 1
    assert images_per_second(steps) == pytest.approx(8.0)  # 3 pairs of 8 images in 1 s each
    assert images_per_second(pd.DataFrame()) is None


def test_missing_manifest_is_a_user_error(tmp_path):
    from yolo_gd.errors import UserError

    with pytest.raises(UserError, match="no sweep manifest"):
        build_report(tmp_path)


def _side_by_side(name, threads=1, shared=True, device="cpu", state="done"):
    from yolo_gd.report.tables import TrialResult

    return TrialResult(name=name, config=name, seed=0, state=state, stage="main", reason=None, dir=None,
                       shared_device=shared, device=device, started=None, finished=None, threads=threads)


def test_equal_share_only_when_every_trial_ran_beside_the_others_with_the_same_threads():
    from yolo_gd.report.tables import equal_share

    pair = [_side_by_side("sgd"), _side_by_side("adamw")]
    assert equal_share(pair, cpus=2) == (
        "All 2 trials ran side by side on this 2-core CPU with 1 torch thread each (an equal share of the cores), "
        "so their wall times, times to target and images/s compare with each other; not with trials that ran "
        "alone, or on another machine.")
    assert "with 4 torch threads each" in equal_share([_side_by_side("a", 4), _side_by_side("b", 4)], cpus=8)
    assert equal_share([_side_by_side("a"), _side_by_side("b", shared=False)], cpus=2) is None  # one ran alone
    assert equal_share([_side_by_side("a", 1), _side_by_side("b", 2)], cpus=4) is None  # unequal shares
    assert equal_share([_side_by_side("a", None), _side_by_side("b", None)], cpus=2) is None  # Ultralytics' own
    assert equal_share([_side_by_side("a", device="0"), _side_by_side("b", device="0")], cpus=2) is None  # GPU
    assert equal_share(pair, cpus=None) is None  # a manifest written before cpus was recorded
    assert equal_share(pair[:1], cpus=2) is None
    assert equal_share([*pair, _side_by_side("c", threads=2, state="failed")], cpus=2) is not None  # not used


def test_the_report_says_equal_share_instead_of_not_comparable(tmp_path):
    root = make_sweep(tmp_path / "sweep")
    m = json.loads((root / "manifest.json").read_text())
    for t in m["trials"].values():
        t.update(shared_device=True, threads=1, device="cpu")
    m["cpus"] = 2
    (root / "manifest.json").write_text(json.dumps(m))
    md = build_report(root).markdown.read_text()
    assert "**Side by side, equal share.** All 5 trials ran side by side on this 2-core CPU" in md  # the tuning trial is not counted
    assert "not comparable: shared device" not in md and "Shared-device warning" not in md


def test_noise_scale_plot_draws_only_configs_with_windows(tmp_path):
    from yolo_gd.report.plots import plot_noise_scale

    windows = pd.DataFrame({"epoch": [0, 0, 1, 1], "grad_sq_first": [7.0 * 16] * 4, "grad_norm": [32.0] * 4,
                            "accumulate": [4] * 4, "batch_size": [4] * 4, "skipped": [False] * 4})
    with_ns, without = _side_by_side("full"), _side_by_side("basic")
    with_ns.steps = windows
    without.steps = windows.drop(columns="grad_sq_first")
    colors = {"full": "C0", "basic": "C1"}
    path = plot_noise_scale({"full": [with_ns], "basic": [without]}, colors, tmp_path)
    assert path == tmp_path / "noise_scale.png" and path.stat().st_size > 0
    assert plot_noise_scale({"basic": [without]}, colors, tmp_path / "none") is None


def test_time_to_target_counts_a_resume_after_a_short_first_epoch(tmp_path):
    """Resumed after epoch 1 (5 s): the restarted clock reads 8 s at epoch 2, above 5, so only the record of the
    restart (yolo_gd_run.yaml 'starts', written by every attached run) tells it apart from 8 s in total."""
    (tmp_path / "results.csv").write_text("epoch,time\n1,5\n2,8\n3,16\n")
    (tmp_path / "yolo_gd_run.yaml").write_text("starts:\n- epoch: 0\n- epoch: 1\n")
    assert read_results(tmp_path)["time"].tolist() == [5.0, 13.0, 21.0]

"""yolo-gd: key=value parsing, one-line errors with exit code 2, and the README's main job at tiny size."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from yolo_gd import cli
from yolo_gd.cli import main, parse_pairs, parse_value
from yolo_gd.errors import UserError


@pytest.mark.parametrize(
    "text, value",
    [("none", None), ("True", True), ("false", False), ("3", 3), ("0.001", 0.001), ("1e-4", 1e-4),
     ("[0.9, 0.99]", [0.9, 0.99]), ("(0.9,0.99)", [0.9, 0.99]), ("{'model.0.*': 0.1}", {"model.0.*": 0.1}),
     ("adamw", "adamw"), ("3ep", "3ep")],
)
def test_parse_value(text, value):
    assert parse_value(text) == value


def test_parse_pairs_follows_ultralytics_conventions():
    """A bare key is True (Ultralytics' `yolo train ... resume`), a leading `--` is dropped."""
    assert parse_pairs(["lr=0.1", "optimizer=sgd"]) == {"lr": 0.1, "optimizer": "sgd"}
    assert parse_pairs(["resume", "--plots", "--epochs=3", "--lr=1e-3"]) == {"resume": True, "plots": True,
                                                                            "epochs": 3, "lr": 1e-3}
    assert parse_pairs(["optimizer_kwargs={betas: [0.9, 1e-3]}"]) == {"optimizer_kwargs": {"betas": [0.9, 1e-3]}}
    for bad in ("=3", "--=3", "a b=1", "3x=1"):
        with pytest.raises(UserError, match="key=value pairs or bare keys"):
            parse_pairs([bad])


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["trian"], "unknown command 'trian'. Did you mean 'train'?"),
        (["train", "model=yolo11n.pt"], "train from scratch with a model config (model=yolo11n.yaml)"),
        (["train", "optimizer=adamww"], "Did you mean 'adamw'?"),
        (["train", "epoch=3"], "unknown argument 'epoch'. Did you mean 'epochs'?"),
        (["train", "clip=5"], "pass optimizer="),
        (["data", "check", "nowhere"], "unknown dataset"),
        (["data", "frobnicate"], "unknown data subcommand"),
        (["qat", "data=bccd"], "usage: yolo-gd qat model=FLOAT.pt"),
        (["qat", "model=yolo11n.yaml", "data=bccd"], "yolo11n.yaml"),
        (["report", "nowhere"], "nowhere"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, message):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert err.startswith("yolo-gd: error: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize("flag", ["help", "--help", "-h"])
def test_train_help_lists_yolo_gd_keys_with_defaults(capsys, flag):
    from yolo_gd.inject.config import InjectConfig

    code, out, _ = _run(capsys, "train", "data=bccd", flag)
    assert code == 0 and out.startswith("usage: yolo-gd train")
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("  ") and not ln.startswith("  model=")]
    assert [r[0] for r in rows] == list(InjectConfig.__dataclass_fields__)
    assert ["clip", "10.0"] == rows[[r[0] for r in rows].index("clip")][:2]
    assert "telemetry" in out and "off, basic or full" in out


def test_debug_shows_the_traceback():
    with pytest.raises(UserError):
        main(["--debug", "trian"])


def test_data_check_and_shapes(capsys, tmp_path):
    code, out, _ = _run(capsys, "data", "check", "bccd")
    assert code == 0 and "3 classes" in out and "train: 292 images" in out
    code, out, _ = _run(capsys, "data", "shapes", f"out={tmp_path / 's'}", "n_train=4", "n_val=2", "imgsz=64")
    assert code == 0 and (tmp_path / "s" / "data.yaml").exists()
    (tmp_path / "s" / "labels" / "train").joinpath("000000.txt").write_text("0 0.5 0.5 0.2\n")
    code, _, err = _run(capsys, "data", "check", str(tmp_path / "s"))
    assert code == 2 and "000000.txt:1" in err


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_has_help(capsys, name):
    """`yolo-gd NAME help` prints that command's usage and exits 0 (never runs the command)."""
    code, out, err = _run(capsys, name, "help")
    assert code == 0 and err == ""
    assert out.startswith("usage:") and out.split("yolo-gd ", 1)[1].startswith(f"{name} ")


def test_data_help_lists_both_subcommands(capsys):
    code, out, _ = _run(capsys, "data", "--help")
    assert code == 0 and [line.split()[:3] for line in out.splitlines()[1:]] == [
        ["yolo-gd", "data", "shapes"], ["yolo-gd", "data", "check"]]


def test_version_is_the_package_metadata_version(capsys):
    """One version: yolo_gd/__init__.py, which the build reads into the metadata; the CLI prints the same."""
    from importlib.metadata import version

    import yolo_gd

    code, out, _ = _run(capsys, "--version")
    assert code == 0 and out.strip() == f"yolo-gd {yolo_gd.__version__}" == f"yolo-gd {version('yolo_gd')}"


def test_console_script_entry_point():
    """The installed `yolo-gd` script runs (a fresh process: also proves the package imports offline)."""
    exe = os.path.join(os.path.dirname(sys.executable), "yolo-gd")
    done = subprocess.run([exe, "data", "check", "bccd"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([exe, "train", "model=yolo11n.pt"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr


@pytest.mark.slow
def test_readme_main_job_at_tiny_size(capsys, tiny_data, tmp_path, monkeypatch):
    """The README's `yolo-gd train ...` at 1 epoch / 64 px: exits 0 and names where the results are."""
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(capsys, "train", f"data={tiny_data}", "optimizer=adamw", "epochs=1", "imgsz=64", "batch=8",
                        "nbs=8", "workers=0", "plots=false")
    assert code == 0
    assert f"results in {tmp_path / 'runs' / 'detect' / 'train'}" in out
    assert (tmp_path / "runs" / "detect" / "train" / "weights" / "best.pt").exists()


@pytest.mark.slow
def test_readme_compare_at_tiny_size(capsys, tiny_data, tmp_path):
    """`yolo-gd compare` is `ablate configs/sgd_vs_adam.yaml`: the same spec at 1 epoch / 32 px, one seed, via the CLI,
    exits 0 and ends with the summary table and the report's path."""
    import yaml

    from yolo_gd.ablate.commands import compare_spec_path

    spec = yaml.safe_load(compare_spec_path().read_text())
    spec["base"].update(data=str(tiny_data), imgsz=32, batch=8, nbs=8)
    spec["budget"] = {"epochs": 1}
    spec["lrfind"] = {"steps": 4, "probe": 4}
    spec["seeds"] = [0]  # the shipped 2 seeds double the cost and test nothing more here
    path = tmp_path / "sgd_vs_adam.yaml"
    path.write_text(yaml.safe_dump(spec))
    code, out, _ = _run(capsys, "ablate", str(path), f"out={tmp_path / 'ablate'}", "workers=2")
    assert code == 0
    report = tmp_path / "ablate" / "sgd_vs_adam" / "report" / "report.html"
    assert f"report: {report}" in out and report.stat().st_size > 10_000
    assert "sgd-s0" in out and "adamw-s0" in out
    assert "range tests (protocol lrfind) on the train split, side by side: sgd, adamw" in out
    assert "Not resolved at this budget: " in out and "with 1 seed there is no test" in out

"""Count bad inputs over the whole CLI that end as they should: exit 2, one line on stderr, no traceback, no new
file or folder. Each case runs ``yolo_gd.cli.main`` in-process in a fresh temp cwd (``project=``/``out=`` inside
it); the train and sweep-spec cases of ``tests/test_bad_input.py`` plus cases for every other command.

    PYTHONPATH=$PWD:$PWD/tests YOLO_OFFLINE=1 python bench/bad_inputs.py
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import textwrap
import traceback
from pathlib import Path

OTHER = [
    ["frobnicate"], ["data"], ["data", "frob"], ["data", "check"], ["data", "check", "{tmp}/nope.yaml"],
    ["data", "shapes", "out={tmp}/s", "n_trian=4"], ["data", "shapes", "out={tmp}/s", "n_train=-3"],
    ["data", "shapes", "out={tmp}/s", "n_train=abc"], ["data", "shapes", "out={tmp}/s", "imgsz=0"],
    ["plot"], ["plot", "{tmp}/nope"], ["doctor"], ["doctor", "{tmp}/nope"], ["report"], ["report", "{tmp}/nope"],
    ["report", "{tmp}/empty"], ["ablate"], ["ablate", "epochs=3"], ["ablate", "{tmp}/nope.yaml"],
    ["ablate", "{tmp}/broken.yaml"], ["ablate", "{tmp}/list.yaml"], ["compare", "workerz=2", "out={tmp}/o"],
    ["compare", "devices=banana", "out={tmp}/o"], ["compare", "backend=slurm", "out={tmp}/o"],
    ["lrfind", "optimizer=adamww", "out={tmp}/o"], ["lrfind", "optimizer=sgd", "data=cocoo", "out={tmp}/o"],
    ["lrfind", "optimizer=sgd", "steps=-1", "out={tmp}/o"], ["lrfind", "optimizer=sgd", "lr_min=2", "lr_max=1",
                                                              "out={tmp}/o"],
    ["lrfind", "optimizer=sgd", "batch=0", "out={tmp}/o"], ["lrfind", "out={tmp}/o"],
    ["qat"], ["qat", "model={tmp}/nope.pt", "data=shapes"], ["qat", "model=yolo11n.yaml", "data=cocoo"],
    ["train", "resume", "model={tmp}/nope.pt"], ["train", "resume", "optimizer=sgd", "model={tmp}/finished.pt"],
    ["train", "resume", "model={tmp}/finished.pt"], ["train", "optimizer=sfadamw", "freeze=3", "unfreeze=1ep",
                                                      "project={tmp}/p"],
]


def _fixtures(tmp: Path) -> None:
    import torch
    from ultralytics.nn.tasks import DetectionModel

    (tmp / "notes.pt").write_text("not a checkpoint\n")
    torch.save({"weights": [1.0, 2.0]}, tmp / "state.pt")
    (tmp / "list.yaml").write_text("- epochs\n- 3\n")
    (tmp / "broken.yaml").write_text("epochs: 3\nimgsz: [64\n")
    (tmp / "badlr.yaml").write_text("optimizer: sgd\nlr: -1\n")
    (tmp / "empty").mkdir()
    torch.save({"epoch": -1, "model": None, "ema": DetectionModel("yolo11n.yaml", verbose=False).half(),
                "optimizer": None, "train_args": {"epochs": 3}}, tmp / "finished.pt")


def _case(argv: list[str], data: str) -> tuple[bool, str]:
    from yolo_gd.cli import main

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        _fixtures(tmp)
        before = set(tmp.rglob("*"))
        argv = [a.replace("{tmp}", str(tmp)).replace("{data}", data) for a in argv]
        out, err, cwd = io.StringIO(), io.StringIO(), os.getcwd()
        os.chdir(tmp)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
        except BaseException:  # noqa: BLE001 - an escaped exception is a failed case
            code, err = -1, io.StringIO(traceback.format_exc())
        finally:
            os.chdir(cwd)
        new = set(tmp.rglob("*")) - before
        e = err.getvalue()
        ok = code == 2 and e.startswith("yolo-gd: error: ") and e.count("\n") == 1 and "Traceback" not in e \
            and not new
        why = "" if ok else f"code {code}, {e.count(chr(10))} lines, new {sorted(str(p) for p in new)[:2]}: {e[:200]}"
        return ok, why


def main() -> None:
    from test_bad_input import BASE_SPEC, SPECS, TRAIN

    from yolo_gd.datasets.shapes import generate_shapes

    data = str(generate_shapes(Path(tempfile.mkdtemp()) / "tiny", n_train=48, n_val=16, imgsz=64, seed=0))
    cases = []
    for _, argv, _ in TRAIN:
        extra = [] if any(a.startswith(("data=", "cfg=", "resume")) for a in argv) else [f"data={data}"]
        argv = [a.replace("{finished}", "{tmp}/finished.pt") for a in argv]
        cases.append(["train", *extra, *argv, "project={tmp}/p"])
    for name, entry, epochs, message in SPECS:
        model = "nope.yaml" if "base.model" in message else "yolo11n.yaml"
        spec = textwrap.dedent(BASE_SPEC.format(data=data, entry=entry, epochs=epochs, model=model))
        cases.append(["ablate", spec, "out={tmp}/o"])
    cases += OTHER
    passed, failed = 0, []
    for argv in cases:
        if argv[0] == "ablate" and len(argv) > 1 and "\n" in argv[1]:
            spec = Path(tempfile.mkdtemp()) / "spec.yaml"
            spec.write_text(argv[1])
            argv = ["ablate", str(spec), *argv[2:]]
        ok, why = _case(argv, data)
        passed += ok
        if not ok:
            failed.append((argv, why))
    print(f"{passed} of {len(cases)} bad inputs: exit 2, one line, no traceback, no new folder")
    for argv, why in failed:
        print(f"  FAIL {' '.join(argv)}\n       {why}")


if __name__ == "__main__":
    sys.exit(main())

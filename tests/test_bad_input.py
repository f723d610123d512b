"""Bad input through the CLI entry point: exit code 2, one line on stderr, no traceback, no run folder.

Each case runs ``yolo_gd.cli.main`` in-process with ``project=`` (``out=`` for sweeps) pointing at an empty folder
that must stay empty, and checks the one line names what the user should know (the key, the rule, the fix or a
suggestion). Train cases use a tiny dataset so that nothing is generated; the cwd is a temp folder.
"""

from __future__ import annotations

import textwrap

import pytest
import torch

from yolo_gd.cli import main

SGD = "optimizer=sgd"

TRAIN = [
    # (id, argv after 'train', words the error line must contain)
    ("lr-not-a-number", [SGD, "lr=abc"], "lr must be > 0 (a number), got abc; e.g. lr=0.001"),
    ("lr-negative", [SGD, "lr=-0.1"], "lr must be > 0 (a number), got -0.1"),
    ("lr-zero", ["optimizer=adamw", "lr=0"], "lr must be > 0 (a number), got 0"),
    ("lr-nan", [SGD, "lr=nan"], "lr must be > 0 (a number), got nan"),
    ("momentum-one", [SGD, "momentum=1.0"], "momentum must be a number in [0, 1), got 1.0"),
    ("momentum-above-one", [SGD, "momentum=1.5"], "momentum must be a number in [0, 1), got 1.5"),
    ("momentum-negative", [SGD, "momentum=-0.1"], "momentum must be a number in [0, 1), got -0.1"),
    ("momentum-text", [SGD, "momentum=high"], "momentum must be a number in [0, 1), got high"),
    ("beta2-one", ["optimizer=adamw", "optimizer_kwargs={betas: [0.9, 1.0]}"], "must be two numbers in [0, 1)"),
    ("beta1-negative", ["optimizer=adam", "optimizer_kwargs={betas: [-0.1, 0.99]}"], "two numbers in [0, 1)"),
    ("optimizer-kwarg-unknown", [SGD, "optimizer_kwargs={nesterovv: true}"], "does not take 'nesterovv'"),
    ("weight-decay-negative", [SGD, "weight_decay=-1"], "weight_decay must be >= 0 (a number), got -1"),
    ("warmup-momentum-one", [SGD, "warmup_momentum=1"], "warmup_momentum must be a number in [0, 1), got 1"),
    ("warmup-bad-unit", [SGD, "warmup=3xx"], "warmup: duration '3xx' has unknown unit 'xx'"),
    ("warmup-words", [SGD, "warmup=three"], "duration 'three' is not understood"),
    ("warmup-negative", [SGD, "warmup=-1ep"], "is negative"),
    ("warmup-dur-above-one", [SGD, "warmup=1.5dur"], "is more than the whole training"),
    ("warmup-fractional-steps", [SGD, "warmup=2.5it"], "not a whole number of optimizer steps"),
    ("warmup-longer-than-run-ep", [SGD, "warmup=5ep", "epochs=2"], "warmup=5ep is longer than the run (2 epochs)"),
    ("warmup-longer-than-run-it", [SGD, "warmup=10000it", "epochs=1"], "shorten the warmup or train longer"),
    ("warmup-kind", [SGD, "warmup_kind=cosine"], "warmup_kind must be linear or exp, got cosine"),
    ("telemetry-level", ["telemetry=loud"], "telemetry must be off, basic or full, got loud"),
    ("telemetry-every-negative", ["telemetry_every=-1"], "telemetry_every must be a whole number >= 0, got -1"),
    ("optimizer-unknown", ["optimizer=adamww"], "unknown optimizer 'adamww'. Did you mean 'adamw'?"),
    ("schedule-unknown", [SGD, "schedule=cosinee"], "unknown schedule 'cosinee'. Did you mean 'cosine'?"),
    ("schedule-missing-option", [SGD, "schedule=step"], "schedule 'step' needs option 'every'"),
    ("clip-zero", [SGD, "clip=0"], "clip must be > 0 (a max-norm), or none for no clipping, got 0"),
    ("clip-negative", [SGD, "clip=-1"], "clip must be > 0 (a max-norm), or none for no clipping, got -1"),
    ("clip-text", [SGD, "clip=abc"], "clip must be > 0 (a max-norm), or none for no clipping, got abc"),
    ("clip-observe-only", ["clip=5"], "clip given without an optimizer"),
    ("schedule-observe-only", ["schedule=cosine"], "schedule given without an optimizer"),
    ("lr-observe-only", ["lr=0.01"], "(lr0=...)"),
    ("groups-bad-value", [SGD, "groups={model.0.*: fast}"], "expected a mapping like"),
    ("groups-match-nothing", [SGD, "groups={model.99.*: 0.1}"], "rule 'model.99.*' matches no trainable parameter"),
    ("time-with-injection", [SGD, "time=0.1"], "time=0.1 (a wall-clock budget)"),
    ("epochs-zero", ["epochs=0"], "'epochs=0' is an invalid value. 'epochs' must be >= 1"),
    ("epochs-negative", ["epochs=-3"], "'epochs' must be >= 1"),
    ("epochs-text", ["epochs=abc"], "'epochs' must be an int"),
    ("imgsz-negative", ["imgsz=-64"], "imgsz must be a whole number > 0"),
    ("imgsz-zero", ["imgsz=0"], "imgsz must be a whole number > 0"),
    ("batch-zero", ["batch=0"], "batch must be a whole number >= 1, -1 (AutoBatch)"),
    ("batch-negative", ["batch=-2"], "-1 (AutoBatch) or a GPU-memory fraction in (0, 1), got -2"),
    ("batch-fractional", ["batch=2.5"], "-1 (AutoBatch) or a GPU-memory fraction in (0, 1), got 2.5"),
    ("workers-negative", ["workers=-1"], "workers must be a whole number >= 0, got -1"),
    ("lr0-zero", ["lr0=0"], "lr0 must be > 0 (a number), got 0"),
    ("lr0-above-one", ["lr0=5"], "'lr0=5' is an invalid value"),
    ("ultralytics-bool", ["cos_lr=maybe"], "'cos_lr' must be a bool"),
    ("device-missing-gpu", ["device=7"] if not torch.cuda.is_available() else ["device=99"], "device="),
    ("model-yaml-missing", ["model=nope.yaml"], "model=nope.yaml: no such model config"),
    ("model-text-pt", ["model={tmp}/notes.pt"], "cannot load this checkpoint"),
    ("model-pt-not-ultralytics", ["model={tmp}/state.pt"], "cannot load this checkpoint"),
    ("model-pt-missing", ["model={tmp}/missing.pt"], "are not on disk"),
    ("model-pretrained-offline", ["model=yolo11n.pt"], "YOLO_OFFLINE is set"),
    ("model-suffix", ["model=model.onnx"], "not '.onnx'"),
    ("ultralytics-key-typo", ["epoch=3"], "unknown argument 'epoch'. Did you mean 'epochs'?"),
    ("yolo-gd-key-typo", ["--lrr=0.1"], "unknown argument 'lrr'. Did you mean 'lr'?"),
    ("bare-unknown-flag", ["frobnicate"], "unknown argument 'frobnicate'"),
    ("not-a-pair", ["=3"], "arguments are key=value pairs"),
    ("bad-inline-yaml", [SGD, "groups={model.0.*: [0.1"], "cannot parse value"),
    ("cfg-missing", ["cfg={tmp}/none.yaml"], "no such file"),
    ("cfg-not-a-mapping", ["cfg={tmp}/list.yaml"], "holds a list, not a mapping of train keys"),
    ("cfg-broken-yaml", ["cfg={tmp}/broken.yaml"], "not valid YAML at"),
    ("cfg-bad-yolo-gd-value", ["cfg={tmp}/badlr.yaml"], "lr must be > 0 (a number), got -1"),
    ("resume-from-yaml", ["resume", "model=yolo11n.yaml"], "resume needs the checkpoint"),
    ("data-unknown", ["data=cocoo"], "unknown dataset 'cocoo'"),
    ("resume-finished", ["resume", SGD, "model={finished}"],
     "is a finished run (3 epochs): there is nothing left to resume; to train it longer pass resume=True epochs=N "
     "(more than 3)"),
    ("resume-finished-observe-only", ["resume", "model={finished}"],
     "only a run trained with an injected optimizer can be extended"),
    ("unfreeze-past-end-ep", [SGD, "freeze=10", "unfreeze=5ep", "epochs=2"],
     "unfreeze at '5ep' is not before the end of the run (2 epochs)"),
    ("unfreeze-past-end-steps", [SGD, "freeze=10", "unfreeze=100000", "epochs=1"], "but training has only"),
    ("unfreeze-selects-nothing", [SGD, "freeze=2", "unfreeze=[[model.9.*, 1ep]]", "epochs=2"],
     "selects no parameter frozen by freeze="),
]

BASE_SPEC = """
    base: {{model: {model}, data: {data}, imgsz: 64}}
    axes:
      optimizer:
        - {entry}
    seeds: [0]
    budget: {{epochs: {epochs}}}
"""

SPECS = [
    # (id, optimizer entry, epochs, words the error line must contain)
    ("spec-lr-text", "{name: sgd, lr: abc}", 1, "axes.optimizer[0].lr: lr must be > 0 (a number), got abc"),
    ("spec-lr-negative", "{name: sgd, lr: -0.01}", 1, "lr must be > 0 (a number), got -0.01"),
    ("spec-momentum", "{name: sgd, momentum: 1.5}", 1, "momentum must be a number in [0, 1), got 1.5"),
    ("spec-betas", "{name: adamw, optimizer_kwargs: {betas: [0.9, 1.1]}}", 1, "two numbers in [0, 1)"),
    ("spec-warmup", "{name: sgd, warmup: 3xx}", 1, "duration '3xx' has unknown unit 'xx'"),
    ("spec-telemetry", "{name: sgd, telemetry: loud}", 1, "telemetry must be off, basic or full, got loud"),
    ("spec-clip", "{name: sgd, clip: 0}", 1, "clip must be > 0 (a max-norm), or none for no clipping, got 0"),
    ("spec-optimizer", "{name: adamww}", 1, "unknown optimizer 'adamww'. Did you mean 'adamw'?"),
    ("spec-imgsz", "{name: sgd, imgsz: -1}", 1, "imgsz must be a whole number > 0"),
    ("spec-epochs-zero", "sgd", 0, "epochs must be a positive integer"),
    ("spec-model", "sgd", 1, "base.model: model=nope.yaml: no such model config"),
]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project folder (it must stay empty) in a temp cwd, with the files some cases name."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.pt").write_text("not a checkpoint\n")
    torch.save({"weights": [1.0, 2.0]}, tmp_path / "state.pt")  # a torch file, not an Ultralytics checkpoint
    (tmp_path / "list.yaml").write_text("- epochs\n- 3\n")
    (tmp_path / "broken.yaml").write_text("epochs: 3\nimgsz: [64\n")
    (tmp_path / "badlr.yaml").write_text("optimizer: sgd\nlr: -1\n")
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def _one_line_exit_2(capsys, argv: list[str], folder, message: str) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (code, out[-2000:], err)
    assert err.startswith("yolo-gd: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err + out
    assert message in err, err
    assert list(folder.iterdir()) == [], list(folder.iterdir())
    return err


def _finished_checkpoint(tmp) -> str:
    """A last.pt as Ultralytics leaves it after the last epoch (final_eval: epoch -1, optimizer stripped)."""
    from ultralytics.nn.tasks import DetectionModel

    run = tmp / "done" / "weights"
    run.mkdir(parents=True)
    ema = DetectionModel("yolo11n.yaml", verbose=False).half()
    torch.save({"epoch": -1, "best_fitness": None, "model": None, "ema": ema, "updates": 0, "optimizer": None,
                "train_args": {"epochs": 3, "imgsz": 64}}, run / "last.pt")
    return str(run / "last.pt")


@pytest.mark.parametrize("argv, message", [c[1:] for c in TRAIN], ids=[c[0] for c in TRAIN])
def test_train_bad_input(capsys, project, tiny_data, argv, message):
    tmp = project.parent
    if any("{finished}" in a for a in argv):
        finished = _finished_checkpoint(tmp)
        argv = [a.replace("{finished}", finished) for a in argv]
    argv = [a.replace("{tmp}", str(tmp)) for a in argv]
    data = [] if any(a.startswith(("data=", "cfg=", "resume")) for a in argv) else [f"data={tiny_data}"]
    _one_line_exit_2(capsys, ["train", *data, *argv, f"project={project}"], project, message)


@pytest.mark.parametrize("entry, epochs, message", [c[1:] for c in SPECS], ids=[c[0] for c in SPECS])
def test_sweep_spec_bad_input(capsys, project, tiny_data, entry, epochs, message):
    spec = project.parent / "spec.yaml"
    model = "nope.yaml" if "base.model" in message else "yolo11n.yaml"
    spec.write_text(textwrap.dedent(BASE_SPEC.format(data=tiny_data, entry=entry, epochs=epochs, model=model)))
    err = _one_line_exit_2(capsys, ["ablate", str(spec), f"out={project}"], project, message)
    assert err.startswith(f"yolo-gd: error: {spec}:")  # file:line of the key


@pytest.mark.parametrize("argv, message", [
    (["ablate", "{tmp}/nope.yaml"], "does not exist"),
    (["ablate", "{tmp}/broken.yaml"], "not valid YAML"),
    (["ablate", "{spec}", "workerz=2"], "unknown ablate option 'workerz'"),
    (["data", "shapes", "out={tmp}/project/s", "n_trian=4"], "unknown data shapes option 'n_trian'"),
], ids=["spec-missing", "spec-broken", "ablate-option-typo", "shapes-option-typo"])
def test_other_commands_bad_input(capsys, project, argv, message):
    from yolo_gd.ablate.commands import compare_spec_path

    argv = [a.format(tmp=project.parent, spec=compare_spec_path()) for a in argv] + [f"out={project}"]
    _one_line_exit_2(capsys, argv, project, message)


@pytest.mark.parametrize("where", ["axes", "base"])
def test_a_sweep_naming_a_missing_dataset_fails_before_its_folder(capsys, project, tiny_data, where):
    spec = project.parent / "spec.yaml"
    missing = f"{project.parent}/nope/data.yaml"
    text = textwrap.dedent(BASE_SPEC.format(data=missing if where == "base" else tiny_data, entry="sgd", epochs=1,
                                            model="yolo11n.yaml"))
    if where == "axes":
        text = text.replace("axes:\n", f"axes:\n  data: [{tiny_data}, {missing}]\n")
    spec.write_text(text)
    err = _one_line_exit_2(capsys, ["ablate", str(spec), f"out={project}"], project, "nope/data.yaml' does not exist")
    assert f"{where}.data" in err


def test_enough_cases():
    assert len(TRAIN) + len(SPECS) + 4 >= 40

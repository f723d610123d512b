"""``yolo-gd``: the command line, in Ultralytics' ``key=value`` style.

    yolo-gd train data=shapes optimizer=adamw lr=0.001 epochs=15 imgsz=128
    yolo-gd data shapes out=datasets/shapes n_train=256 imgsz=128
    yolo-gd data check datasets/bccd/data.yaml

Ultralytics' conventions hold: a bare key is ``True`` (``resume``, ``plots``), a leading ``--`` is dropped
(``--epochs=3``), ``cfg=file.yaml`` reads keys from a file, and ``yolo-gd train help`` lists yolo_gd's keys.
A :class:`UserError` prints one line on stderr and exits with code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from yolo_gd.errors import UserError, unknown_name

USAGE = """usage: yolo-gd [--debug] [--version] COMMAND [key=value ...]   ('yolo-gd COMMAND help' for one command)

commands:
  train  key=value ...          train with an injected optimizer/schedule (optimizer=...), or observe-only;
                                'yolo-gd train help' lists yolo_gd's keys
  data shapes key=value ...     generate the synthetic shapes dataset (out=, n_train=, n_val=, imgsz=, seed=)
  data check DATA               check a dataset (a data.yaml, its folder, 'bccd' or 'shapes'); exit 2 on problems
  ablate SPEC key=value ...     run an ablation sweep (configs/*.yaml), resumable; ends with its report
  compare key=value ...         ablate configs/sgd_vs_adam.yaml: SGD vs AdamW on the default shapes set, each
                                at its range-test LR, 2 seeds, side by side on a multi-core CPU
  report SWEEP_DIR              rebuild a sweep's report (Markdown, HTML, CSV, plots)
  qat model=FLOAT.pt data=...   quantization-aware fine-tune (injected optimizer), int8 ONNX export, measured table
  doctor RUN_DIR                findings on a run's telemetry (clip-dominated, LR too high/low, dead layers...)
  lrfind key=value ...          LR range test (model=, data=, optimizer=, lr_min=, lr_max=, steps=, batch=, nbs=,
                                mosaic=, probe=, probe_every=, out=; see docs/lrfind.md)
  plot RUN_DIR                  PNG plots of a run's per-step telemetry (losses, grad norm, LR, update ratio)
"""


def parse_value(text: str) -> Any:
    """Ultralytics-style value parsing: none/true/false, numbers, [lists] and {dicts}, else the string."""
    low = text.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text[:1] in "[{(":
        import yaml

        from yolo_gd.yamlio import load_yaml

        try:
            return load_yaml(text.replace("(", "[").replace(")", "]"))
        except yaml.YAMLError as e:
            raise UserError(f"cannot parse value '{text}' ({getattr(e, 'problem', None) or 'not valid YAML'}): "
                            f"write lists as [0.9, 0.99] and mappings as {{key: value}}") from None
    return text


def parse_pairs(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs as Ultralytics reads them: a leading ``--`` is dropped (``--epochs=3``) and a bare key
    is ``True`` (``resume``, ``plots``)."""
    out = {}
    for item in items:
        text = item[2:] if item.startswith("--") else item
        key, sep, value = text.partition("=")
        key = key.strip()
        if not key or not key.replace("_", "a").replace("-", "a").isalnum() or key[0].isdigit():
            raise UserError(f"arguments are key=value pairs or bare keys (resume), got '{item}' (e.g. epochs=10)")
        out[key] = parse_value(value.strip()) if sep else True
    return out


TRAIN_HELP = """usage: yolo-gd train [key=value ...] [cfg=FILE.yaml]

Keys are Ultralytics' train settings (epochs, imgsz, batch, lr0, ... see 'yolo cfg') and yolo_gd's own below;
a bare key is true (resume, plots), --key=value works too, cfg=FILE.yaml reads keys from a YAML file (keys on
the command line win). Without optimizer= (or with optimizer=auto) training is Ultralytics' own, observed:
then momentum, weight_decay, warmup_bias_lr and warmup_momentum are Ultralytics' keys.

  model={model}  data={data}  (a .pt checkpoint or .yaml config; shapes, bccd or a data.yaml)

yolo_gd keys (default, meaning):
{options}
"""


def train_help() -> str:
    from yolo_gd.inject.config import InjectConfig
    from yolo_gd.schema import options_help
    from yolo_gd.training import DEFAULT_DATA, DEFAULT_MODEL

    return TRAIN_HELP.format(model=DEFAULT_MODEL, data=DEFAULT_DATA, options=options_help(InjectConfig))


def _train(args: list[str]) -> int:
    if any(a.lstrip("-") in ("help", "h") for a in args):
        print(train_help())
        return 0
    from yolo_gd.training import train

    result = train(**parse_pairs(args))
    print(f"yolo-gd: results in {result.save_dir}")
    for key in ("metrics/mAP50(B)", "metrics/mAP50-95(B)"):
        if key in result.metrics:
            print(f"  {key} = {result.metrics[key]:.4f}")
    return 0


def _data(args: list[str]) -> int:
    if not args:
        raise UserError("yolo-gd data needs a subcommand: 'shapes' or 'check'")
    sub, rest = args[0], args[1:]
    if sub == "shapes":
        from yolo_gd.datasets.shapes import DEFAULT_SHAPES, default_shapes_dir, generate_shapes

        given = parse_pairs(rest)
        for key in given:
            if key not in (*DEFAULT_SHAPES, "out"):
                raise unknown_name("data shapes option", key, (*DEFAULT_SHAPES, "out"))
        kwargs = {**DEFAULT_SHAPES, **given}
        out = Path(kwargs.pop("out", default_shapes_dir()))
        print(f"yolo-gd: dataset ready: {generate_shapes(out, **kwargs)}")
        return 0
    if sub == "check":
        from yolo_gd.datasets.check import check_dataset, resolve_data

        if len(rest) != 1:
            raise UserError("usage: yolo-gd data check DATA (a data.yaml, its folder, 'bccd' or 'shapes')")
        summary = check_dataset(resolve_data(rest[0]))
        splits = ", ".join(f"{k}: {v.images} images, {v.boxes} boxes" for k, v in summary.splits.items())
        print(f"yolo-gd: dataset OK: {summary.yaml_path} ({summary.nc} classes; {splits})")
        return 0
    raise unknown_name("data subcommand", sub, ("shapes", "check"))


def _plot(args: list[str]) -> int:
    from yolo_gd.telemetry.plots import plot_run
    from yolo_gd.telemetry.sinks import read_steps

    if len(args) != 1:
        raise UserError("usage: yolo-gd plot RUN_DIR (a training's save dir, e.g. runs/detect/train)")
    run_dir = Path(args[0])
    if read_steps(run_dir).empty:
        raise UserError(f"no telemetry steps under {run_dir}: pass a run trained with yolo_gd (telemetry=basic|full)")
    for path in plot_run(run_dir):
        print(f"yolo-gd: wrote {path}")
    return 0


def _doctor(args: list[str]) -> int:
    from yolo_gd.health.doctor import doctor, format_findings

    if len(args) != 1:
        raise UserError("usage: yolo-gd doctor RUN_DIR (a training's save dir, e.g. runs/detect/train)")
    print(format_findings(doctor(args[0]), args[0]))
    return 0


def _lrfind(args: list[str]) -> int:
    from yolo_gd.lrfind.run import lr_find

    result = lr_find(**parse_pairs(args))
    print(result.summary())
    return 0


def _ablate(args: list[str]) -> int:
    from yolo_gd.ablate.commands import ablate_command, exit_code

    if not args or "=" in args[0]:
        raise UserError("usage: yolo-gd ablate SPEC [devices=cpu] [workers=N] [per_device=N] [out=DIR] "
                        "[retry_failed=true] [backend=local|ray] [address=auto] (SPEC: a sweep YAML such as "
                        "configs/sgd_vs_adam.yaml)")
    return exit_code(ablate_command(args[0], **parse_pairs(args[1:])))


def _compare(args: list[str]) -> int:
    from yolo_gd.ablate.commands import compare_command, exit_code

    return exit_code(compare_command(**parse_pairs(args)))


def _report(args: list[str]) -> int:
    from yolo_gd.ablate.commands import report_summary
    from yolo_gd.report import build_report

    if len(args) != 1:
        raise UserError("usage: yolo-gd report SWEEP_DIR (e.g. runs/ablate/sgd_vs_adam)")
    print(report_summary(build_report(args[0])))
    return 0


def _qat(args: list[str]) -> int:
    from yolo_gd.qat.pipeline import qat_command

    return qat_command(parse_pairs(args))


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "train": _train, "data": _data, "plot": _plot, "ablate": _ablate, "compare": _compare, "report": _report,
    "qat": _qat, "doctor": _doctor, "lrfind": _lrfind,
}


def command_help(name: str) -> str:
    """``yolo-gd NAME help``: the command's lines of :data:`USAGE` (``train`` also lists yolo_gd's keys)."""
    if name == "train":
        return train_help()
    block, inside = [], False
    for line in USAGE.split("commands:\n", 1)[1].splitlines():
        if not line.startswith(" " * 10):  # an entry's first line (its continuation lines are indented)
            inside = line.split()[:1] == [name]
        if inside:
            block.append(line)
    return "usage:\n" + "\n".join(f"  yolo-gd {line.strip()}" if not line.startswith(" " * 10) else f"{' ' * 8}{line}"
                                    for line in block)


def _is_help(args: list[str]) -> bool:
    return bool(args) and args[0].lstrip("-") in ("help", "h")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] in ("--version", "-V", "version"):
        from yolo_gd import __version__

        print(f"yolo-gd {__version__}")
        return 0
    try:
        command = COMMANDS.get(argv[0])
        if command is None:
            raise unknown_name("command", argv[0], COMMANDS)
        if _is_help(argv[1:]):
            print(command_help(argv[0]))
            return 0
        return command(argv[1:])
    except UserError as e:
        if debug:
            raise
        print(f"yolo-gd: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("yolo-gd: interrupted (an ablate/compare sweep resumes when rerun)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

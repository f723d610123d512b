"""Everything ``yolo_gd.train`` and ``yolo-gd train`` check before a run folder exists.

In order: the yolo_gd options (the schema, :class:`~yolo_gd.inject.config.InjectConfig`), Ultralytics' keys (its own
``get_cfg``/``check_cfg``, plus :class:`~yolo_gd.schema.HostRanges` for what it lets through), the model name, then
building the model inside a guard, then what only the model and data can tell: a warmup longer than the run, and
group rules that match no trainable parameter. ``model.train`` creates the folder only after all of these passed.
Each problem is one :class:`~yolo_gd.errors.UserError` line naming the fix.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from yolo_gd.errors import UserError, one_line
from yolo_gd.schema import validate_host_ranges

__all__ = ["MODEL_SUFFIXES", "check_device", "check_groups_match", "check_model_name", "check_resumable",
           "check_run_length", "check_sam_cadence", "check_ultralytics_args", "check_unfreeze_match", "load_model"]

MODEL_SUFFIXES = (".pt", ".yaml", ".yml")
#: Keys Ultralytics accepts beside its default cfg (``check_dict_alignment``).
_ALSO_ACCEPTED = ("augmentations", "save_dir")


def check_ultralytics_args(args: dict, yolo_gd_keys=()) -> SimpleNamespace:
    """Check Ultralytics train ``args`` as its trainer will (``get_cfg``), before anything is built: unknown keys
    (with a suggestion among Ultralytics' and ``yolo_gd_keys``), types and ranges. Returns the full settings the
    trainer would start from (defaults filled in); ``args`` is not changed."""
    from ultralytics.cfg import DEFAULT_CFG_DICT, get_cfg

    for key in args:
        if key not in DEFAULT_CFG_DICT and key not in _ALSO_ACCEPTED:
            close = difflib.get_close_matches(str(key), sorted(set(DEFAULT_CFG_DICT) | set(yolo_gd_keys)), n=1,
                                              cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UserError(f"unknown argument '{key}'.{hint} Valid keys: yolo_gd's ('yolo-gd train help') and "
                            f"Ultralytics' train settings ('yolo cfg').", key=key)
    try:
        cfg = get_cfg(DEFAULT_CFG_DICT, dict(args))
    except (TypeError, ValueError, SyntaxError) as e:
        raise UserError(f"{one_line(e)} (an Ultralytics train setting: see 'yolo cfg' for every key and its "
                        f"default)") from None
    validate_host_ranges(args)
    return cfg


def check_device(device: Any) -> None:
    """The device Ultralytics' trainer will ask for exists (its ``select_device``, with the environment it sets
    restored): a missing GPU is one line, not a multi-line ValueError from inside ``model.train``."""
    import os

    from ultralytics.utils.torch_utils import select_device

    if device is None:
        return
    from ultralytics.utils import LOGGER

    saved, quiet = os.environ.get("CUDA_VISIBLE_DEVICES"), LOGGER.disabled
    LOGGER.disabled = True  # select_device logs its banner into the error it raises
    try:
        select_device(device, verbose=False)
    except (ValueError, RuntimeError, AssertionError) as e:
        raise UserError(f"device={device}: {one_line(e, 200)}", key="device") from None
    finally:
        LOGGER.disabled = quiet
        if saved is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved


def check_model_name(model: Any) -> str:
    """``model`` as Ultralytics will load it (``yolo11n`` -> ``yolo11n.pt``), if it can be one: a checkpoint
    (``.pt``) or a model config (``.yaml``) that exists, ships with Ultralytics, or (``.pt``) may be downloaded.
    Opens no network connection (see :func:`yolo_gd._offline.fetch_weights` for the download)."""
    from ultralytics.utils.checks import check_model_file_from_stem

    if not isinstance(model, (str, Path)) or not str(model).strip():
        raise UserError(f"model={model!r}: must be a checkpoint (.pt) or a model config (.yaml), e.g. "
                        f"model=yolo11n.yaml to train from scratch", key="model")
    text = check_model_file_from_stem(str(model).strip())
    suffix = Path(text).suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise UserError(f"model={text}: yolo_gd trains an Ultralytics checkpoint (.pt) or model config (.yaml), not "
                        f"'{suffix or 'a folder'}': pass e.g. model=runs/detect/train/weights/last.pt or "
                        f"model=yolo11n.yaml", key="model")
    if suffix != ".pt":
        from ultralytics.nn.tasks import yaml_model_load

        try:
            yaml_model_load(text)
        except FileNotFoundError:
            raise UserError(f"model={text}: no such model config: pass the path of a model YAML, or one that "
                            f"Ultralytics ships such as yolo11n.yaml or yolo26n.yaml", key="model") from None
        except Exception as e:  # noqa: BLE001 - a broken YAML: its own message, one line
            raise UserError(f"model={text}: cannot read the model config ({type(e).__name__}: {one_line(e)}): "
                            f"fix the YAML", key="model") from None
    return text


def check_resumable(checkpoint: str, epochs: Any, *, injected: bool) -> None:
    """A finished run (``final_eval`` set ``epoch=-1`` and stripped the optimizer) cannot be resumed as it is:
    say so in one line, with how to extend it, instead of Ultralytics' AssertionError. ``epochs`` given on an
    injected run extends it (inject/extend.py checks the rest)."""
    import torch

    path = Path(checkpoint)
    if not path.is_file():
        raise UserError(f"resume checkpoint {checkpoint} does not exist: pass model=<run>/weights/last.pt",
                        key="model")
    try:  # Ultralytics' own checkpoint: unpickled as Ultralytics itself would (its trust boundary)
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one user error
        raise UserError(f"model={checkpoint}: cannot read this checkpoint ({type(e).__name__}: {one_line(e, 200)}): "
                        f"pass a last.pt written by a training", key="model") from None
    if not isinstance(ckpt, dict) or ckpt.get("epoch", -1) not in (None, -1):
        return
    planned = (ckpt.get("train_args") or {}).get("epochs")
    done = f"a finished run ({planned} epochs)" if planned else "a finished run"
    new_run = f"start a new run from its weights (model={checkpoint} without resume)"
    if not injected:
        raise UserError(f"model={checkpoint} is {done}: there is nothing left to resume; {new_run} (only a run "
                        f"trained with an injected optimizer can be extended with resume=True epochs=N)",
                        key="resume")
    if epochs is None:
        more = f" (more than {planned})" if planned else ""
        raise UserError(f"model={checkpoint} is {done}: there is nothing left to resume; to train it longer pass "
                        f"resume=True epochs=N{more}, or {new_run}", key="resume")


def load_model(model: str):
    """``ultralytics.YOLO(model)`` (builds or loads it, creates no folder); any failure is one :class:`UserError`.

    A ``.pt`` is unpickled by Ultralytics (``torch.load(weights_only=False)``): load only checkpoints you trust."""
    from ultralytics import YOLO

    try:
        return YOLO(model)
    except Exception as e:  # noqa: BLE001 - whatever Ultralytics raises for an unloadable model is one user error
        kind = "checkpoint" if str(model).endswith(".pt") else "model config"
        raise UserError(f"model={model}: cannot load this {kind} ({type(e).__name__}: {one_line(e, 200)}): pass an "
                        f"Ultralytics detection checkpoint (.pt) or a model config (.yaml, e.g. yolo11n.yaml)",
                        key="model") from None


def _estimated_cadence(args: SimpleNamespace, train_images: int):
    """The loop's step rule estimated from the dataset size (None if the batch size is not known before training:
    AutoBatch)."""
    from yolo_gd.optim.progress import Cadence

    batch = args.batch
    if isinstance(batch, bool) or not isinstance(batch, (int, float)) or batch < 1 or train_images < 1:
        return None
    fraction = args.fraction if isinstance(args.fraction, (int, float)) and 0 < args.fraction < 1 else 1.0
    images = max(1, round(train_images * fraction))
    nb = math.ceil(images / int(batch))
    epochs = int(args.epochs)
    accumulate = min(max(round(args.nbs / int(batch)), 1), nb * epochs)
    warmup_epochs = min(float(args.warmup_epochs), max(epochs - 1, 0))
    warmup = round(warmup_epochs * nb) if warmup_epochs > 0 else 0
    return Cadence(nb, epochs, accumulate, warmup)


def check_run_length(inject, args: SimpleNamespace, train_images: int | None) -> None:
    """A warmup longer than the run: epochs compare directly, optimizer steps against the steps the run will take
    (estimated from ``train_images``, ``batch``, ``nbs`` and ``epochs`` as the trainer counts them)."""
    from yolo_gd.optim.durations import parse_duration

    if inject.observe_only or getattr(args, "time", None):
        return
    _check_unfreeze_length(inject, args, train_images)
    if inject.warmup is None:
        return
    duration = parse_duration(inject.warmup)
    if duration.unit == "ep" and duration.value > args.epochs:
        raise UserError(f"warmup={inject.warmup} is longer than the run ({args.epochs} epochs): shorten the warmup "
                        f"or train longer", key="warmup")
    if duration.unit != "it" or train_images is None:
        return
    cadence = _estimated_cadence(args, train_images)
    if cadence is not None and duration.value > cadence.total_steps:
        raise UserError(f"warmup={inject.warmup} is {int(duration.value)} optimizer steps but the run has about "
                        f"{cadence.total_steps} ({args.epochs} epochs of {cadence.batches_per_epoch} batches, "
                        f"accumulate {cadence.accumulate}): shorten the warmup or train longer", key="warmup")


def check_sam_cadence(inject, args: SimpleNamespace, train_images: int | None) -> None:
    """The SAM family takes its second gradient on the step's own batch: one batch per optimizer step."""
    if inject.observe_only or inject.sam is None:
        return
    cadence = _estimated_cadence(args, train_images) if train_images else None
    batch = args.batch if isinstance(args.batch, int) and not isinstance(args.batch, bool) else None
    accumulate = cadence.accumulate if cadence is not None else (max(round(args.nbs / batch), 1) if batch else 1)
    if accumulate > 1:
        raise UserError(f"optimizer={inject.optimizer} needs one batch per optimizer step (its second gradient is "
                        f"taken on the step's batch): set nbs={batch} (= batch); nbs={args.nbs} accumulates "
                        f"{accumulate} batches", key="nbs")


def _check_unfreeze_length(inject, args: SimpleNamespace, train_images: int | None) -> None:
    """Each unfreeze stage must join before the run ends (the same rule the trainer applies, checked before the
    run folder exists): epochs compare directly, other units against the estimated step count."""
    from yolo_gd.optim.unfreeze import join_plan, parse_unfreeze

    if inject.unfreeze is None:
        return
    stages = parse_unfreeze(inject.unfreeze)
    for stage in stages:
        if stage.when.unit == "ep" and stage.when.value >= args.epochs:
            raise UserError(f"unfreeze at '{stage.when}' is not before the end of the run ({args.epochs} epochs): "
                            f"unfreeze earlier or train longer", key="unfreeze")
    cadence = _estimated_cadence(args, train_images) if train_images is not None else None
    if cadence is not None:
        try:
            join_plan(stages, inject.unfreeze_ramp, cadence)
        except UserError as e:
            raise UserError(str(e), key="unfreeze") from None


def check_unfreeze_match(inject, model, freeze: Any = None) -> None:
    """Every unfreeze stage must select a parameter that ``freeze=`` freezes (not the always-frozen ``.dfl``),
    checked on the built model before the run folder exists, with the trainer's own rule."""
    from yolo_gd.optim.unfreeze import assign_stages, parse_unfreeze

    if inject.observe_only or inject.unfreeze is None:
        return
    layers = freeze if isinstance(freeze, list) else range(freeze) if isinstance(freeze, int) else []
    prefixes = [f"model.{x}." for x in layers]
    frozen = [n for n, _ in model.named_parameters() if any(f in n for f in prefixes) and ".dfl" not in n]
    try:
        assign_stages(frozen, parse_unfreeze(inject.unfreeze))
    except UserError as e:
        raise UserError(str(e), key="unfreeze") from None


def check_groups_match(inject, model, freeze: Any = None) -> None:
    """Every group rule must get a trainable parameter of ``model`` (after Ultralytics' ``freeze`` and its
    always-frozen ``.dfl``); the first matching rule wins, as in :func:`yolo_gd.optim.groups.build_param_groups`."""
    from yolo_gd.optim.groups import parse_rules

    if inject.observe_only or not inject.groups:
        return
    layers = freeze if isinstance(freeze, list) else range(freeze) if isinstance(freeze, int) else []
    frozen = [f"model.{x}." for x in layers] + [".dfl"]
    names = [n for n, _ in model.named_parameters() if not any(f in n for f in frozen)]
    from yolo_gd.optim.layer_lr import resolve_presets

    rules = resolve_presets(parse_rules(inject.groups), model)
    taken: set[str] = set()
    for rule in rules:
        matched = [n for n in names if rule.matches(n)]
        if not matched:
            picks = [names[round(i * (len(names) - 1) / 4)] for i in range(5)] if len(names) > 4 else names
            raise UserError(f"groups: rule '{rule.pattern}' matches no trainable parameter; patterns are globs on "
                            f"full names such as {', '.join(repr(n) for n in picks)}", key="groups")
        if all(n in taken for n in matched):
            raise UserError(f"groups: rule '{rule.pattern}' gets no parameter: an earlier rule takes every one it "
                            f"matches (the first matching rule wins); reorder or narrow the rules", key="groups")
        taken.update(matched)

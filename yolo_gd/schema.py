"""One schema for every yolo_gd value: the types and ranges, the one-line errors, and the help text.

:class:`~yolo_gd.inject.config.InjectConfig` is a pydantic dataclass built from the pieces here, so ``attach``,
``yolo_gd.train``, ``yolo-gd train`` and a sweep spec check every option the same way, when the option is given
and before any model is built or folder created. Each field carries, beside its type and range:

- ``description``: what it means (the ``yolo-gd train help`` line);
- ``rule``: what a valid value is, in words (``'> 0 (a number)'``);
- ``example``: a valid value, for the fix (``lr=0.001``).

A broken rule becomes one :class:`~yolo_gd.errors.UserError` line that names the key, the rule and the fix::

    lr must be > 0 (a number), got abc; e.g. lr=0.001 (base learning rate of the injected optimizer; ...)

:class:`HostRanges` holds the ranges yolo_gd adds to Ultralytics' own ``check_cfg`` for values it lets through
(``imgsz=-1``, ``batch=0``...), checked the same way (see :mod:`yolo_gd.preflight`).
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from yolo_gd.errors import UserError, unknown_name

__all__ = ["SCHEMA_CONFIG", "Count", "Flag", "Fraction", "HostRanges", "NonNegative", "Positive", "checked",
           "field_table", "option", "options_help", "show", "user_error", "validate_host_ranges"]

#: The pydantic config every schema here uses: unknown keys are errors, user objects (classes, callables) allowed.
SCHEMA_CONFIG = ConfigDict(arbitrary_types_allowed=True, extra="forbid", validate_default=False)


def option(default: Any = None, meaning: str = "", rule: str = "", example: Any = None, *, factory: Any = None,
           shown: str | None = None) -> Any:
    """A schema field: ``default`` (or ``factory``), its meaning, its rule in words and a valid example.
    ``shown`` is how help prints the default when its repr would not say it (the ``clip`` sentinel)."""
    extra = {"rule": rule, "example": example, "shown": shown}
    if factory is not None:
        return Field(default_factory=factory, description=meaning, json_schema_extra=extra)
    return Field(default, description=meaning, json_schema_extra=extra)


def _number(v: Any) -> Any:
    """Numbers only: ``True`` is not 1, and text must read as a number (``'abc'`` is refused by the type)."""
    if isinstance(v, bool):
        raise PydanticCustomError("not_number", "not a number")
    return v


def _whole(v: Any) -> Any:
    if isinstance(v, bool) or (isinstance(v, float) and not (math.isfinite(v) and v.is_integer())):
        raise PydanticCustomError("not_whole", "not a whole number")
    return v


Positive = Annotated[float, BeforeValidator(_number), Field(gt=0, allow_inf_nan=False)]
"""A finite number > 0 (learning rates, clip norms)."""
NonNegative = Annotated[float, BeforeValidator(_number), Field(ge=0, allow_inf_nan=False)]
"""A finite number >= 0 (weight decay, a bias-LR warmup start)."""
Fraction = Annotated[float, BeforeValidator(_number), Field(ge=0, lt=1, allow_inf_nan=False)]
"""A number in [0, 1) (momentum, beta1)."""
Count = Annotated[int, BeforeValidator(_whole), Field(ge=0)]
"""A whole number >= 0."""
Flag = Annotated[bool, Field(strict=False)]
"""true / false (also 1 / 0 and 'yes' / 'no', as Ultralytics reads them)."""


# ------------------------------------------------------------------------------------------------- errors


def show(value: Any) -> str:
    """A value as the user wrote it, short: text as is, anything else as its repr."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fields(schema: Any) -> dict:
    return getattr(schema, "__pydantic_fields__", None) or getattr(schema, "model_fields", {})


def user_error(exc: ValidationError, schema: Any, kind: str = "option") -> UserError:
    """The first problem of ``exc`` (raised validating ``schema``) as one line naming the key, the rule and the fix.

    An error raised inside a validator keeps its own message (the registries' did-you-mean, a duration's accepted
    forms), prefixed with the key; a type or range error prints the field's ``rule``, the value and ``example``.
    """
    errors = exc.errors(include_url=False)
    err = errors[0]
    more = f" (and {len(errors) - 1} more problem{'s' * (len(errors) > 2)})" if len(errors) > 1 else ""
    loc = [str(p) for p in err["loc"]]
    key = loc[0] if loc else None
    fields = _fields(schema)
    if err["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
        e = unknown_name(kind, key, fields)
        return UserError(f"{e}{more}", key=key)
    if err["type"] == "value_error":
        inner = err.get("ctx", {}).get("error")
        key = getattr(inner, "key", None) or key
        msg = str(inner) if inner is not None else err["msg"]
        prefix = f"{key}: " if key and not msg.startswith(key) else ""  # the message names the value itself
        return UserError(f"{prefix}{msg}{more}", key=key)
    extra = (fields[key].json_schema_extra or {}) if key in fields else {}
    rule = extra.get("rule") or err["msg"].lower().replace("input should be", "must be")
    example = extra.get("example")
    fix = f"; e.g. {key}={example}" if example is not None else ""
    meaning = f" ({fields[key].description})" if key in fields and fields[key].description else ""
    return UserError(f"{key} must be {rule}, got {show(err['input'])}{fix}{meaning}{more}", key=key)


def checked(cls: type) -> type:
    """Make a pydantic dataclass raise :class:`UserError` (one line) instead of pydantic's multi-line report."""
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except ValidationError as e:
            raise user_error(e, cls) from None

    cls.__init__ = __init__
    return cls


# ------------------------------------------------------------------------------------------------- help


def field_table(schema: Any) -> list[tuple[str, str, str]]:
    """``(key, default as text, meaning)`` for every field of ``schema``, in definition order."""
    rows = []
    for name, f in _fields(schema).items():
        extra = f.json_schema_extra or {}
        if extra.get("shown") is not None:
            default = extra["shown"]
        elif f.default_factory is not None:
            default = repr(f.default_factory())
        else:
            default = repr(f.default)
        rows.append((name, default, f.description or ""))
    return rows


def options_help(schema: Any, indent: str = "  ") -> str:
    """The fields of ``schema`` as aligned lines: key, default, meaning."""
    rows = field_table(schema)
    kw = max(len(k) for k, _, _ in rows)
    dw = min(max(len(d) for _, d, _ in rows), 12)
    return "\n".join(f"{indent}{k:<{kw}}  {d:<{dw}}  {m}" for k, d, m in rows)


# ------------------------------------------------------------------------------------------------- host ranges


def _size(v: Any) -> Any:
    """``imgsz``: a whole number > 0, or a list of one or two."""
    items = v if isinstance(v, (list, tuple)) else [v]
    if not 1 <= len(items) <= 2 or not all(_pixels(x) for x in items):
        raise PydanticCustomError("bad_size", "bad size")
    return v


def _pixels(x: Any) -> bool:
    if isinstance(x, str) and x.strip().isdigit():
        x = int(x)
    return not isinstance(x, bool) and isinstance(x, (int, float)) and x > 0 and float(x).is_integer()


def _batch(v: Any) -> Any:
    """``batch``: -1 (AutoBatch), a whole number >= 1, or a fraction in (0, 1) of GPU memory for AutoBatch."""
    ok = (not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
          and (v == -1 or (v >= 1 and float(v).is_integer()) or 0 < v < 1))
    if not ok:
        raise PydanticCustomError("bad_batch", "bad batch")
    return v


class HostRanges(BaseModel):
    """Ranges for Ultralytics train keys that its ``check_cfg`` lets through (it checks types, fractions in
    [0, 1] and a few minimums); a key not listed here is Ultralytics' alone."""

    model_config = ConfigDict(extra="ignore")

    imgsz: Annotated[Any, BeforeValidator(_size)] = option(
        640, "train image size", "a whole number > 0 (pixels), or [height, width]", 640)
    batch: Annotated[Any, BeforeValidator(_batch)] = option(
        16, "images per batch", "a whole number >= 1, -1 (AutoBatch) or a GPU-memory fraction in (0, 1)", 16)
    workers: Count = option(8, "dataloader worker processes", "a whole number >= 0", 0)
    lr0: Positive = option(0.01, "Ultralytics' initial learning rate", "> 0 (a number)", 0.01)
    lrf: Positive = option(0.01, "final LR as a fraction of lr0", "> 0 (a number)", 0.01)
    momentum: Fraction = option(0.937, "Ultralytics' SGD momentum / Adam beta1", "a number in [0, 1)", 0.937)
    warmup_momentum: Fraction = option(0.8, "momentum at the start of warmup", "a number in [0, 1)", 0.8)
    warmup_epochs: NonNegative = option(3.0, "warmup length in epochs", ">= 0 (a number)", 3)
    time: Annotated[float | None, BeforeValidator(_number), Field(gt=0, allow_inf_nan=False)] = option(
        None, "wall-clock budget in hours", "> 0 (hours)", 0.5)
    save_period: Annotated[int, BeforeValidator(_whole), Field(ge=-1)] = option(
        -1, "save a checkpoint every N epochs", "a whole number >= 1, or -1 (off)", -1)
    close_mosaic: Count = option(10, "epochs at the end without mosaic", "a whole number >= 0", 10)


def validate_host_ranges(args: dict) -> None:
    """Check the Ultralytics ``args`` listed in :class:`HostRanges` (others are ignored); :class:`UserError`."""
    given = {k: v for k, v in args.items() if k in HostRanges.model_fields and v is not None}
    try:
        HostRanges.model_validate(given)
    except ValidationError as e:
        raise user_error(e, HostRanges, "argument") from None

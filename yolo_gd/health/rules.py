"""The health rules: pure functions of a step table (and epochs.csv) returning :class:`Finding` s.

Each rule takes the step table of the steps training kept (``read_steps(run, latest_only=True)``), returns a list
(empty: nothing to report) and never reads files. Columns a rule needs but the table lacks (``update_ratio/*`` exist
only at ``telemetry=full``, ``noise_scale`` only where epochs.csv has it) make it silent, not wrong.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import yolo_gd.health.findings as T
from yolo_gd.health.findings import Finding

__all__ = ["RULES", "run_rules", "spike_steps", "warmup_steps"]


def _num(x: float) -> str:
    return f"{x:.3g}"


def _steps(df: pd.DataFrame, mask) -> tuple[int, ...]:
    return tuple(int(s) for s in df.loc[mask, "step"])


def _few(steps: tuple[int, ...], n: int = 8) -> str:
    head = ", ".join(str(s) for s in steps[:n])
    return head + (f" ... ({len(steps)} in all)" if len(steps) > n else "")


def spike_steps(df: pd.DataFrame) -> tuple[int, ...]:
    """Steps whose ``loss_sum`` exceeds :data:`SPIKE_FACTOR` x the median of the :data:`SPIKE_WINDOW` steps before."""
    if "loss_sum" not in df or df.empty:
        return ()
    loss = df["loss_sum"].astype("float64").where(lambda s: np.isfinite(s))
    ref = loss.shift(1).rolling(T.SPIKE_WINDOW, min_periods=T.SPIKE_MIN_HISTORY).median()
    return _steps(df, (loss > T.SPIKE_FACTOR * ref).to_numpy())


def warmup_steps(df: pd.DataFrame) -> int:
    """Steps of warmup seen in the LR columns: the latest step at which some group's LR first reaches its maximum
    (0 when every LR starts at its maximum; Ultralytics' bias LR falls during warmup, so its maximum is at 0)."""
    cols = [c for c in df.columns if c.startswith("lr/")]
    ends = [int(df["step"].iloc[int(np.nanargmax(df[c].to_numpy()))]) for c in cols if df[c].notna().any()]
    return max(ends, default=0) - int(df["step"].iloc[0]) if ends else 0


def clip_dominated(df: pd.DataFrame, epochs: pd.DataFrame) -> list[Finding]:
    if "clipped" not in df or "clip_coef" not in df or df.empty:
        return []
    finite = df[np.isfinite(df["grad_norm"].astype("float64"))] if "grad_norm" in df else df
    if finite.empty:
        return []
    rate = float(finite["clipped"].mean())
    coef = finite.loc[finite["clipped"], "clip_coef"].astype("float64")
    if rate < T.CLIP_RATE_DOMINATED or coef.empty or float(coef.median()) > T.CLIP_COEF_DOMINATED:
        return []
    norm = finite["grad_norm"].astype("float64")
    clip = float(finite["clip"].dropna().iloc[-1]) if "clip" in finite and finite["clip"].notna().any() else None
    evidence = (f"{int(finite['clipped'].sum())} of {len(finite)} steps clipped (rate {rate:.2f}); clip coefficient "
                f"median {_num(coef.median())} (range {_num(coef.min())}-{_num(coef.max())}); pre-clip grad_norm "
                f"median {_num(norm.median())} (range {_num(norm.min())}-{_num(norm.max())})"
                + (f" against clip {_num(clip)}" if clip is not None else ""))
    opt = str(finite["optimizer"].iloc[-1]) if "optimizer" in finite else ""
    if opt.lower().startswith(T.SCALE_INVARIANT_PREFIXES):
        title = (f"the gradient clip rescales every step: {opt} divides the scale out of its step, but each step's "
                 f"gradient enters its moment averages weighted by 1 / its norm (large-gradient batches count less)")
    else:
        title = ("the gradient clip sets the step size: training is normalised-gradient descent at step LR x clip, "
                 "whatever the gradient's size")
    return [Finding("clip-dominated", title, evidence + (f"; optimizer {opt}" if opt else ""),
                    f"raise the clip to about the median pre-clip norm (clip={_num(norm.median())}) or turn it off "
                    "(clip=none) and retune the LR (yolo-gd lrfind), or keep the clip and treat LR x clip as "
                    "the step size when comparing optimizers")]


def _longest_run(flags: np.ndarray) -> tuple[int, int]:
    """(length, start index) of the longest run of True in ``flags``."""
    best, start, cur = 0, 0, 0
    for i, f in enumerate(flags):
        cur = cur + 1 if f else 0
        if cur > best:
            best, start = cur, i - cur + 1
    return best, start


def _early_end(df: pd.DataFrame) -> int:
    """Last step of the early phase (warmup x :data:`EARLY_WARMUP_MULTIPLE`, at least :data:`EARLY_FRACTION`)."""
    first = int(df["step"].iloc[0])
    span = max(T.EARLY_WARMUP_MULTIPLE * warmup_steps(df), T.EARLY_FRACTION * len(df))
    return first + int(span)


def lr_too_high(df: pd.DataFrame, epochs: pd.DataFrame) -> list[Finding]:
    if df.empty:
        return []
    parts = []
    steps: tuple[int, ...] = ()
    if "nonfinite" in df and df["nonfinite"].any():
        bad = _steps(df, df["nonfinite"].to_numpy())
        parts.append(f"{len(bad)} non-finite steps (steps {_few(bad)})")
        steps += bad
    if "skipped" in df:
        run, start = _longest_run(df["skipped"].to_numpy())
        if run >= T.SKIP_RUN_TOO_LONG:
            first = int(df["step"].iloc[start])
            parts.append(f"{run} AMP-skipped steps in a row (steps {first}-{first + run - 1})")
            steps += tuple(range(first, first + run))
    late = tuple(s for s in spike_steps(df) if s > _early_end(df))
    if len(late) >= T.SPIKES_TOO_MANY:
        parts.append(f"{len(late)} loss spikes above {T.SPIKE_FACTOR:g}x the running median after the warmup "
                     f"(steps {_few(late)})")
        steps += late
    if not parts:
        return []
    return [Finding("lr-too-high", "the LR is too high: the loss spikes or the gradients overflow", "; ".join(parts),
                    "lower the LR 3-10x (or run yolo-gd lrfind for a suggestion); keep the clip on", steps)]


def _flat_loss(df: pd.DataFrame) -> tuple[bool, str]:
    if "loss_sum" not in df or len(df) < 2:
        return False, ""
    loss = df["loss_sum"].astype("float64")
    n = max(1, int(T.FLAT_WINDOW_FRACTION * len(df)))
    first, last = float(loss.iloc[:n].mean()), float(loss.iloc[-n:].mean())
    drop = (first - last) / abs(first) if first else 0.0
    return drop < T.FLAT_LOSS_DECREASE, f"loss_sum {_num(first)} -> {_num(last)} ({drop:+.1%} decrease)"


def lr_too_low(df: pd.DataFrame, epochs: pd.DataFrame) -> list[Finding]:
    cols = [c for c in df.columns if c.startswith("update_ratio/")]
    if not cols:
        return []
    medians = {c.split("/", 1)[1]: float(df[c].astype("float64").median()) for c in cols}
    low = {g: v for g, v in medians.items() if np.isfinite(v) and v < T.UPDATE_RATIO_LOW}
    flat, loss_text = _flat_loss(df)
    if len(low) <= T.LOW_RATIO_SHARE * len(medians) or not flat:
        return []
    ratios = ", ".join(f"{g} {_num(v)}" for g, v in medians.items())
    return [Finding("lr-too-low", "the LR is too low: the updates are tiny next to the weights and the loss is flat",
                    f"median update/param ratio per group: {ratios} ({len(low)} of {len(medians)} below "
                    f"{T.UPDATE_RATIO_LOW:g}); {loss_text}",
                    "raise the LR 3-10x (or run yolo-gd lrfind for a suggestion)")]


def dead_gradients(df: pd.DataFrame, epochs: pd.DataFrame) -> list[Finding]:
    cols = [c for c in df.columns if c.startswith(("grad_norm/", "layer_grad_norm/"))]
    if not cols:
        return []
    v = df[cols].astype("float64").to_numpy()
    recorded = np.isfinite(v).any(axis=1)  # rows where some group's norm is finite: a NaN there is that group's
    zero = [c for j, c in enumerate(cols) if np.isfinite(v[:, j]).any()
            and (np.abs(v[np.isfinite(v[:, j]), j]) <= T.ZERO_GRAD).all()]
    nonfinite = [c for j, c in enumerate(cols) if np.isinf(v[:, j]).any() or np.isnan(v[recorded, j]).any()]
    out = []
    if zero:
        out.append(Finding("zero-gradients", "groups or layers get no gradient: frozen by mistake or dead",
                           f"gradient norm 0 at every step for: {', '.join(zero)}",
                           "check freeze=, requires_grad and the groups rules (a group with LR 0 or no params); "
                           "a dead layer (e.g. ReLU units stuck at 0) needs a lower LR or a re-init"))
    if nonfinite:
        out.append(Finding("nonfinite-gradients", "groups or layers have non-finite gradients",
                           f"inf or NaN gradient norms in: {', '.join(nonfinite)}",
                           "lower the LR, turn AMP off (amp=False) to see whether fp16 overflows, check the data "
                           "(empty or broken labels)"))
    return out


def amp_collapse(df: pd.DataFrame, epochs: pd.DataFrame) -> list[Finding]:
    if "amp_scale" not in df or df.empty:
        return []
    scale = df["amp_scale"].astype("float64").dropna()
    if scale.empty or (scale == 1.0).all():  # AMP off
        return []
    start, end, low = float(scale.iloc[0]), float(scale.iloc[-1]), float(scale.min())
    if end >= T.AMP_SCALE_FLOOR and low * T.AMP_COLLAPSE_FACTOR > start:
        return []
    at = int(df.loc[scale.idxmin(), "step"])
    return [Finding("amp-scale-collapse", "the AMP loss scale collapsed: gradients keep overflowing in fp16",
                    f"amp_scale {_num(start)} at the start, {_num(low)} at its lowest (step {at}), {_num(end)} at "
                    f"the end", "lower the LR, or train in fp32 (amp=False) to find the overflowing layer", (at,))]


def warmup(df: pd.DataFrame, epochs: pd.DataFrame) -> list[Finding]:
    if df.empty:
        return []
    wu = warmup_steps(df)
    out = []
    early = tuple(s for s in spike_steps(df) if s <= _early_end(df))
    if len(early) >= T.EARLY_SPIKES_TOO_MANY:
        out.append(Finding("warmup-too-short", "the loss spikes early: the warmup does not protect the start",
                           f"{len(early)} loss spikes in the first {_early_end(df) - int(df['step'].iloc[0]) + 1} "
                           f"steps (steps {_few(early)}); warmup seen in the LR: {wu} steps",
                           "lengthen the warmup (e.g. warmup=2x its length) or lower the LR", early))
    if wu > T.WARMUP_TOO_LONG_FRACTION * len(df):
        out.append(Finding("warmup-too-long", "the warmup takes a large part of the run",
                           f"LR rises for {wu} of {len(df)} steps ({wu / len(df):.0%})",
                           f"shorten the warmup (warmup={max(1, len(df) // 10)} with an injected optimizer, or a smaller "
                           "warmup_epochs=) or train "
                           "longer: Ultralytics warms up for at least 100 steps whatever the run length"))
    return out


def noise_scale(df: pd.DataFrame, epochs: pd.DataFrame) -> list[Finding]:
    if "noise_scale" not in epochs or df.empty or "images_seen" not in df:
        return []
    ns = epochs["noise_scale"].astype("float64")
    ns = ns[np.isfinite(ns) & (ns > 0)]
    if ns.empty:
        return []
    # images per optimizer step (batch x accumulation): what the noise scale is compared to
    seen = df["images_seen"].astype("float64").diff().dropna()
    batch = float(seen.median()) if len(seen) else float(df["images_seen"].iloc[0]) / (float(df["batch"].iloc[0]) + 1)
    b = float(ns.iloc[-1])
    if 1.0 / T.NOISE_SCALE_FACTOR <= batch / b <= T.NOISE_SCALE_FACTOR:
        return []
    side = "above" if batch > b else "below"
    return [Finding("batch-vs-noise-scale", f"the batch size is far {side} the gradient noise scale",
                    f"batch {batch:.0f} images per step; noise scale {_num(b)} in the last epoch "
                    f"(per epoch: {', '.join(_num(v) for v in ns)})",
                    f"move the batch towards {_num(b)} (batch= or nbs= for accumulation); above it, steps are "
                    "wasted on averaging; below it, the LR must drop with the batch")]


RULES = (clip_dominated, lr_too_high, lr_too_low, dead_gradients, amp_collapse, warmup, noise_scale)


def run_rules(steps: pd.DataFrame, epochs: pd.DataFrame | None = None) -> list[Finding]:
    """Every rule's findings on a step table (rows training kept, ordered by step) and epochs.csv."""
    epochs = pd.DataFrame() if epochs is None else epochs
    steps = steps.reset_index(drop=True)
    return [f for rule in RULES for f in rule(steps, epochs)]

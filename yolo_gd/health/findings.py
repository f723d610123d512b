"""What a health rule reports, and the thresholds every rule uses (each with the reason for its value)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Finding"]

#: Clip rate at or above which a run counts as clipped "almost always" (a few unclipped steps do not change it).
CLIP_RATE_DOMINATED = 0.9
#: Median clip coefficient at or below which the clip, not the gradient, sets the step size (a 10x shrink).
CLIP_COEF_DOMINATED = 0.1
#: Optimizer classes whose step does not scale with the gradient (Adam family, RMSprop, Adagrad, Lion's sign): for
#: them a clip does not set the step size but re-weights steps; matched on the step table's ``optimizer`` name.
SCALE_INVARIANT_PREFIXES = ("adam", "nadam", "radam", "rmsprop", "adagrad", "lion")
#: A loss above this multiple of the median of the preceding steps is a spike (noise is well under 2x).
SPIKE_FACTOR = 2.0
#: Steps of history the spike median is taken over (long enough to be robust, short enough to follow the decay).
SPIKE_WINDOW = 20
#: History needed before spikes are looked for (a median of fewer steps is noise).
SPIKE_MIN_HISTORY = 5
#: Spikes after the early phase at or above this count point at an LR that is too high (one can be a bad batch).
SPIKES_TOO_MANY = 3
#: Early phase: this multiple of the warmup length, or EARLY_FRACTION of the run if longer (where warmup matters).
EARLY_WARMUP_MULTIPLE = 2.0
EARLY_FRACTION = 0.1
#: Early spikes at or above this count mean the warmup did not protect the start of training.
EARLY_SPIKES_TOO_MANY = 2
#: AMP steps skipped in a row at or above this: not an occasional overflow but a diverging run (GradScaler skips
#: one step and halves its scale; three in a row mean the halving did not help).
SKIP_RUN_TOO_LONG = 3
#: update_ratio below this for a group is "far below ~1e-3" (Karpathy's rule of thumb: ~1e-3 per step).
UPDATE_RATIO_LOW = 1e-4
#: Fraction of groups (or layers) with a low ratio that makes "most" (more than half).
LOW_RATIO_SHARE = 0.5
#: Relative loss decrease (first vs last tenth of the run) below which the loss is flat.
FLAT_LOSS_DECREASE = 0.05
#: Tenth of the run compared for flatness (a tenth averages out step noise).
FLAT_WINDOW_FRACTION = 0.1
#: A group or layer whose gradient norm is at most this over every finite step has zero gradients.
ZERO_GRAD = 0.0
#: AMP scale falling below its start by this factor (2**10: ten unrecovered halvings) is a collapse...
AMP_COLLAPSE_FACTOR = 2.0**10
#: ...and any final scale below 1 is one as well (gradients overflow even unscaled: fp16 cannot hold them).
AMP_SCALE_FLOOR = 1.0
#: Warmup longer than this fraction of the run takes time away from training at the target LR.
WARMUP_TOO_LONG_FRACTION = 0.3
#: Batch size more than this factor away from the gradient noise scale (McCandlish et al. 2018: the efficient
#: batch is of the order of B_simple; a 10x gap wastes compute above it, or steps below it).
NOISE_SCALE_FACTOR = 10.0


@dataclass(frozen=True)
class Finding:
    """One diagnosis: a stable ``code``, a one-line ``title``, the ``evidence`` (steps, values) and a change to try."""

    code: str
    title: str
    evidence: str
    suggestion: str
    steps: tuple[int, ...] = ()

    def text(self) -> str:
        return f"[{self.code}] {self.title}\n  evidence: {self.evidence}\n  try: {self.suggestion}"

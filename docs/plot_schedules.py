"""Draw every registered schedule (LR multiplier vs optimizer step) into docs/schedules.png for the README.

    python docs/plot_schedules.py

Uses a 10-epoch run of 20 optimizer steps per epoch and each schedule's defaults (plus its registry example for
required options), with and without a 1-epoch linear warmup where that helps show the composition.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from yolo_gd.optim.plan import HyperPlan, WarmupPlan
from yolo_gd.optim.progress import Cadence, Progress
from yolo_gd.optim.schedule_registry import SCHEDULES, get_schedule


def main() -> Path:
    cadence = Cadence(batches_per_epoch=20, epochs=10, accumulate=1)
    names = list(SCHEDULES)
    cols = 4
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(3.2 * cols, 2.3 * rows), dpi=100)
    for i, name in enumerate(names):
        info = SCHEDULES[name]
        schedule = get_schedule(name, **dict(info.example)).bind(cadence)
        plain = HyperPlan(schedule)
        warmed = HyperPlan(schedule, WarmupPlan(cadence.steps_before_epoch(1), "step"))
        steps = range(cadence.total_steps)
        progress = [Progress(k, cadence.total_steps, b, 20, 10) for k, b in zip(steps, cadence.step_batches)]
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.plot(steps, [warmed.lr(p, 1.0, "weight") for p in progress], color="C1", lw=1, ls="--",
                label="with warmup='1ep'")
        ax.plot(steps, [plain.lr(p, 1.0, "weight") for p in progress], color="C0", lw=1.6, label="schedule")
        opts = ", ".join(f"{k}={v!r}" for k, v in info.example.items())
        ax.set_title(f"{name}({opts})" if opts else name, fontsize=9)
        ax.set_ylim(-0.05, 1.1)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=7, loc="lower left")
    fig.supxlabel("optimizer step (10 epochs x 20 steps)", fontsize=9)
    fig.supylabel("LR multiplier", fontsize=9)
    fig.tight_layout()
    out = Path(__file__).with_name("schedules.png")
    fig.savefig(out)
    return out


if __name__ == "__main__":
    print(main())

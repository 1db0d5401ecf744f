"""Learning curves of ``glimpse train ram`` (and ``glimpse train ppo``) runs as a PNG.

Usage::

    python benchmarks/plot_learning_curves.py RUN_DIR [RUN_DIR ...] --out curves.png \
        [--labels L ...] [--paper ERROR ...] [--title T]

Plots, against training images seen, the validation accuracy (deterministic, one rollout
per image) and the training accuracy (moving average over batches, sampled locations),
read from each run's TensorBoard events (``tb/``), its final test error (``eval.json``) and,
with ``--paper``, the paper's error for each run (dashed, in the run's colour). A run
trained on ``train_full`` validates on digits it trains on: its curve is marked
"val (trained on)" and drawn dash-dotted.

A ``glimpse train ppo`` run (``meta.json`` agent ``ppo`` / ``recurrent_ppo``) is plotted
against env steps from its ``metrics.csv``: the periodic test-subset evaluation
(``eval_accuracy``), the training success rate, and the final test error (``eval.json``).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from train.common import validation_held_out as train_validation_held_out


def scalars(run: Path, tag: str) -> tuple[list[int], list[float]]:
    events = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags()["scalars"]:
        return [], []
    points = events.Scalars(tag)
    return [p.step for p in points], [p.value for p in points]


def sb3_curves(run: Path) -> tuple[list[int], list[float], list[int], list[float]]:
    """``(eval steps, eval accuracy, train steps, train success rate)`` of a PPO run."""
    ev_x, ev_y, tr_x, tr_y = [], [], [], []
    with (run / "metrics.csv").open() as f:
        for row in csv.DictReader(f):
            step = int(float(row["step"]))
            if row.get("eval_accuracy"):
                ev_x.append(step)
                ev_y.append(float(row["eval_accuracy"]))
            if row.get("success_rate"):
                tr_x.append(step)
                tr_y.append(float(row["success_rate"]))
    return ev_x, ev_y, tr_x, tr_y


def validation_held_out(run: Path) -> bool:
    """Whether a RAM run's validation digits were outside its training split (not so
    for ``--split train_full``, whose validation curve then shows digits trained on)."""
    config = run / "config.json"
    split = json.loads(config.read_text()).get("split", "train") if config.is_file() else "train"
    return train_validation_held_out(split)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--labels", nargs="*", default=None)
    parser.add_argument("--out", type=Path, default=Path("learning_curves.png"))
    parser.add_argument("--paper", nargs="*", type=float, default=None, help="%% per run")
    parser.add_argument("--title", default=None)
    args = parser.parse_args()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    errors: list[float] = []
    agents = [json.loads((r / "meta.json").read_text()).get("agent", "ram") for r in args.runs]
    for i, run in enumerate(args.runs):
        label = args.labels[i] if args.labels else run.name
        sb3 = agents[i] in ("ppo", "recurrent_ppo")
        if sb3:
            x, y, x_train, y_train = sb3_curves(run)
        else:
            x, y = scalars(run, "val_accuracy")
            x_train, y_train = scalars(run, "train_accuracy_ema")
        val = [100 * (1 - a) for a in y]
        held_out = sb3 or validation_held_out(run)
        tag = "test subset" if sb3 else "val" if held_out else "val (trained on)"
        style = {"marker": "o", "ms": 3} if held_out else {"marker": "x", "ms": 4, "ls": "-."}
        line = ax.plot([v / 1e6 for v in x], val, label=f"{label}: {tag}", **style)
        color = line[0].get_color()
        train = [100 * (1 - a) for a in y_train]
        ax.plot([v / 1e6 for v in x_train], train, color=color, alpha=0.35, label=f"{label}: train")
        errors += val + train
        result = run / "eval.json"
        if result.is_file():
            evaluation = json.loads(result.read_text())
            test = 100 * evaluation["error_rate" if sb3 else "test_error_rate"]
            ax.axhline(test, color=color, ls=":", lw=1, label=f"{label}: final test {test:.2f}%")
            errors.append(test)
        if args.paper:
            ax.axhline(args.paper[i], color=color, ls="--", lw=1, label=f"paper: {args.paper[i]}%")
            errors.append(args.paper[i])
    if all(a in ("ppo", "recurrent_ppo") for a in agents):
        ax.set_xlabel("env steps (millions)")
    elif any(a in ("ppo", "recurrent_ppo") for a in agents):
        ax.set_xlabel("training images (RAM) / env steps (PPO) (millions)")
    else:
        ax.set_xlabel("training images (millions)")
    ax.set_ylabel("error % (log scale)")
    ax.set_yscale("log")
    positive = [e for e in errors if e > 0]
    ax.set_ylim(0.5 * min(positive, default=0.5), min(100.0, 2.0 * max(positive, default=20)))
    ax.grid(True, which="both", alpha=0.3)
    if len(ax.get_legend_handles_labels()[1]) > 8:  # beside the axes, not over the curves
        fig.set_size_inches(11, 4.5)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=7)
    envs = sorted({json.loads((r / "meta.json").read_text())["env_id"] for r in args.runs})
    ax.set_title(args.title or f"RAM learning curves: {', '.join(envs)}")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

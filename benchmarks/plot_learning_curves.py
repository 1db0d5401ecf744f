"""Learning curves of ``glimpse train ram`` runs as a PNG.

Usage::

    python benchmarks/plot_learning_curves.py RUN_DIR [RUN_DIR ...] --out curves.png \
        [--labels L ...] [--paper ERROR ...] [--title T]

Plots, against training images seen, the validation accuracy (deterministic, one rollout
per image) and the training accuracy (moving average over batches, sampled locations),
read from each run's TensorBoard events (``tb/``), its final test error (``eval.json``) and,
with ``--paper``, the paper's error for each run (dashed, in the run's colour).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def scalars(run: Path, tag: str) -> tuple[list[int], list[float]]:
    events = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags()["scalars"]:
        return [], []
    points = events.Scalars(tag)
    return [p.step for p in points], [p.value for p in points]


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
    for i, run in enumerate(args.runs):
        label = args.labels[i] if args.labels else run.name
        x, y = scalars(run, "val_accuracy")
        val = [100 * (1 - a) for a in y]
        line = ax.plot([v / 1e6 for v in x], val, marker="o", ms=3, label=f"{label}: val")
        color = line[0].get_color()
        x, y = scalars(run, "train_accuracy_ema")
        train = [100 * (1 - a) for a in y]
        ax.plot([v / 1e6 for v in x], train, color=color, alpha=0.35, label=f"{label}: train")
        errors += val + train
        result = run / "eval.json"
        if result.is_file():
            test = 100 * json.loads(result.read_text())["test_error_rate"]
            ax.axhline(test, color=color, ls=":", lw=1, label=f"{label}: final test {test:.2f}%")
            errors.append(test)
        if args.paper:
            ax.axhline(args.paper[i], color=color, ls="--", lw=1, label=f"paper: {args.paper[i]}%")
            errors.append(args.paper[i])
    ax.set_xlabel("training images (millions)")
    ax.set_ylabel("error % (log scale)")
    ax.set_yscale("log")
    positive = [e for e in errors if e > 0]
    ax.set_ylim(0.5 * min(positive, default=0.5), min(100.0, 2.0 * max(positive, default=20)))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    envs = sorted({json.loads((r / "meta.json").read_text())["env_id"] for r in args.runs})
    ax.set_title(args.title or f"RAM learning curves: {', '.join(envs)}")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

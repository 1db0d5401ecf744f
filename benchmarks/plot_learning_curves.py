"""Learning curves of ``glimpse train ram`` runs as a PNG.

Usage::

    python benchmarks/plot_learning_curves.py RUN_DIR [RUN_DIR ...] --out curves.png

Plots, against training images seen, the validation accuracy (deterministic, one rollout
per image) and the training accuracy (moving average over batches, sampled locations),
read from each run's TensorBoard events (``tb/``).
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
    args = parser.parse_args()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, run in enumerate(args.runs):
        label = args.labels[i] if args.labels else run.name
        x, y = scalars(run, "val_accuracy")
        line = ax.plot(
            [v / 1e6 for v in x],
            [100 * (1 - a) for a in y],
            marker="o",
            ms=3,
            label=f"{label}: val",
        )
        x, y = scalars(run, "train_accuracy_ema")
        ax.plot(
            [v / 1e6 for v in x],
            [100 * (1 - a) for a in y],
            color=line[0].get_color(),
            alpha=0.35,
            label=f"{label}: train (sampled)",
        )
        result = run / "eval.json"
        if result.is_file():
            test = json.loads(result.read_text())["test_error_rate"]
            ax.axhline(
                100 * test,
                color=line[0].get_color(),
                ls=":",
                lw=1,
                label=f"{label}: final test {100 * test:.2f}%",
            )
    ax.axhline(1.07, color="k", ls="--", lw=1, label="paper, 7 glimpses: 1.07%")
    ax.set_xlabel("training images (millions); 7 glimpses each")
    ax.set_ylabel("error %")
    ax.set_yscale("log")
    ax.set_ylim(0.5, 20)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("RAM on GlimpseMNIST-v0 (28x28, 7 glimpses of 8x8)")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

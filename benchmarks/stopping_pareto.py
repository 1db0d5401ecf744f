"""Learned stopping: test error against mean glimpses per image (the Pareto front).

For every run folder of a stopping RAM (``glimpse train ram --stop action --glimpse-cost C``)
this measures, on all test images through the benchmark's protocol
(:func:`glimpse_env.bench.evaluate`, deterministic actions):

* the run's own point: its error and mean glimpses when it decides when to stop, the
  glimpses used per class, and the histogram of episode lengths;
* the same model forced to take every glimpse (its stop score overridden to "go"): the
  error after ``k = 1..T`` glimpses (the anytime curve), i.e. the fixed-length points of the
  very same network, against which the stop policy's gain is measured.

Next to them go the fixed-length RAM rows recorded in ``docs/results.md`` (trained for ``k``
glimpses each; pass them with ``--fixed``) and the paper's Table 1/2 numbers. It writes a
JSON result and a plot (error against mean glimpses)::

    python benchmarks/stopping_pareto.py runs/stop-c0.01 runs/stop-c0.005 \\
        --fixed 2:8.50,4:1.91,6:1.12,7:0.89 --paper 2:3.79,4:1.54,6:1.12,7:1.07 \\
        --out benchmarks/results/stopping_pareto_mnist.json --plot docs/stopping_pareto_mnist.png
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

#: The training settings recorded with each point (from the run's ``config.json``).
TRAINING_KEYS = (
    "seed",
    "epochs",
    "lr",
    "init_from",
    "stop_objective",
    "stop_input",
    "halting_share",
    "stop_lr_scale",
    "location_reward",
)


class NeverStop:
    """A stopping policy with its stop score overridden to "go": it takes every glimpse."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.n_parameters = getattr(policy, "n_parameters", None)

    def initial_state(self, num_envs: int) -> Any:
        return self.policy.initial_state(num_envs)

    def act(self, obs: Any, state: Any, deterministic: bool) -> tuple[Any, Any]:
        actions, state = self.policy.act(obs, state, deterministic)
        actions = np.array(actions.detach().cpu() if hasattr(actions, "detach") else actions)
        actions[:, -1] = -1.0
        return actions, state


def parse_points(text: str | None) -> list[tuple[int, float]]:
    """``"2:8.50,4:1.91"`` -> ``[(2, 8.5), (4, 1.91)]`` (glimpses, error %)."""
    if not text:
        return []
    points = []
    for item in text.split(","):
        glimpses, _, error = item.partition(":")
        points.append((int(glimpses), float(error)))
    return points


def measure(run_dir: str, n_images: int | None, num_envs: int) -> dict[str, Any]:
    """The stop point and the forced-length curve of one stopping run."""
    from agents.policy import load_policy
    from glimpse_env.bench import evaluate

    loaded = load_policy(run_dir)
    policy = loaded.policy
    config_file = Path(run_dir) / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    kwargs = dict(policy.env_kwargs)
    common = {"n_images": n_images, "num_envs": num_envs, "env_kwargs": kwargs}
    own = evaluate(policy, policy.env_id, name=f"{run_dir} (stops)", **common)
    forced = evaluate(NeverStop(policy), policy.env_id, name=f"{run_dir} (never stops)", **common)
    return {
        "run_dir": str(run_dir),
        "env_id": policy.env_id,
        "env_kwargs": {k: v for k, v in kwargs.items() if k != "data_dir"},
        "glimpse_cost": kwargs.get("glimpse_cost", 0.0),
        "series": f"{config.get('stop_objective', 'reinforce')} objective",
        "training": {key: config.get(key) for key in TRAINING_KEYS},
        "error_percent": 100.0 * own.error_rate,
        "error_interval_percent": [
            100.0 * (1.0 - own.accuracy_interval[1]),
            100.0 * (1.0 - own.accuracy_interval[0]),
        ],
        "mean_glimpses": own.mean_glimpses,
        "glimpses_by_class": own.glimpses_by_class,
        "glimpse_counts": own.rollouts[0].glimpse_counts,
        "forced_error_percent": [100.0 * (1.0 - a) for a in forced.anytime_accuracy],
        "n_images": own.n_images,
    }


def plot(result: dict[str, Any], path: Path) -> None:
    """Error (%) against mean glimpses: the stopping runs, each one's forced curve, the
    fixed-length rows and the paper's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for row in result["runs"]:
        forced = row["forced_error_percent"]
        ax.plot(range(1, len(forced) + 1), forced, ":", color="0.6", lw=1)
    if result["runs"]:
        ax.plot([], [], ":", color="0.6", label="same nets, forced to k glimpses")
    stops = sorted(result["runs"], key=lambda r: r["mean_glimpses"])
    for k, series in enumerate(sorted({r["series"] for r in stops})):
        points = [r for r in stops if r["series"] == series]
        ax.plot(
            [r["mean_glimpses"] for r in points],
            [r["error_percent"] for r in points],
            "o",
            color=f"C{3 + k}",
            label=f"learned stopping, {series} (one point per run)",
        )
    for r in stops if len(stops) <= 4 else []:  # labels of more points would overlap
        ax.annotate(
            f"c={r['glimpse_cost']:g}",
            (r["mean_glimpses"], r["error_percent"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    for key, style, label in (
        ("fixed", "s--", "fixed-length RAM (this project)"),
        ("paper", "^--", "fixed-length RAM (paper)"),
    ):
        points = result.get(key) or []
        if points:
            ax.plot(*zip(*points), style, label=label, alpha=0.8)
    ax.set_xlabel("glimpses per image (mean)")
    ax.set_ylabel("test error (%)")
    ax.set_yscale("log")
    best = min([r["error_percent"] for r in stops] + [e for _, e in result.get("fixed") or []])
    ax.set_ylim(0.7 * best, 25.0)  # the 1-glimpse errors (about 60%) would squash the rest
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(result["env_id"])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write ``data`` atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders of stopping RAM runs")
    parser.add_argument("--fixed", help="fixed-length rows as GLIMPSES:ERROR,... (percent)")
    parser.add_argument("--paper", help="the paper's rows as GLIMPSES:ERROR,... (percent)")
    parser.add_argument("--n-images", type=int, default=None, help="first N test images")
    parser.add_argument("--num-envs", type=int, default=500)
    parser.add_argument("--out", type=Path, required=True, help="JSON result")
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the front")
    args = parser.parse_args(argv)
    from train.machine_info import cpu_info

    runs = [measure(run, args.n_images, args.num_envs) for run in args.runs]
    env_ids = {row["env_id"] for row in runs}
    result = {
        "env_id": ", ".join(sorted(env_ids)),
        "runs": runs,
        "fixed": parse_points(args.fixed),
        "paper": parse_points(args.paper),
        "cpu": cpu_info(),
        "command": "python benchmarks/stopping_pareto.py " + " ".join(argv or sys.argv[1:]),
    }
    write_json(result, args.out)
    if args.plot:
        plot(result, args.plot)
    for row in sorted(runs, key=lambda r: r["mean_glimpses"]):
        print(
            f"{row['run_dir']}: cost {row['glimpse_cost']:g}: error {row['error_percent']:.2f}% "
            f"with {row['mean_glimpses']:.2f} glimpses per image; forced to k: "
            + ", ".join(f"{e:.2f}" for e in row["forced_error_percent"])
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What ``glimpse compare`` writes: the summary over seeds, its Markdown table and the plot.

``results`` below is the comparison's nested dict ``agent -> reward -> seed -> run``, where a
run (see :func:`train.compare.run_one`) holds ``env_steps``, ``final_test_error`` (a rate in
[0, 1]), ``wall_clock_s``, ``parameters`` and ``curve``, a list of ``[env_steps,
test-subset accuracy]`` pairs.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from train.errors import GlimpseError

#: Results by agent, reward and seed: ``results[agent][reward][seed] = run``.
Results = dict[str, dict[str, dict[str, dict[str, Any]]]]

#: How the table and the plot name the agents.
LABELS: dict[str, str] = {
    "ram": "RAM-REINFORCE (hybrid)",
    "ppo": "PPO (glimpse history)",
    "recurrent_ppo": "RecurrentPPO (LSTM)",
}


def summarize(results: Results) -> list[dict[str, Any]]:
    """Per (agent, reward): the means and ranges over seeds.

    Returns:
        One dict per (agent, reward): ``agent``, ``reward``, ``seeds``, ``env_steps`` (mean),
        ``final_test_error_mean`` / ``_min`` / ``_max``, ``wall_clock_s_mean`` and
        ``parameters`` (of the first seed's run).
    """
    rows = []
    for agent, by_reward in results.items():
        for reward, by_seed in by_reward.items():
            runs = list(by_seed.values())
            errors = [r["final_test_error"] for r in runs]
            walls = [r["wall_clock_s"] for r in runs]
            rows.append(
                {
                    "agent": agent,
                    "reward": reward,
                    "seeds": [int(s) for s in by_seed],
                    "env_steps": round(sum(r["env_steps"] for r in runs) / len(runs)),
                    "final_test_error_mean": sum(errors) / len(errors),
                    "final_test_error_min": min(errors),
                    "final_test_error_max": max(errors),
                    "wall_clock_s_mean": sum(walls) / len(walls),
                    "parameters": runs[0]["parameters"],
                }
            )
    return rows


def duration(seconds: float) -> str:
    """``seconds`` as ``"12.3 s"`` below two minutes, else ``"4.5 min"``."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def markdown_table(summary: list[dict[str, Any]], note: str) -> str:
    """The summary (:func:`summarize`) as a Markdown table followed by ``note``."""
    lines = [
        "| agent | reward | env steps | final test error | wall-clock (training) | parameters |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in summary:
        error = f"{100 * row['final_test_error_mean']:.2f}%"
        if len(row["seeds"]) > 1:
            error += (
                f" ({100 * row['final_test_error_min']:.2f}-"
                f"{100 * row['final_test_error_max']:.2f}%, {len(row['seeds'])} seeds)"
            )
        lines.append(
            f"| {LABELS.get(row['agent'], row['agent'])} | {row['reward']} | {row['env_steps']:,} "
            f"| {error} | {duration(row['wall_clock_s_mean'])} | {row['parameters']:,} |"
        )
    return "\n".join(lines) + "\n\n" + note + "\n"


def mean_curve(curves: Sequence[Sequence[Sequence[float]]]) -> tuple[list[float], ...]:
    """Learning curves averaged over seeds, point by point (cut to the shortest).

    Args:
        curves: one curve per seed, each a list of ``(env_steps, accuracy)`` pairs.

    Returns:
        ``(x, mean, min, max)``: four lists of the curve's length.
    """
    n = min(len(c) for c in curves)
    xs, means, lows, highs = [], [], [], []
    for i in range(n):
        values = [c[i][1] for c in curves]
        xs.append(sum(c[i][0] for c in curves) / len(curves))
        means.append(sum(values) / len(values))
        lows.append(min(values))
        highs.append(max(values))
    return xs, means, lows, highs


def check_plotting() -> None:
    """Raise unless matplotlib (the ``viz`` extra) is installed.

    Raises:
        GlimpseError: with the command that installs it.
    """
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise GlimpseError(
            "the comparison's plot needs matplotlib; install it: pip install 'glimpse-env[viz]'"
        )


def plot(results: Results, path: Path, title: str, log_x: bool = False) -> None:
    """Test-subset accuracy vs env steps, one line per agent and reward, mean over seeds
    with a min-max band; written as an image to ``path``.

    Args:
        results: the comparison's runs.
        path: the image to write (e.g. ``.png``).
        title: the plot's title (wrapped; the seed count is appended).
        log_x: logarithmic env-step axis (step 0 left out).
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    for agent, by_reward in results.items():
        for reward, by_seed in by_reward.items():
            curves = [r["curve"] for r in by_seed.values() if r["curve"]]
            if not curves:
                continue
            xs, means, lows, highs = mean_curve(curves)
            if log_x:
                keep = [i for i, x in enumerate(xs) if x > 0]
                xs, means, lows, highs = ([v[i] for i in keep] for v in (xs, means, lows, highs))
            errors = [r["final_test_error"] for r in by_seed.values()]
            seeds = f", {len(errors)} seeds" if len(errors) > 1 else ""
            label = (
                f"{LABELS.get(agent, agent)}, {reward} "
                f"(final test error {100 * sum(errors) / len(errors):.2f}%{seeds})"
            )
            (line,) = ax.plot(xs, means, marker="o", markersize=3, label=label)
            if len(curves) > 1:
                ax.fill_between(xs, lows, highs, color=line.get_color(), alpha=0.2, linewidth=0)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("env steps (glimpses; 7 per episode)")
    ax.set_ylabel("test-subset accuracy")
    ax.set_ylim(0.0, 1.0)
    ax.grid(True, alpha=0.3)
    n_seeds = max(len(by_seed) for by_reward in results.values() for by_seed in by_reward.values())
    seeds_note = f"; mean over {n_seeds} seeds, band: min-max" if n_seeds > 1 else ""
    ax.set_title(textwrap.fill(f"{title}{seeds_note}", width=95), fontsize=9, loc="left")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)

"""Where does a trained policy look? Glimpse distance to the digit, per glimpse.

Usage::

    GLIMPSE_ENV_DATA=/path/to/mnist python benchmarks/glimpse_targeting.py RUN_DIR \
        [--split test] [--n-images 2000] [--radius 8] [--mode deterministic] \
        [--out benchmarks/results/glimpse_targeting/NAME.json]

On the translated and cluttered benchmarks the env knows where it put the digit (its
layout's ``digit_pos``). This script rolls the policy out once per image of the split (the
same sequential, fixed episodes as ``glimpse eval``) and measures, for every glimpse
``t = 1..T`` (glimpse 1 is the env's start location, glimpse ``t`` the location the agent
chose at step ``t - 1``):

* ``median_distance_px``: median distance in pixels from the glimpse centre to the
  centre of the 28x28 digit;
* ``within_radius``: fraction of images whose glimpse ``t`` is centred within ``--radius``
  pixels of it;
* ``corr_x`` / ``corr_y``: correlation over images of the glimpse location with the digit
  centre, per axis (0: the location ignores where the digit is; 1: follows it).

and, per image, accuracy when some glimpse ``t >= 2`` lands within the radius and when none
does. A policy that finds the digit has a high ``within_radius`` and correlations near 1
after the first glimpses; one that classifies from the coarse scales alone does not.
Writes one JSON (``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
from typing import Any

import gymnasium as gym
import numpy as np

import glimpse_env  # noqa: F401  (registers the envs)
from agents.checkpoints import write_json
from agents.policy import EVAL_MODES, Policy, load_policy
from glimpse_env.envs import DIGIT_SIZE
from glimpse_env.play import play_episodes


def targeting(
    policy: Policy,
    split: str = "test",
    n_images: int = 2000,
    radius: float = 8.0,
    mode: str = "deterministic",
    num_envs: int = 500,
) -> dict[str, Any]:
    """Glimpse-to-digit statistics of ``policy`` on the first ``n_images`` of ``split``.

    Args:
        policy: the agent (see :func:`agents.policy.load_policy`).
        split: ``"test"``, ``"val"`` or a training split.
        n_images: images (one rollout each).
        radius: hit radius in pixels.
        mode: ``"deterministic"`` (mean locations) or ``"sample"``.
        num_envs: episodes stepped together.

    Returns:
        ``{"env_id", "split", "mode", "n_images", "radius_px", "accuracy",
        "accuracy_hit", "accuracy_miss", "hit_fraction", "per_glimpse": [...]}`` where
        ``per_glimpse[t - 1]`` holds ``glimpse``, ``median_distance_px``,
        ``within_radius``, ``corr_x``, ``corr_y``.

    Raises:
        ValueError: for an env whose canvases do not record the digit position, or an
            unknown mode.
    """
    if mode not in EVAL_MODES:
        raise ValueError(f"mode must be one of {EVAL_MODES}, got {mode!r}")
    kwargs = {
        k: v
        for k, v in policy.env_kwargs.items()
        if k not in ("split", "sequential", "start", "reward")
    }
    num_envs = min(num_envs, n_images)
    envs = gym.make_vec(
        policy.env_id,
        num_envs=num_envs,
        split=split,
        sequential=True,
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        **kwargs,
    )
    size = envs.unwrapped.task.canvas_size
    locations, centres, success = [], [], []
    obs, info = envs.reset(seed=0)
    while sum(len(s) for s in success) < n_images:
        layout = envs.unwrapped.layout
        if "digit_pos" not in layout:
            envs.close()
            raise ValueError(
                f"{policy.env_id} does not record where the digit is (no 'digit_pos' in its "
                "layout): use a translated or cluttered env"
            )
        centres.append(layout["digit_pos"] + DIGIT_SIZE / 2)  # (N, 2) (row, col), pixels
        seen: list[np.ndarray] = []  # the location of every glimpse 1..T
        obs, info, _, _ = play_episodes(
            policy,
            envs,
            obs,
            mode == "deterministic",
            on_act=lambda t, o, a, seen=seen: seen.append(np.asarray(o["location"], np.float64)),
        )
        locations.append(np.stack(seen, 1))  # (N, T, 2) (x, y) in [-1, 1]
        success.append(np.asarray(info["final_info"]["is_success"], dtype=bool))
    envs.close()
    loc = np.concatenate(locations)[:n_images]
    centre = np.concatenate(centres)[:n_images]
    ok = np.concatenate(success)[:n_images]
    return targeting_stats(loc, centre, ok, size, radius) | {
        "env_id": policy.env_id,
        "split": split,
        "mode": mode,
    }


def targeting_stats(
    locations: np.ndarray, centres: np.ndarray, success: np.ndarray, size: int, radius: float
) -> dict[str, Any]:
    """The statistics of :func:`targeting` from the raw rollouts.

    Args:
        locations: float ``(N, T, 2)`` glimpse locations ``(x, y)`` in ``[-1, 1]``.
        centres: float ``(N, 2)`` digit centres ``(row, col)`` in pixels.
        success: bool ``(N,)`` whether each episode's class was right.
        size: canvas side in pixels.
        radius: hit radius in pixels.

    Returns:
        See :func:`targeting` (without ``env_id``, ``split``, ``mode``).
    """
    pixels = (locations + 1.0) * size / 2.0  # (x, y) -> continuous (column, row)
    dx = pixels[..., 0] - centres[:, None, 1]
    dy = pixels[..., 1] - centres[:, None, 0]
    distance = np.hypot(dx, dy)  # (N, T)
    hit = (distance[:, 1:] <= radius).any(1)
    per_glimpse = [
        {
            "glimpse": t + 1,
            "median_distance_px": float(np.median(distance[:, t])),
            "within_radius": float(np.mean(distance[:, t] <= radius)),
            "corr_x": _corr(pixels[:, t, 0], centres[:, 1]),
            "corr_y": _corr(pixels[:, t, 1], centres[:, 0]),
        }
        for t in range(distance.shape[1])
    ]
    return {
        "n_images": len(success),
        "radius_px": float(radius),
        "accuracy": float(np.mean(success)),
        "hit_fraction": float(np.mean(hit)),
        "accuracy_hit": float(np.mean(success[hit])) if hit.any() else None,
        "accuracy_miss": float(np.mean(success[~hit])) if (~hit).any() else None,
        "per_glimpse": per_glimpse,
    }


def _corr(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation, None where either side is constant."""
    if np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def format_table(result: dict[str, Any]) -> str:
    """A Markdown table of the per-glimpse statistics."""

    def num(x: float | None, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    lines = [
        f"{result['env_id']} {result['split']} ({result['mode']}), {result['n_images']} images: "
        f"accuracy {result['accuracy']:.2%}; some glimpse t >= 2 within "
        f"{result['radius_px']:g} px: {result['hit_fraction']:.1%} of images "
        f"(accuracy {num(result['accuracy_hit'], '.2%')} there, "
        f"{num(result['accuracy_miss'], '.2%')} elsewhere)",
        "",
        "| glimpse | median distance (px) | within radius | corr x | corr y |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in result["per_glimpse"]:
        lines.append(
            f"| {row['glimpse']} | {row['median_distance_px']:.1f} | "
            f"{row['within_radius']:.1%} | {num(row['corr_x'], '.2f')} | "
            f"{num(row['corr_y'], '.2f')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="run folder or checkpoint of a trained agent")
    parser.add_argument("--split", default="test")
    parser.add_argument("--n-images", type=int, default=2000)
    parser.add_argument("--radius", type=float, default=8.0, help="hit radius in pixels")
    parser.add_argument("--mode", choices=EVAL_MODES, default="deterministic")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", help="write the JSON here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    loaded = load_policy(args.checkpoint)
    result = targeting(loaded.policy, args.split, args.n_images, args.radius, args.mode)
    result["checkpoint"] = str(args.checkpoint)
    print(format_table(result))
    if args.out:
        write_json(args.out, result, sort_keys=False)
    return result


if __name__ == "__main__":
    main()

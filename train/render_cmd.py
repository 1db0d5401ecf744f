"""``glimpse render CHECKPOINT --env ID --out glimpses.gif``: learned glimpse sequences."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from agents.policy import env_kwargs_from_meta
from train.common import (
    SPLIT_SIZES,
    add_checkpoint_arguments,
    check_images,
    checkpoint_from_args,
    load_for_cli,
    read_meta_for_cli,
)
from train.validation import check_writable, number_type, output_file, positive_int


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "render",
        help="animated GIF and PNG grid of a trained agent's glimpses on test images",
        description=(
            "Run a trained agent (deterministic: mean locations) on the first test images and "
            "draw, for each, the canvas with the glimpse boxes and path so far and what the "
            "sensor saw; one GIF frame per glimpse, plus a PNG grid of the final frames. An "
            "agent that decides when to stop (an adaptive env) shows the glimpses it took: "
            "an image it stopped on keeps its last frame while the others go on."
        ),
    )
    add_checkpoint_arguments(parser, "render")
    parser.add_argument("--split", default="test", choices=tuple(SPLIT_SIZES))
    parser.add_argument("--n", type=positive_int, default=8, help="number of images")
    parser.add_argument("--columns", type=positive_int, default=2, help="frames per row")
    parser.add_argument(
        "--out",
        type=output_file(".gif"),
        default="glimpses.gif",
        help="GIF to write (a .gif file); the PNG grid of the final frames goes beside it, "
        "with .png instead of .gif",
    )
    parser.add_argument(
        "--fps", type=number_type(float, gt=0.0, le=100.0), default=1.5, help="GIF frame rate"
    )
    parser.add_argument("--mode", default="deterministic", choices=("deterministic", "sample"))
    parser.set_defaults(func=run)


def render_policy(
    policy: Any,
    env_id: str,
    split: str = "test",
    n: int = 8,
    deterministic: bool = True,
    env_kwargs: dict[str, Any] | None = None,
) -> list[list[np.ndarray]]:
    """Frames of ``n`` test episodes: ``frames[t][i]`` after glimpse ``t + 1`` of image ``i``.

    The last frame of each episode is labelled with the true and predicted class; every
    frame's caption counts the glimpses. Episodes that stop early (adaptive envs) keep their
    last frame, captioned with the glimpses they took, until the longest one ends.
    ``env_kwargs``: the env's settings (:func:`agents.policy.env_kwargs_from_meta` reads a
    run's; default: the env's defaults).
    """
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    from agents.policy import check_policy_fits
    from glimpse_env.play import play_episodes, seeded_sampling
    from glimpse_env.rendering import render_frame

    check_policy_fits(policy, env_id, env_kwargs or {})
    envs = gym.make_vec(
        env_id,
        num_envs=n,
        split=split,
        sequential=True,
        autoreset_mode=AutoresetMode.NEXT_STEP,
        **(env_kwargs or {}),
    )
    task = envs.unwrapped.task
    obs, _ = envs.reset(seed=0)
    canvases = envs.unwrapped.canvases
    paths: list[np.ndarray] = []  # the location of every glimpse 1..T
    with seeded_sampling(policy, 0, enabled=not deterministic):  # the same frames every time
        _, info, _, lengths = play_episodes(
            policy,
            envs,
            obs,
            deterministic,
            on_act=lambda t, o, a: paths.append(np.array(o["location"])),
        )
    labels, predictions = np.asarray(info["label"]), np.asarray(info["prediction"])
    path = np.stack(paths, axis=1)  # (n, T, 2); entries past an episode's length are unused
    lengths = np.broadcast_to(np.asarray(lengths), (n,))
    horizon, adaptive = int(lengths.max()), task.stop == "action"
    frames = []
    for t in range(horizon):
        row = []
        for i in range(n):
            length = int(lengths[i])
            seen = min(t + 1, length)
            last = seen == length
            if adaptive:
                verb = "stopped after" if last and length < task.max_glimpses else "glimpse"
                caption = f"{verb} {seen}/{task.max_glimpses}"
            else:
                caption = f"glimpse {seen}/{horizon}"
            row.append(
                render_frame(
                    canvases[i],
                    path[i, :seen],
                    task.glimpse_size,
                    task.n_scales,
                    label=int(labels[i]) if last else None,
                    prediction=int(predictions[i]) if last else None,
                    caption=caption,
                )
            )
        frames.append(row)
    envs.close()
    return frames


def run(args: argparse.Namespace) -> int:
    from agents.policy import load_policy
    from glimpse_env.rendering import grid, save_gif, save_png

    check_images(args.n, args.split, "--n")
    check_writable(args.out, "--out")
    path = checkpoint_from_args(args)
    read_meta_for_cli(path)
    loaded = load_for_cli(path, load_policy)
    policy = loaded.policy
    frames = render_policy(
        policy,
        args.env or policy.env_id,
        split=args.split,
        n=args.n,
        deterministic=args.mode == "deterministic",
        env_kwargs=env_kwargs_from_meta(loaded.meta, args.data_dir),
    )
    tiles = [grid(step, args.columns) for step in frames]
    out = save_gif(tiles, args.out, fps=args.fps)
    png = save_png(tiles[-1], Path(args.out).with_suffix(".png"))
    print(f"wrote {out} ({len(tiles)} frames) and {png}")
    return 0

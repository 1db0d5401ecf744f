"""``glimpse demo --env ID --out demo.gif``: a random-policy episode as an animated GIF."""

from __future__ import annotations

import argparse
from typing import Any

from train.common import SPLIT_SIZES
from train.validation import check_writable, output_file, seed_int


def register(subparsers: Any) -> None:
    from glimpse_env.registration import ALL_IDS

    parser = subparsers.add_parser(
        "demo",
        help="write a GIF of one episode with random glimpses",
        description="Run one episode with a random policy and save it as an animated GIF.",
    )
    parser.add_argument("--env", default="GlimpseMNIST-v0", choices=ALL_IDS)
    parser.add_argument(
        "--out", type=output_file(".gif"), default="demo.gif", help="GIF to write (.gif)"
    )
    parser.add_argument("--seed", type=seed_int, default=0)
    parser.add_argument("--split", default="test", choices=tuple(SPLIT_SIZES))
    parser.add_argument("--data-dir", default=None, help="MNIST folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from glimpse_env.rendering import record_episode, save_gif

    check_writable(args.out, "--out")
    env = gym.make(args.env, split=args.split, render_mode="rgb_array", data_dir=args.data_dir)
    env.action_space.seed(args.seed)
    frames, info = record_episode(env, seed=args.seed)
    path = save_gif(frames, args.out)
    print(
        f"wrote {path} ({len(frames)} frames): label {info['label']}, "
        f"random guess {info['prediction']}"
    )
    return 0

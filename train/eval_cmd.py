"""``glimpse eval CHECKPOINT --env ID --split test [--mode deterministic|sample] [--json]``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from agents.policy import env_kwargs_from_meta
from train.common import (
    SPLIT_SIZES,
    add_checkpoint_arguments,
    check_images,
    checkpoint_from_args,
    load_for_cli,
    read_meta_for_cli,
    resolve_device,
)
from train.errors import UsageError
from train.harness import error_text
from train.validation import device_name, positive_int


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="test error of a trained agent (one rollout per image)",
        description=(
            "Evaluate a trained agent: one rollout per image of the split, with mean locations "
            "(deterministic, the default) or sampled ones; never averaged over rollouts."
        ),
    )
    add_checkpoint_arguments(parser, "evaluate")
    parser.add_argument("--split", default="test", choices=tuple(SPLIT_SIZES))
    parser.add_argument("--mode", default="deterministic", choices=("deterministic", "sample"))
    parser.add_argument(
        "--n-images",
        type=positive_int,
        default=None,
        help="first N images (default: all; at most the split's size)",
    )
    parser.add_argument(
        "--num-envs", type=positive_int, default=500, help="episodes stepped together"
    )
    parser.add_argument(
        "--device",
        default="cpu",
        type=device_name,
        help="torch device for the agent: cpu, cuda, cuda:N or auto (default: cpu)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agents.policy import evaluate_policy, load_policy

    check_images(args.n_images, args.split, "--n-images")
    path = checkpoint_from_args(args)
    args.device = str(resolve_device(args.device))
    if read_meta_for_cli(path).get("agent") == "baseline":
        result = _evaluate_baseline(path, args)
    else:
        loaded = load_for_cli(path, load_policy, device=args.device)
        result = evaluate_policy(
            loaded.policy,
            env_id=args.env,
            split=args.split,
            n_images=args.n_images,
            mode=args.mode,
            num_envs=args.num_envs,
            env_kwargs=env_kwargs_from_meta(loaded.meta, args.data_dir),
            progress=not args.json,
        )
        result["checkpoint"] = str(loaded.path)
        result["agent"] = loaded.meta.get("agent")
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(
            f"{result['agent']} on {result['env_id']} {result['split']} ({result['mode']}): "
            + error_text(result)
        )
        if result.get("glimpses_by_class"):
            by_class = ", ".join(f"{c}: {g:.2f}" for c, g in enumerate(result["glimpses_by_class"]))
            print(f"glimpses per image of each class: {by_class}")
    return 0


def _evaluate_baseline(path: str | os.PathLike, args: argparse.Namespace) -> dict[str, Any]:
    """A supervised baseline sees whole canvases: classify the split's fixed canvases once each."""
    from agents.baselines import evaluate_baseline, load_baseline

    if args.mode != "deterministic":
        raise UsageError("a supervised baseline has no sampled mode: use --mode deterministic")
    loaded = load_for_cli(Path(path), load_baseline, device=args.device)
    result = evaluate_baseline(
        loaded.model,
        args.env or loaded.env_id,
        split=args.split,
        n_images=args.n_images,
        env_kwargs=env_kwargs_from_meta(loaded.meta, args.data_dir),
        batch_size=args.num_envs,
        progress=not args.json,
    )
    result["checkpoint"] = str(loaded.path)
    result["agent"] = "baseline"
    return result

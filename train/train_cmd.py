"""``glimpse train AGENT ...``: one sub-subcommand per kind of agent.

Each module in :data:`AGENT_MODULES` exposes ``register(subparsers)`` adding its parser
(``ram``, ``ppo``, ``baseline``) with ``func`` set.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from train.validation import MAX_SEED, device_name, seed_int

AGENT_MODULES: tuple[str, ...] = ("train.ram", "train.ppo", "train.baseline")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train an agent (ram, ppo, baseline)",
        description="Train an agent on a glimpse environment.",
    )
    agents = parser.add_subparsers(dest="agent", required=True, metavar="AGENT")
    for name in AGENT_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(agents)
    parser.set_defaults(func=lambda args: parser.error("choose an agent"))


def add_common_run_args(parser: argparse.ArgumentParser) -> None:
    """Arguments every training command shares: where to write, how to show progress."""
    parser.add_argument(
        "--run-dir",
        default=None,
        help=(
            "run folder, empty or new (default: runs/<agent>-<env>-<time>); it belongs to "
            "this run and is locked while it trains"
        ),
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=(
            "replace the previous run in --run-dir: delete the files a run writes there "
            "(config, checkpoints, metrics, tb/, eval.json); a folder holding other files "
            "is refused"
        ),
    )
    parser.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help=(
            "continue a run from its last checkpoint, with its saved settings (flags that "
            "contradict them are refused; run-control flags such as --max-minutes apply)"
        ),
    )
    # Defaults None (= the config's: auto, 0), so --resume can tell a flag given from none.
    parser.add_argument(
        "--device",
        default=None,
        type=device_name,
        help="torch device: auto, cpu, cuda or cuda:N (default: auto, CUDA when available)",
    )
    parser.add_argument(
        "--seed",
        type=seed_int,
        default=None,
        help=f"seed of the env and the agent, 0 .. {MAX_SEED} (default: 0)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="log lines instead of a progress bar"
    )
    parser.add_argument(
        "--data-dir", default=None, help="MNIST folder (default: $GLIMPSE_ENV_DATA or the cache)"
    )

"""``glimpse train AGENT ...``: one sub-subcommand per kind of agent.

Each module in :data:`AGENT_MODULES` exposes ``register(subparsers)`` adding its parser
(``ram``, ``ppo``, ``baseline``) with ``func`` set.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

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
        "--run-dir", default=None, help="run folder (default: runs/<agent>-<env>-<time>)"
    )
    parser.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue a killed run from its last checkpoint",
    )
    parser.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"), help="torch device"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the env and the agent")
    parser.add_argument(
        "--no-progress", action="store_true", help="log lines instead of a progress bar"
    )
    parser.add_argument(
        "--data-dir", default=None, help="MNIST folder (default: $GLIMPSE_ENV_DATA or the cache)"
    )

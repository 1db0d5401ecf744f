"""``glimpse train AGENT ...``: one sub-subcommand per kind of agent.

Each module in :data:`AGENT_MODULES` exposes ``register(subparsers)`` adding its parser
(``ram``, ``ppo``, ``baseline``) with ``func`` set; its flags are those of its config
dataclass, added by :func:`train.harness.add_training_arguments`, and its run is driven by
the one run harness, :func:`train.harness.train`.
"""

from __future__ import annotations

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

"""The ``glimpse`` command line: ``glimpse demo``, ``glimpse train ...``, ``glimpse eval ...``.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
arguments, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Modules of ``train`` that add top-level subcommands, in help order.
_COMMAND_MODULES: tuple[str, ...] = (
    "train.demo",
    "train.train_cmd",
    "train.eval_cmd",
    "train.render_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``glimpse`` parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="glimpse",
        description="Glimpse-based (hard attention) vision as reinforcement learning.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # subcommand not part of this build
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``glimpse`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

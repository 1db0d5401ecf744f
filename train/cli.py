"""The ``glimpse`` command line: ``glimpse demo``, ``glimpse train ...``, ``glimpse eval ...``.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
arguments, returning an exit code).

Errors: :func:`main` is the command's one error boundary. A bad command line, a missing or
unwritable file, a corrupt checkpoint, missing data, ... print one line on stderr,
``glimpse: error: <what is wrong>; <how to fix it>``, and exit with status 2 (usage errors,
as argparse's own) or 1 (anything else); Ctrl-C prints ``glimpse: interrupted`` and exits
with 130. No traceback, unless ``glimpse --debug ...`` or ``GLIMPSE_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from train.errors import INTERRUPTED_EXIT, debug_requested, describe, one_line

#: Modules of ``train`` that add top-level subcommands, in help order.
_COMMAND_MODULES: tuple[str, ...] = (
    "train.demo",
    "train.train_cmd",
    "train.eval_cmd",
    "train.render_cmd",
    "train.reproduce",
    "train.compare",
    "train.bench",
    "train.sweep",
)


class GlimpseArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line on stderr (exit status 2):
    ``glimpse eval: error: argument --n-images: ...; see glimpse eval --help``.

    Subparsers are of the same class (argparse makes them of their parent's type).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the ``glimpse`` parser with every available subcommand."""
    parser = GlimpseArgumentParser(
        prog="glimpse",
        description="Glimpse-based (hard attention) vision as reinforcement learning.",
        epilog="Errors are one line on stderr; --debug (or GLIMPSE_DEBUG=1) shows tracebacks.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (or GLIMPSE_DEBUG=1)"
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


def _fail(message: str, code: int) -> NoReturn:
    print(f"glimpse: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``glimpse`` console script.

    Returns:
        0 when the command succeeded.

    Raises:
        SystemExit: on any error, after printing one line on stderr (status 2 for a bad
            command line, 130 for Ctrl-C, else 1); with ``--debug`` or ``GLIMPSE_DEBUG=1``
            the original exception propagates instead (with its traceback).
    """
    debug = debug_requested()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        debug = debug_requested(args.debug)
        return int(args.func(args) or 0)
    except SystemExit as exc:
        if debug or exc.code is None or isinstance(exc.code, int):
            raise
        _fail(one_line(str(exc.code)), 1)  # SystemExit("message") from library code
    except KeyboardInterrupt:
        if debug:
            raise
        print("glimpse: interrupted", file=sys.stderr, flush=True)
        raise SystemExit(INTERRUPTED_EXIT) from None
    except Exception as exc:
        if debug:
            raise
        message, code = describe(exc)
        _fail(message, code)


if __name__ == "__main__":
    sys.exit(main())
